/**
 * The `fork` strategy: child processes own the connections, like Python's `ForkingMixIn`.
 *
 * The server accepts; each connection's socket handle is passed to a child over Node's IPC
 * channel (`child.send(message, socket)`) and the child runs the handler on it directly, loaded
 * by its `Handler.Reference` (see `internal/forkChild.ts`). Bytes never pass through the parent.
 * Datagrams go to a child as IPC messages; the child's replies come back the same way and are
 * sent from the server's socket.
 *
 * Two modes:
 * - `"pool"` (default): `size` pre-forked children; each job goes to the least busy one; a child
 *   that dies is replaced.
 * - `"perConnection"`: a fresh child per job, at most `maxChildren` at once; at the bound the
 *   strategy stops taking jobs until a child has exited.
 *
 * A child that crashes costs only its own jobs (they complete as failed). Children report each
 * job's outcome over IPC, and their log lines (and stderr) reach the server's log annotated with
 * their `pid`. Every child is reaped: `run` returns only after each child's `exit`. When the server
 * stops accepting (graceful shutdown), children are told, so `Server.Shutdown` fires for their handlers too.
 *
 * @since 0.1.0
 */
import { Deferred, Duration, Effect, FiberSet, Layer, Queue, Schema, Semaphore, Stream } from "effect"
import * as ChildProcess from "node:child_process"
import type * as Net from "node:net"
import * as Os from "node:os"
import * as Url from "node:url"
import type * as Handler from "./Handler.ts"
import * as Ipc from "./internal/ipcMessages.ts"
import * as Pool from "./internal/pool.ts"
import * as Strategy from "./Strategy.ts"

/**
 * Options of the fork strategy.
 * @category models
 */
export interface Options {
  /** `"pool"` (default) or `"perConnection"`. */
  readonly mode?: "pool" | "perConnection" | undefined
  /** Pool size. Default: `os.availableParallelism()`. */
  readonly size?: number | undefined
  /** Per-connection mode: at most this many children at once. Default: `defaultMaxChildren`. */
  readonly maxChildren?: number | undefined
  /** How long a child may take to load the handler and say it is ready. Default 30 seconds. */
  readonly startTimeout?: Duration.Input | undefined
  /** How long a stopping child gets before SIGKILL (after `Stop`, or after SIGTERM). Default 2 seconds. */
  readonly killGrace?: Duration.Input | undefined
}

/** @category constants */
export const defaultMaxChildren = 64

/**
 * The strategy, plus the pids of its live children (for tests and diagnostics).
 * @category models
 */
export type ForkStrategy = Strategy.Strategy["Service"] & {
  readonly children: Effect.Effect<ReadonlyArray<number>>
}

const entry = Url.fileURLToPath(new URL("./internal/forkChild.ts", import.meta.url))

interface Child extends Pool.Member {
  readonly process: ChildProcess.ChildProcess
  readonly jobs: Map<number, Strategy.Job<unknown>>
  /** Completed on Node's `close` (after `exit`): the child is reaped and its IPC channel drained. */
  readonly closed: Deferred.Deferred<void>
}

type Event =
  | { readonly _tag: "Message"; readonly child: Child; readonly message: unknown }
  | { readonly _tag: "Stderr"; readonly child: Child; readonly line: string }
  | { readonly _tag: "Closed"; readonly child: Child; readonly code: number | null; readonly signal: string | null }

const decodeFromChild = Schema.decodeUnknownResult(Ipc.FromChild)

const strategyError = (message: string) => Pool.error("fork", message)

/**
 * Builds the fork strategy.
 * @category constructors
 */
export const make = (options?: Options): ForkStrategy => {
  const mode = options?.mode ?? "pool"
  const size = Math.max(1, options?.size ?? Os.availableParallelism())
  const maxChildren = Math.max(1, options?.maxChildren ?? defaultMaxChildren)
  const startTimeout = options?.startTimeout ?? "30 seconds"
  const killGrace = options?.killGrace ?? "2 seconds"
  const live = new Set<number>()

  const run = <E, R>(jobs: Stream.Stream<Strategy.Job<R>>, handler: Handler.Handler<E, R>) =>
    Effect.gen(function*() {
      const reference = yield* Pool.referenceOf("fork", handler as Handler.Handler<unknown, unknown>)
      const events = yield* Queue.unbounded<Event>()
      const background = yield* FiberSet.make<void, never>()
      const pool = Pool.make<Child>({
        strategy: "fork",
        noun: "fork child",
        announceShutdown: (child) => {
          if (child.process.connected) child.process.send({ _tag: "Shutdown" } satisfies Ipc.ToChild, undefined, {}, () => {})
        }
      })
      let nextJob = 0

      const spawn = (): Child => {
        const proc = ChildProcess.fork(entry, [JSON.stringify(reference)], {
          // Inherit the loader flags (tsx's --import) so the child loads .ts exactly as we do;
          // plain Node 24 strips types natively.
          execArgv: process.execArgv,
          // `advanced` (structured clone) carries Uint8Array payloads without base64.
          serialization: "advanced",
          stdio: ["ignore", "inherit", "pipe", "ipc"]
        })
        const child = pool.add({
          process: proc,
          id: proc.pid ?? -1,
          jobs: new Map(),
          ready: Deferred.makeUnsafe(),
          closed: Deferred.makeUnsafe(),
          isReady: false,
          stopping: false
        })
        live.add(child.id)
        let exitCode: number | null = null
        let exitSignal: string | null = null
        proc.on("message", (message) => Queue.offerUnsafe(events, { _tag: "Message", child, message }))
        // Send failures are reported through the send callback; without this listener they would crash us.
        proc.on("error", () => {})
        let partial = ""
        proc.stderr?.on("data", (chunk: Buffer) => {
          const lines = (partial + chunk.toString("utf8")).split("\n")
          partial = lines.pop() ?? ""
          for (const line of lines) if (line.trim() !== "") Queue.offerUnsafe(events, { _tag: "Stderr", child, line })
        })
        proc.on("exit", (code, signal) => {
          exitCode = code
          exitSignal = signal
          live.delete(child.id)
        })
        proc.on("close", (code, signal) => {
          live.delete(child.id)
          Deferred.doneUnsafe(child.closed, Effect.void)
          Deferred.doneUnsafe(child.ready, Effect.fail(strategyError(`child ${child.id} exited before it was ready`)))
          Queue.offerUnsafe(events, { _tag: "Closed", child, code: exitCode ?? code, signal: exitSignal ?? signal })
        })
        return child
      }

      const finishJob = (child: Child, id: number, outcome: Strategy.Outcome) =>
        Effect.suspend(() => {
          const job = child.jobs.get(id)
          if (job === undefined) return Effect.void
          child.jobs.delete(id)
          pool.finished()
          // Our copy of the socket was kept open while the child served (see `sendJob`); drop it now.
          const release = job.incoming._tag === "IncomingConnection" ? job.incoming.release : Effect.void
          return Effect.andThen(release, job.complete(outcome))
        })

      const stopChild = (child: Child) =>
        Effect.sync(() => {
          child.stopping = true
          if (child.process.connected) child.process.send({ _tag: "Stop" } satisfies Ipc.ToChild, undefined, {}, () => {})
        })

      // SIGTERM, a grace period, then SIGKILL; returns once the child is reaped.
      const kill = (child: Child) =>
        Effect.gen(function*() {
          child.stopping = true
          if (child.process.exitCode === null && child.process.signalCode === null) child.process.kill("SIGTERM")
          const gone = yield* Effect.timeoutOption(Deferred.await(child.closed), killGrace)
          if (gone._tag === "None") {
            child.process.kill("SIGKILL")
            yield* Deferred.await(child.closed)
          }
        })

      // Graceful: `Stop` lets the child finish (it has no jobs left by now), then the same escalation.
      const stopGracefully = (child: Child) =>
        Effect.andThen(
          stopChild(child),
          Effect.timeoutOption(Deferred.await(child.closed), killGrace).pipe(
            Effect.flatMap((gone) => gone._tag === "None" ? kill(child) : Effect.void)
          )
        )

      // Whatever ends `run` (drain, failure, interruption), no child outlives it.
      yield* Effect.addFinalizer(() =>
        Effect.gen(function*() {
          pool.stop()
          const children = [...pool.members]
          yield* Effect.forEach(children, kill, { concurrency: "unbounded", discard: true })
          for (const child of children) {
            for (const id of [...child.jobs.keys()]) yield* finishJob(child, id, { _tag: "Aborted", reason: "shutdown" })
          }
        })
      )

      const handleEvent = (event: Event): Effect.Effect<void> => {
        const child = event.child
        const annotate = Effect.annotateLogs({ pid: String(child.id), strategy: "fork" })
        switch (event._tag) {
          case "Stderr":
            return Effect.logWarning(event.line).pipe(annotate, Effect.annotateLogs({ stream: "stderr" }))
          case "Closed": {
            const replace = pool.remove(child)
            const crashed = !child.stopping
            const reason = event.signal !== null ? `signal ${event.signal}` : `exit code ${event.code}`
            const lost = Pool.lostJob({ where: `fork child ${child.id}`, tag: "ChildExited", crashed, reason })
            return Effect.gen(function*() {
              for (const id of [...child.jobs.keys()]) yield* finishJob(child, id, lost)
              if (crashed) yield* Effect.logWarning(`fork child exited unexpectedly (${reason})`).pipe(annotate)
              if (mode === "pool" && replace) {
                yield* Effect.logInfo("replacing fork child").pipe(annotate)
                spawn()
              }
            })
          }
          case "Message": {
            const decoded = decodeFromChild(event.message)
            if (decoded._tag === "Failure") {
              return Effect.logWarning("unexpected message from fork child", decoded.failure.message).pipe(annotate)
            }
            const message = decoded.success
            switch (message._tag) {
              case "Ready":
                pool.markReady(child)
                return Deferred.succeed(child.ready, undefined)
              case "LoadFailed":
                return Deferred.fail(
                  child.ready,
                  strategyError(`fork child could not load handler "${handler.name}": ${message.message}`)
                )
              case "Done":
                return Effect.andThen(
                  finishJob(child, message.job, Pool.outcomeOf(`fork child ${child.id}`, message.outcome)),
                  mode === "perConnection" ? stopChild(child) : Effect.void
                )
              case "Reply": {
                const job = child.jobs.get(message.job)
                if (job === undefined || job.incoming._tag !== "IncomingDatagram") return Effect.void
                return FiberSet.run(
                  background,
                  job.incoming.datagram.reply(message.payload).pipe(
                    Effect.catchCause((cause) => Effect.logDebug("reply from fork child not sent", cause).pipe(annotate))
                  )
                ).pipe(Effect.asVoid)
              }
              case "Log":
                return Effect.logWithLevel(message.level)(message.message).pipe(
                  Effect.annotateLogs(message.annotations),
                  annotate
                )
            }
          }
        }
      }
      yield* Stream.fromQueue(events).pipe(Stream.runForEach(handleEvent), FiberSet.run(background))

      const sendJob = (child: Child, job: Strategy.Job<unknown>) =>
        Effect.gen(function*() {
          const id = ++nextJob
          child.jobs.set(id, job)
          pool.beforeJob(child)
          const incoming = job.incoming
          const message: Ipc.ToChild = incoming._tag === "IncomingConnection"
            ? {
              _tag: "Connection",
              job: id,
              meta: {
                id: incoming.id,
                transport: incoming.transport,
                localAddress: Ipc.toWireAddress(incoming.localAddress),
                ...(incoming.remoteAddress ? { remoteAddress: Ipc.toWireAddress(incoming.remoteAddress) } : {}),
                peer: incoming.peer,
                ...(job.openOptions.idleTimeout !== undefined
                  ? { idleTimeoutMillis: Duration.toMillis(Duration.fromInputUnsafe(job.openOptions.idleTimeout)) }
                  : {})
              }
            }
            : {
              _tag: "Datagram",
              job: id,
              meta: {
                transport: incoming.datagram.transport,
                payload: incoming.datagram.payload,
                ...(incoming.datagram.sender ? { sender: Ipc.toWireAddress(incoming.datagram.sender) } : {}),
                peer: incoming.datagram.peer
              }
            }
          const handle = incoming._tag === "IncomingConnection" ? incoming.handle as Net.Socket : undefined
          const sent = yield* Effect.callback<void, Error>((resume) => {
            try {
              // keepOpen: with `false` Node closes our copy only when the child acknowledges the handle,
              // so a child that dies at the wrong moment would leave the peer hanging forever. We close
              // our copy ourselves when the job finishes, whatever way it finishes.
              child.process.send(message, handle, { keepOpen: true }, (error) =>
                resume(error ? Effect.fail(error) : Effect.void))
            } catch (error) {
              resume(Effect.fail(error instanceof Error ? error : new Error(String(error))))
            }
          }).pipe(Effect.exit)
          if (sent._tag === "Failure") {
            if (incoming._tag === "IncomingConnection") yield* incoming.reject
            yield* finishJob(child, id, { _tag: "Aborted", reason: `could not pass the job to fork child ${child.id}` })
          }
        })

      const awaitReady = (child: Child) => pool.awaitReady(child, startTimeout)

      const track = <R2>(job: Strategy.Job<R2>) => {
        pool.started()
        return job as unknown as Strategy.Job<unknown>
      }

      if (mode === "pool") {
        const initial = Array.from({ length: size }, spawn)
        yield* Effect.forEach(initial, awaitReady, { concurrency: "unbounded", discard: true })
        yield* Stream.runForEach(jobs, (job) => Effect.flatMap(pool.pick, (child) => sendJob(child, track(job))))
      } else {
        const slots = yield* Semaphore.make(maxChildren)
        const serveOne = (job: Strategy.Job<unknown>) =>
          Effect.gen(function*() {
            const child = spawn()
            // The slot is the process: it is free again once the child has exited, not when the job ends.
            yield* Effect.forkDetach(Effect.andThen(Deferred.await(child.closed), Semaphore.release(slots, 1)), {
              startImmediately: true
            })
            const ready = yield* Effect.exit(awaitReady(child))
            if (ready._tag === "Failure") {
              pool.finished()
              yield* stopChild(child)
              if (job.incoming._tag === "IncomingConnection") yield* job.incoming.reject
              return yield* job.complete({ _tag: "Failed", cause: ready.cause })
            }
            yield* sendJob(child, job)
          })
        yield* Stream.runForEach(jobs, (job) =>
          Effect.andThen(Semaphore.take(slots, 1), FiberSet.run(background, serveOne(track(job)))))
      }

      // The jobs stream ended: the server stopped accepting. Tell the children (their handlers may
      // finish early), drain, then stop every child gracefully.
      pool.shutdownBegan()
      yield* pool.drained
      pool.stop()
      yield* Effect.forEach([...pool.members], stopGracefully, { concurrency: "unbounded", discard: true })
    }).pipe(Effect.scoped) as Effect.Effect<void, Strategy.StrategyError, R>

  return {
    name: "fork",
    run,
    children: Effect.sync(() => [...live])
  }
}

/**
 * The fork strategy as a layer.
 * @category layers
 */
export const layer = (options?: Options): Layer.Layer<Strategy.Strategy> => Layer.succeed(Strategy.Strategy, make(options))

/**
 * A pool of `size` pre-forked children (default: one per CPU).
 * @category layers
 */
export const layerPool = (options?: { readonly size?: number | undefined }): Layer.Layer<Strategy.Strategy> =>
  layer({ mode: "pool", size: options?.size })

/**
 * A fresh child per connection or datagram, at most `maxChildren` at once.
 * @category layers
 */
export const layerPerConnection = (options?: { readonly maxChildren?: number | undefined }): Layer.Layer<Strategy.Strategy> =>
  layer({ mode: "perConnection", maxChildren: options?.maxChildren })

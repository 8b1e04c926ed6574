/**
 * The `worker` strategy: a pool of worker threads runs the handlers, like Python's `ThreadingMixIn`
 * but with real parallelism: a CPU-bound handler occupies one worker, not the server.
 *
 * How a connection reaches a worker: the main thread keeps the socket (Node cannot move a socket
 * into a worker) and moves bytes over a per-job `MessagePort` (see `internal/workerThread.ts`):
 * - reads are credit-based: the worker sends `Read`, the main thread then pulls one batch from the
 *   socket and transfers it (no copy when the buffer is the chunk's own); no `Read`, no socket read,
 *   so a slow handler slows its peer down through TCP flow control;
 * - writes carry transferred copies and are acknowledged once the main thread's socket write
 *   completed (after `drain` when the send buffer was full), so a worker cannot outrun its peer.
 * This works for every transport; datagrams travel the same way (payload in, replies acknowledged).
 *
 * Each job goes to the least busy ready worker. A handler that fails or throws costs only its job;
 * a worker that dies (e.g. `process.exit` in the handler) costs only its own jobs and is replaced.
 * When the server stops accepting (graceful shutdown) the workers are told, so `Server.Shutdown`
 * fires for their handlers too. When `run` ends every worker is terminated and every port closed.
 *
 * @since 0.1.0
 */
import { Deferred, Duration, Effect, FiberSet, Layer, Queue, Schema, Stream } from "effect"
import * as Os from "node:os"
import { MessageChannel, Worker } from "node:worker_threads"
import * as Connection from "./Connection.ts"
import type * as Handler from "./Handler.ts"
import * as Ipc from "./internal/ipcMessages.ts"
import * as Pool from "./internal/pool.ts"
import * as Strategy from "./Strategy.ts"

/**
 * Options of the worker strategy.
 * @category models
 */
export interface Options {
  /** Number of worker threads. Default: `os.availableParallelism()`. */
  readonly size?: number | undefined
  /** How long a worker may take to load the handler. Default 30 seconds. */
  readonly startTimeout?: Duration.Input | undefined
}

/**
 * The strategy, plus the thread ids of its live workers (for tests and diagnostics).
 * @category models
 */
export type WorkerStrategy = Strategy.Strategy["Service"] & {
  readonly workers: Effect.Effect<ReadonlyArray<number>>
}

const entry = new URL("./internal/workerThread.ts", import.meta.url)

interface PoolWorker extends Pool.Member {
  readonly thread: Worker
  readonly jobs: Map<number, Deferred.Deferred<Strategy.Outcome>>
  readonly exited: Deferred.Deferred<void>
}

type Event =
  | { readonly _tag: "Message"; readonly worker: PoolWorker; readonly message: unknown }
  | {
    readonly _tag: "Exited"
    readonly worker: PoolWorker
    readonly code: number
    readonly error: string | undefined
    readonly replace: boolean
  }

const decodeFromWorker = Schema.decodeUnknownResult(Ipc.FromWorker)
const decodeFromJob = Schema.decodeUnknownResult(Ipc.FromJob)

const strategyError = (message: string) => Pool.error("worker", message)

/** A chunk ready to transfer: its own buffer when it covers it exactly, else an exact copy. */
const transferable = (chunk: Uint8Array): Uint8Array<ArrayBuffer> =>
  chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength && chunk.buffer instanceof ArrayBuffer
    ? chunk as Uint8Array<ArrayBuffer>
    : Ipc.ownedCopy(chunk)

/**
 * Builds the worker strategy.
 * @category constructors
 */
export const make = (options?: Options): WorkerStrategy => {
  const size = Math.max(1, options?.size ?? Os.availableParallelism())
  const startTimeout = options?.startTimeout ?? "30 seconds"
  const live = new Set<number>()

  const run = <E, R>(jobs: Stream.Stream<Strategy.Job<R>>, handler: Handler.Handler<E, R>) =>
    Effect.gen(function*() {
      const reference = yield* Pool.referenceOf("worker", handler as Handler.Handler<unknown, unknown>)
      const events = yield* Queue.unbounded<Event>()
      const background = yield* FiberSet.make<void, never>()
      const running = yield* FiberSet.make<void, never>()
      const pool = Pool.make<PoolWorker>({
        strategy: "worker",
        noun: "worker",
        announceShutdown: (worker) => worker.thread.postMessage({ _tag: "Shutdown" } satisfies Ipc.ToWorker)
      })
      let nextJob = 0

      const spawn = (): PoolWorker => {
        // execArgv is inherited: under tsx the loader applies here too; plain Node 24 strips types itself.
        const thread = new Worker(entry, { workerData: { reference: { module: reference.module, export: reference.export } } })
        const worker = pool.add({
          thread,
          id: thread.threadId,
          jobs: new Map(),
          ready: Deferred.makeUnsafe(),
          exited: Deferred.makeUnsafe(),
          isReady: false,
          stopping: false
        })
        live.add(worker.id)
        let error: string | undefined
        thread.on("message", (message) => Queue.offerUnsafe(events, { _tag: "Message", worker, message }))
        thread.on("error", (e) => {
          error = String(e)
        })
        thread.on("exit", (code) => {
          live.delete(worker.id)
          // Removed here, not when the event is handled: a job must not be given to a dead worker.
          const replace = pool.remove(worker)
          const reason = error ?? `exit code ${code}`
          const lost = Pool.lostJob({ where: `worker ${worker.id}`, tag: "WorkerExited", crashed: !worker.stopping, reason })
          for (const done of worker.jobs.values()) Deferred.doneUnsafe(done, Effect.succeed(lost))
          worker.jobs.clear()
          Deferred.doneUnsafe(worker.ready, Effect.fail(strategyError(`worker ${worker.id} exited before it was ready`)))
          Deferred.doneUnsafe(worker.exited, Effect.void)
          Queue.offerUnsafe(events, { _tag: "Exited", worker, code, error, replace })
        })
        return worker
      }

      const terminate = (worker: PoolWorker) =>
        Effect.suspend(() => {
          worker.stopping = true
          return Effect.andThen(Effect.promise(() => worker.thread.terminate()), Deferred.await(worker.exited))
        })

      // Whatever ends `run`, no worker outlives it (terminate resolves once the thread has stopped).
      yield* Effect.addFinalizer(() =>
        Effect.suspend(() => {
          pool.stop()
          return Effect.forEach([...pool.members], terminate, { concurrency: "unbounded", discard: true })
        })
      )

      const handleEvent = (event: Event): Effect.Effect<void> => {
        const worker = event.worker
        const annotate = Effect.annotateLogs({ threadId: String(worker.id), strategy: "worker" })
        if (event._tag === "Exited") {
          if (worker.stopping || pool.isStopping()) return Effect.void
          return Effect.gen(function*() {
            yield* Effect.logWarning(`worker exited unexpectedly (${event.error ?? `exit code ${event.code}`})`).pipe(annotate)
            if (event.replace) {
              yield* Effect.logInfo("replacing worker").pipe(annotate)
              spawn()
            }
          })
        }
        const decoded = decodeFromWorker(event.message)
        if (decoded._tag === "Failure") return Effect.logWarning("unexpected message from worker", decoded.failure.message).pipe(annotate)
        const message = decoded.success
        switch (message._tag) {
          case "Ready":
            pool.markReady(worker)
            return Deferred.succeed(worker.ready, undefined)
          case "LoadFailed":
            return Deferred.fail(worker.ready, strategyError(`worker could not load handler "${handler.name}": ${message.message}`))
          case "Log":
            return Effect.logWithLevel(message.level)(message.message).pipe(Effect.annotateLogs(message.annotations), annotate)
        }
      }
      yield* Stream.fromQueue(events).pipe(Stream.runForEach(handleEvent), FiberSet.run(background))

      // The main-thread half of one job: own the socket, answer the worker's requests on the port.
      const bridge = (worker: PoolWorker, id: number, job: Strategy.Job<unknown>, done: Deferred.Deferred<Strategy.Outcome>) =>
        Effect.gen(function*() {
          const { port1, port2 } = new MessageChannel()
          yield* Effect.addFinalizer(() => Effect.sync(() => port1.close()))
          const reads = yield* Queue.unbounded<void>()
          const ordered = yield* Queue.unbounded<Ipc.FromJob>()
          port1.on("message", (raw) => {
            const decoded = decodeFromJob(raw)
            if (decoded._tag === "Failure") return
            if (decoded.success._tag === "Read") Queue.offerUnsafe(reads, undefined)
            else Queue.offerUnsafe(ordered, decoded.success)
          })
          const post = (message: Ipc.ToJob, transfer: Array<ArrayBuffer> = []) => port1.postMessage(message, transfer)
          const incoming = job.incoming
          if (incoming._tag === "IncomingConnection") {
            const opened = yield* Effect.exit(incoming.open(job.openOptions))
            if (opened._tag === "Failure") {
              // The peer left while waiting: nothing to serve.
              return yield* Deferred.succeed(done, { _tag: "Aborted", reason: "the peer left before it was served" })
            }
            const connection = opened.value
            worker.thread.postMessage(
              {
                _tag: "Job",
                job: id,
                port: port2,
                connection: {
                  id: incoming.id,
                  transport: incoming.transport,
                  localAddress: Ipc.toWireAddress(incoming.localAddress),
                  ...(incoming.remoteAddress ? { remoteAddress: Ipc.toWireAddress(incoming.remoteAddress) } : {}),
                  peer: incoming.peer
                }
              } satisfies Ipc.ToWorker,
              [port2]
            )
            // Reader: one socket read per unit of credit.
            yield* Effect.forkScoped(Effect.forever(Effect.andThen(Queue.take(reads), Effect.matchEffect(connection.read, {
              onSuccess: (chunks) =>
                Effect.sync(() => {
                  const owned = chunks.map(transferable)
                  post({ _tag: "Data", chunks: owned }, owned.map((c) => c.buffer))
                }),
              onFailure: (error) =>
                Effect.sync(() =>
                  Connection.isEndOfStream(error)
                    ? post({ _tag: "Eof" })
                    : post({ _tag: "ReadError", error: { reason: error.reason, message: error.message } })
                )
            }))))
            // Writer: writes, half-close, close and the end of the job, in the order the worker sent them.
            yield* Effect.forkScoped(Effect.forever(Effect.flatMap(Queue.take(ordered), (message) => {
              switch (message._tag) {
                case "Write":
                  return Effect.matchEffect(connection.writeAll(message.chunks), {
                    onSuccess: () => Effect.sync(() => post({ _tag: "Ack", seq: message.seq })),
                    onFailure: (error) => Effect.sync(() => post({ _tag: "Ack", seq: message.seq, error: error.message }))
                  })
                case "End":
                  return connection.end
                case "Close":
                  return connection.close
                case "Done":
                  return Deferred.succeed(done, Pool.outcomeOf(`worker ${worker.id}`, message.outcome))
                default:
                  return Effect.void
              }
            })), { startImmediately: true })
          } else {
            const datagram = incoming.datagram
            worker.thread.postMessage(
              {
                _tag: "Job",
                job: id,
                port: port2,
                datagram: {
                  transport: datagram.transport,
                  payload: datagram.payload,
                  ...(datagram.sender ? { sender: Ipc.toWireAddress(datagram.sender) } : {}),
                  peer: datagram.peer
                }
              } satisfies Ipc.ToWorker,
              [port2]
            )
            yield* Effect.forkScoped(Effect.forever(Effect.flatMap(Queue.take(ordered), (message) => {
              switch (message._tag) {
                case "Reply":
                  return Effect.matchEffect(datagram.reply(message.payload), {
                    onSuccess: () => Effect.sync(() => post({ _tag: "Ack", seq: message.seq })),
                    onFailure: (error) => Effect.sync(() => post({ _tag: "Ack", seq: message.seq, error: error.message }))
                  })
                case "Done":
                  return Deferred.succeed(done, Pool.outcomeOf(`worker ${worker.id}`, message.outcome))
                default:
                  return Effect.void
              }
            })), { startImmediately: true })
          }
          yield* Deferred.await(done)
        }).pipe(Effect.scoped)

      const serveJob = (worker: PoolWorker, job: Strategy.Job<unknown>) => {
        pool.beforeJob(worker)
        const id = ++nextJob
        const done = Deferred.makeUnsafe<Strategy.Outcome>()
        worker.jobs.set(id, done)
        return bridge(worker, id, job, done).pipe(
          Effect.andThen(Deferred.await(done)),
          Effect.onInterrupt(() => Deferred.succeed(done, { _tag: "Aborted", reason: "shutdown" })),
          Effect.catchCause((cause) => Effect.succeed<Strategy.Outcome>({ _tag: "Failed", cause })),
          Effect.ensuring(Effect.sync(() => worker.jobs.delete(id))),
          Effect.flatMap((outcome) => job.complete(outcome)),
          Effect.onInterrupt(() => job.complete({ _tag: "Aborted", reason: "shutdown" }))
        )
      }

      const initial = Array.from({ length: size }, spawn)
      yield* Effect.forEach(initial, (worker) => pool.awaitReady(worker, startTimeout), {
        concurrency: "unbounded",
        discard: true
      })

      yield* Stream.runForEach(jobs, (job) =>
        Effect.flatMap(pool.pick, (worker) => FiberSet.run(running, serveJob(worker, job as unknown as Strategy.Job<unknown>))))
      // The jobs stream ended: the server stopped accepting. Tell the workers (their handlers may
      // finish early), drain, then the finalizer terminates the workers.
      pool.shutdownBegan()
      yield* FiberSet.awaitEmpty(running)
    }).pipe(Effect.scoped) as Effect.Effect<void, Strategy.StrategyError, R>

  return { name: "worker", run, workers: Effect.sync(() => [...live]) }
}

/**
 * The worker strategy as a layer.
 * @category layers
 */
export const layer = (options?: Options): Layer.Layer<Strategy.Strategy> => Layer.succeed(Strategy.Strategy, make(options))

/**
 * The remote-execution engine behind the `fork` and `worker` strategies: handlers run in other
 * processes or threads ("members"), which load them by their `Handler.Reference`.
 *
 * The engine owns everything both kinds share:
 * - members: starting them, the Ready / LoadFailed handshake, forwarding their log lines and stderr
 *   into the server's log (annotated with the member's id), replacing one that crashed, and reaping
 *   every one of them whatever way `run` ends;
 * - jobs: a pool (each job to the least busy member) or a fresh member per job, the job table, how
 *   each job ended, and the datagram replies members ask the server to send;
 * - graceful shutdown: members hear that it began (so `Server.Shutdown` fires for their handlers too),
 *   the engine drains their jobs, then stops them (`Stop`, a grace period, then force).
 *
 * What differs per kind is a small `MemberTransport`: how a member starts, how a message reaches it,
 * how an accepted connection is passed to it, and how it is forced down. The member side is
 * `runner.ts`, one entry for both kinds. The split is effect's `Worker` / `WorkerRunner` over a
 * platform layer; effect's own Node platform does not fit because it cannot pass a socket to a
 * child process (its `send` takes no handle, and its runner drops the one that comes), it ends a
 * child with SIGKILL only, and it keeps no stderr.
 *
 * A connection travels with its socket, which the listener attached (see `handoff.ts`): the member
 * owns it from then on and serves it with the same `Connection` as in-process strategies. On a TLS
 * listener the member does the handshake, with the settings sent once per version to each member.
 */
import { Cause, Deferred, Duration, Effect, Exit, FiberSet, Queue, Schema, Semaphore, Stream } from "effect"
import type { Scope } from "effect"
import type * as Net from "node:net"
import type { Readable } from "node:stream"
import type * as Connection from "../Connection.ts"
import type * as Handler from "../Handler.ts"
import type * as Listener from "../Listener.ts"
import type * as Strategy from "../Strategy.ts"
import * as Handoff from "./handoff.ts"
import * as Ipc from "./ipcMessages.ts"
import * as Pool from "./pool.ts"

/** How long a member may take to load the handler and say it is ready. */
export const defaultStartTimeout: Duration.Input = "30 seconds"

/** How long a stopping member gets to exit before it is forced (after `Stop`, and between SIGTERM and SIGKILL). */
export const defaultStopGrace: Duration.Input = "2 seconds"

/**
 * A connection handed to a transport for one member.
 */
export interface PassedConnection {
  /** The message that announces the job; the socket (or a bridge port) goes alongside. */
  readonly message: Ipc.ConnectionJob
  /** The accepted socket, when the listener attached one; from now on the transport's. */
  readonly socket: Net.Socket | undefined
  /** Opens the connection in this thread instead, for a transport that must relay its bytes. */
  readonly open: Effect.Effect<Connection.Connection, Connection.ConnectionError, Scope.Scope>
}

/**
 * What a member reports to the engine.
 * - `Message`: a message it sent (decoded by the engine).
 * - `Stderr`: a line it wrote to stderr.
 * - `Exited`: it is gone and reaped; `reason` says how (`"exit code 3"`, `"signal SIGKILL"`).
 */
export type MemberEvent =
  | { readonly _tag: "Message"; readonly message: unknown }
  | { readonly _tag: "Stderr"; readonly line: string }
  | { readonly _tag: "Exited"; readonly reason: string }

/**
 * One started member, as its transport drives it.
 */
export interface MemberLink {
  /** Pid or thread id. */
  readonly id: number
  /** Sends a message; never throws (a member that is gone reports `Exited` instead). */
  readonly post: (message: Ipc.ToMember) => void
  /**
   * Passes one connection to the member. The scope is the job's: what the transport keeps for the
   * connection (its copy of the socket, a bridge) is released when the job ends, however it ends.
   */
  readonly pass: (connection: PassedConnection) => Effect.Effect<void, Error, Scope.Scope>
  /** Forces the member down, mid-job or not; returns once it has exited. */
  readonly kill: Effect.Effect<void>
}

/**
 * How the engine starts and reaches members of one kind.
 */
export interface MemberTransport {
  readonly strategy: "fork" | "worker"
  /** Names a member in messages: `"fork child"`, `"worker"`. */
  readonly noun: string
  /** Annotates a member's log lines with its id under this key: `"pid"`, `"threadId"`. */
  readonly idKey: string
  /** Starts a member that loads `reference`; it reports everything through `report`, never synchronously. */
  readonly spawn: (reference: Handler.Reference, report: (event: MemberEvent) => void) => MemberLink
}

/** `Pool`: members picked by load, replaced after a crash. `PerJob`: a fresh member per job, at most `max` at once. */
export type Mode =
  | { readonly _tag: "Pool"; readonly size: number }
  | { readonly _tag: "PerJob"; readonly max: number }

/**
 * Options of the engine.
 */
export interface Options {
  readonly mode: Mode
  readonly startTimeout: Duration.Input
  readonly stopGrace: Duration.Input
}

/**
 * A running engine: the strategy's `run`, and the ids of the members alive right now.
 */
export interface Engine {
  readonly run: Strategy.Strategy["Service"]["run"]
  readonly members: Effect.Effect<ReadonlyArray<number>>
}

interface Member extends Pool.Member {
  readonly link: MemberLink
  readonly jobs: Map<number, RemoteJob>
  readonly exited: Deferred.Deferred<void>
  /** The TLS settings version this member was last sent (it keeps the settings of each version it got). */
  tlsVersion: number | undefined
}

interface RemoteJob {
  readonly job: Strategy.Job<unknown>
  readonly done: Deferred.Deferred<Strategy.Outcome>
}

const decodeFromMember = Schema.decodeUnknownResult(Ipc.FromMember)

/** Calls `onLine` with every non-blank line of a text stream (a member's stderr). */
export const forwardLines = (stream: Readable | null | undefined, onLine: (line: string) => void): void => {
  let partial = ""
  stream?.on("data", (chunk: Buffer) => {
    const lines = (partial + chunk.toString("utf8")).split("\n")
    partial = lines.pop() ?? ""
    for (const line of lines) if (line.trim() !== "") onLine(line)
  })
}

/**
 * The handler's reference, or the error that explains how to give it one.
 */
const referenceOf = (
  strategy: Strategy.Name,
  handler: Handler.Handler<unknown, unknown>
): Effect.Effect<Handler.Reference, Strategy.StrategyError> =>
  handler.reference !== undefined ? Effect.succeed(handler.reference) : Effect.fail(Pool.error(
    strategy,
    `handler "${handler.name}" has no reference: the fork and worker strategies load handlers in another ` +
      `process or thread, so define it with Handler.stream(fn, { module: import.meta.url, export: "name" }) ` +
      `(or Handler.datagram) as an export of a module without top-level side effects`
  ))

const messageOf = (error: unknown): string => error instanceof Error ? error.message : String(error)

/** A job's wire outcome -> the strategy's outcome. */
const outcomeOf = (where: string, outcome: Ipc.WireOutcome): Strategy.Outcome =>
  outcome._tag === "Failed" ? { _tag: "Failed", cause: Ipc.causeOfFailure(where, outcome.failure) } : outcome

/** How a job ends when its member exits under it: aborted when we stopped the member, failed when it crashed. */
const lostJob = (where: string, crashed: boolean, reason: string): Strategy.Outcome =>
  crashed
    ? {
      _tag: "Failed",
      cause: Cause.fail(
        new Ipc.RemoteHandlerError({
          where,
          tag: "MemberExited",
          message: `${where} exited (${reason}) while serving this job`
        })
      )
    }
    : { _tag: "Aborted", reason: `${where} stopped (${reason})` }

const connectionJob = (
  id: number,
  incoming: Listener.IncomingConnection,
  job: Strategy.Job<unknown>,
  socket: Net.Socket | undefined,
  tls: Ipc.ConnectionMeta["tls"]
): Ipc.ConnectionJob => ({
  _tag: "Connection",
  job: id,
  meta: {
    id: incoming.id,
    transport: incoming.transport,
    localAddress: Ipc.toWireAddress(incoming.localAddress),
    ...(incoming.remoteAddress ? { remoteAddress: Ipc.toWireAddress(incoming.remoteAddress) } : {}),
    peer: incoming.peer,
    allowHalfOpen: socket?.allowHalfOpen ?? true,
    ...(job.openOptions.idleTimeout !== undefined
      ? { idleTimeoutMillis: Duration.toMillis(Duration.fromInputUnsafe(job.openOptions.idleTimeout)) }
      : {}),
    ...(tls === undefined ? {} : { tls })
  }
})

/** The TLS part of a connection's message: the current settings' version, with the settings if `member` lacks them. */
const tlsFor = (incoming: Listener.IncomingConnection, member: Member): Ipc.ConnectionMeta["tls"] => {
  const settings = Handoff.tlsOf(incoming)?.current
  if (settings === undefined) return undefined
  return member.tlsVersion === settings.version ? { version: settings.version } : { version: settings.version, settings }
}

const datagramJob = (id: number, incoming: Listener.IncomingDatagram): Ipc.ToMember => ({
  _tag: "Datagram",
  job: id,
  meta: {
    transport: incoming.datagram.transport,
    payload: incoming.datagram.payload,
    ...(incoming.datagram.sender ? { sender: Ipc.toWireAddress(incoming.datagram.sender) } : {}),
    peer: incoming.datagram.peer
  }
})

/**
 * Builds an engine over `transport`.
 */
export const make = (transport: MemberTransport, options: Options): Engine => {
  const { noun, strategy } = transport
  const live = new Set<number>()

  const run = <E, R>(jobs: Stream.Stream<Strategy.Job<R>>, handler: Handler.Handler<E, R>) =>
    Effect.gen(function*() {
      const reference = yield* referenceOf(strategy, handler as Handler.Handler<unknown, unknown>)
      const events = yield* Queue.unbounded<Event>()
      // Fibers that serve the engine itself (events, datagram replies) and one fiber per job.
      const background = yield* FiberSet.make<void, never>()
      const running = yield* FiberSet.make<void, never>()
      const pool = Pool.make<Member>({
        strategy,
        noun,
        announceShutdown: (member) => member.link.post({ _tag: "Shutdown" })
      })
      let nextJob = 0

      const spawn = (): Member => {
        const link = transport.spawn(reference, (event) => {
          switch (event._tag) {
            case "Message":
              return onMessage(member, event.message)
            case "Stderr":
              return Queue.offerUnsafe(events, { member, event })
            case "Exited":
              return onExited(member, event.reason)
          }
        })
        const member: Member = pool.add({
          link,
          id: link.id,
          jobs: new Map(),
          ready: Deferred.makeUnsafe(),
          exited: Deferred.makeUnsafe(),
          isReady: false,
          stopping: false,
          tlsVersion: undefined
        })
        live.add(member.id)
        return member
      }

      // The handshake and outcomes are settled as they arrive, in the order they arrive: a member's last
      // `Done` counts before its exit does. What needs an effect (logs, replies) goes to the event fiber.
      const onMessage = (member: Member, raw: unknown) => {
        const decoded = decodeFromMember(raw)
        if (decoded._tag === "Failure") {
          return Queue.offerUnsafe(events, { member, event: { _tag: "Unexpected", message: decoded.failure.message } })
        }
        const message = decoded.success
        switch (message._tag) {
          case "Ready":
            pool.markReady(member)
            return Deferred.doneUnsafe(member.ready, Effect.void)
          case "LoadFailed": {
            const error = Pool.error(strategy, `${noun} could not load handler "${handler.name}": ${message.message}`)
            return Deferred.doneUnsafe(member.ready, Effect.fail(error))
          }
          case "Done": {
            const done = member.jobs.get(message.job)?.done
            if (done === undefined) return
            return Deferred.doneUnsafe(done, Effect.succeed(outcomeOf(`${noun} ${member.id}`, message.outcome)))
          }
          case "Reply":
          case "Log":
            return Queue.offerUnsafe(events, { member, event: message })
        }
      }

      // Settled at once too: a job must not be given to a member that is gone.
      const onExited = (member: Member, reason: string) => {
        live.delete(member.id)
        const replace = pool.remove(member)
        const crashed = !member.stopping
        const lost = lostJob(`${noun} ${member.id}`, crashed, reason)
        for (const { done } of member.jobs.values()) Deferred.doneUnsafe(done, Effect.succeed(lost))
        const early = Pool.error(strategy, `${noun} ${member.id} exited before it was ready`)
        Deferred.doneUnsafe(member.ready, Effect.fail(early))
        Deferred.doneUnsafe(member.exited, Effect.void)
        Queue.offerUnsafe(events, { member, event: { _tag: "Exited", reason, crashed, replace } })
      }

      const kill = (member: Member) =>
        Effect.suspend(() => {
          member.stopping = true
          return Effect.andThen(member.link.kill, Deferred.await(member.exited))
        })

      // `Stop` lets the member finish its jobs and exit; one that does not within the grace period is forced.
      const stop = (member: Member) =>
        Effect.suspend(() => {
          member.stopping = true
          member.link.post({ _tag: "Stop" })
          return Effect.timeoutOption(Deferred.await(member.exited), options.stopGrace).pipe(
            Effect.flatMap((gone) => gone._tag === "None" ? kill(member) : Effect.void)
          )
        })

      // Whatever ends `run` (drain, failure, interruption), no member outlives it.
      yield* Effect.addFinalizer(() =>
        Effect.suspend(() => {
          pool.stop()
          return Effect.forEach([...pool.members], kill, { concurrency: "unbounded", discard: true })
        })
      )

      const reply = (member: Member, job: number, seq: number, payload: Uint8Array) => {
        const answer = (error?: string) =>
          member.link.post({ _tag: "Replied", seq, ...(error === undefined ? {} : { error }) })
        const incoming = member.jobs.get(job)?.job.incoming
        if (incoming?._tag !== "IncomingDatagram") return Effect.sync(() => answer("the datagram's job is over"))
        return incoming.datagram.reply(payload).pipe(
          Effect.matchCause({ onSuccess: () => answer(), onFailure: (cause) => answer(messageOf(Cause.squash(cause))) })
        )
      }

      const handleEvent = ({ member, event }: Event): Effect.Effect<void> => {
        const annotate = Effect.annotateLogs({ [transport.idKey]: String(member.id), strategy })
        switch (event._tag) {
          case "Stderr":
            return Effect.logWarning(event.line).pipe(annotate, Effect.annotateLogs({ stream: "stderr" }))
          case "Log":
            return Effect.logWithLevel(event.level)(event.message).pipe(
              Effect.annotateLogs(event.annotations),
              annotate
            )
          case "Unexpected":
            return Effect.logWarning(`unexpected message from ${noun}`, event.message).pipe(annotate)
          case "Reply":
            return FiberSet.run(background, reply(member, event.job, event.seq, event.payload)).pipe(Effect.asVoid)
          case "Exited":
            return Effect.gen(function*() {
              if (event.crashed && !pool.isStopping()) {
                yield* Effect.logWarning(`${noun} exited unexpectedly (${event.reason})`).pipe(annotate)
              }
              if (options.mode._tag === "Pool" && event.replace) {
                yield* Effect.logInfo(`replacing ${noun}`).pipe(annotate)
                spawn()
              }
            })
        }
      }
      yield* Stream.fromQueue(events).pipe(Stream.runForEach(handleEvent), FiberSet.run(background))

      // Runs one job on the member `acquire` gives and waits for its outcome; completes the job exactly
      // once, however this ends. The job's scope holds what the transport keeps for the connection.
      const serveJob = (job: Strategy.Job<unknown>, acquire: Effect.Effect<Member, Strategy.StrategyError>) => {
        const incoming = job.incoming
        let forget = (): void => {}
        let handedOver = false
        return Effect.gen(function*() {
          const member = yield* acquire
          const id = ++nextJob
          const done = Deferred.makeUnsafe<Strategy.Outcome>()
          member.jobs.set(id, { job, done })
          forget = () => member.jobs.delete(id)
          if (incoming._tag === "IncomingDatagram") {
            member.link.post(datagramJob(id, incoming))
          } else {
            const socket = Handoff.socketOf(incoming)
            const tls = tlsFor(incoming, member)
            const passed = yield* Effect.exit(member.link.pass({
              message: connectionJob(id, incoming, job, socket, tls),
              socket,
              open: incoming.open(job.openOptions)
            }))
            if (Exit.isFailure(passed)) {
              const why = messageOf(Cause.squash(passed.cause))
              const reason = `could not pass the connection to ${noun} ${member.id}: ${why}`
              return { _tag: "Aborted", reason } as const
            }
            // Sent in order on one channel: later connections to this member can name the version alone.
            if (tls !== undefined) member.tlsVersion = tls.version
          }
          handedOver = true
          const outcome = yield* Deferred.await(done)
          if (options.mode._tag === "PerJob") yield* FiberSet.run(background, stop(member))
          return outcome
        }).pipe(
          Effect.scoped,
          Effect.onExit((exit) => {
            forget()
            const outcome: Strategy.Outcome = Exit.isSuccess(exit)
              ? exit.value
              : Cause.hasInterruptsOnly(exit.cause)
              ? { _tag: "Aborted", reason: "shutdown" }
              : { _tag: "Failed", cause: exit.cause }
            // A connection that never reached a member is still ours to close.
            const reject = handedOver || incoming._tag === "IncomingDatagram" ? Effect.void : incoming.reject
            return Effect.andThen(reject, job.complete(outcome))
          }),
          Effect.exit,
          Effect.asVoid
        )
      }

      // A function cannot reach a member, so a TLS listener that picks certificates with one cannot be served here:
      // fail the run (the server reports it) rather than serve with the wrong certificates.
      const refuseInProcessTls = (job: Strategy.Job<unknown>): Effect.Effect<void, Strategy.StrategyError> => {
        const incoming = job.incoming
        if (incoming._tag !== "IncomingConnection" || Handoff.tlsOf(incoming)?.sniCallback === undefined) return Effect.void
        const message = `the TLS listener chooses certificates with an sniCallback, which cannot run in a ${noun}: ` +
          `give them by host name with the \`sni\` option instead, or serve with the sequential or fiber strategy`
        return Effect.andThen(
          Effect.andThen(incoming.reject, job.complete({ _tag: "Aborted", reason: message })),
          Effect.fail(Pool.error(strategy, message))
        )
      }

      if (options.mode._tag === "Pool") {
        const initial = Array.from({ length: Math.max(1, options.mode.size) }, spawn)
        yield* Effect.forEach(initial, (member) => pool.awaitReady(member, options.startTimeout), {
          concurrency: "unbounded",
          discard: true
        })
        yield* Stream.runForEach(jobs, (job) =>
          refuseInProcessTls(job as Strategy.Job<unknown>).pipe(
            Effect.andThen(pool.pick),
            Effect.flatMap((member) => FiberSet.run(running, serveJob(job as Strategy.Job<unknown>, Effect.succeed(member))))
          ))
      } else {
        const slots = yield* Semaphore.make(Math.max(1, options.mode.max))
        const fresh = Effect.gen(function*() {
          const member = spawn()
          // The slot is the member: free again once it has exited, not when its job ends.
          yield* Effect.forkDetach(Effect.andThen(Deferred.await(member.exited), Semaphore.release(slots, 1)), {
            startImmediately: true
          })
          const ready = yield* Effect.exit(pool.awaitReady(member, options.startTimeout))
          if (Exit.isFailure(ready)) {
            yield* FiberSet.run(background, stop(member))
            return yield* Effect.failCause(ready.cause)
          }
          return member
        })
        yield* Stream.runForEach(jobs, (job) =>
          refuseInProcessTls(job as Strategy.Job<unknown>).pipe(
            Effect.andThen(Semaphore.take(slots, 1)),
            Effect.andThen(FiberSet.run(running, serveJob(job as Strategy.Job<unknown>, fresh)))
          ))
      }

      // The jobs stream ended: the server stopped accepting. Tell the members (their handlers may
      // finish early), drain, then stop every member gracefully.
      pool.shutdownBegan()
      yield* FiberSet.awaitEmpty(running)
      pool.stop()
      yield* Effect.forEach([...pool.members], stop, { concurrency: "unbounded", discard: true })
    }).pipe(Effect.scoped) as Effect.Effect<void, Strategy.StrategyError, R>

  return { run, members: Effect.sync(() => [...live]) }
}

/** What the event fiber handles for a member: what needs an effect, and each exit with what the engine decided. */
interface Event {
  readonly member: Member
  readonly event:
    | { readonly _tag: "Stderr"; readonly line: string }
    | Extract<Ipc.FromMember, { readonly _tag: "Log" | "Reply" }>
    | { readonly _tag: "Unexpected"; readonly message: string }
    | { readonly _tag: "Exited"; readonly reason: string; readonly crashed: boolean; readonly replace: boolean }
}

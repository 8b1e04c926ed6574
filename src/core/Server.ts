/**
 * The server: serve forever, handle one, shut down gracefully; hooks and limits around every job.
 *
 * `Server.layer(options)` needs a `Listener` (where connections come from) and a `Strategy` (how
 * they run). A handler written once runs under any combination:
 *
 * ```ts
 * const ServerLive = Server.layer().pipe(
 *   Layer.provide([StreamListener.layerTcp({ port: 7000 }), Strategy.layerFiber()])
 * )
 *
 * Main.runMain(
 *   Server.serve(EchoServer.streamHandler, { onListening: Main.printListening }).pipe(Effect.provide(ServerLive))
 * )
 * ```
 *
 * Python's SocketServer, mapped: `serve_forever` is `serve`, `handle_request` with `timeout` is
 * `handleOne`, `shutdown` is `shutdown`, `verify_request` is `options.verify`, `handle_error`
 * is `options.onError`, `daemon_threads` is `shutdownMode: "immediate"`.
 *
 * This file imports no Node module.
 *
 * @since 0.1.0
 */
import { Array as Arr, Cause, Context, Deferred, Duration, Effect, Exit, Fiber, Latch, Layer, Option, Schema, Semaphore, Stream } from "effect"
import type { NetAddress } from "effect/net"
import * as Connection from "./Connection.ts"
import type * as Handler from "./Handler.ts"
import * as Listener from "./Listener.ts"
import * as Metrics from "./Metrics.ts"
import * as Strategy from "./Strategy.ts"
import type * as Transport from "./Transport.ts"

/**
 * A peer as the hooks see it.
 * @category models
 */
export interface Peer {
  readonly id: number
  readonly transport: Transport.Kind
  /** `"127.0.0.1:51234"`, a Unix path, `"local"` (Unix-stream peer) or `"anonymous"` (unbound Unix-datagram sender). */
  readonly peer: string
  readonly address: NetAddress.SocketAddress | undefined
}

/**
 * A handler failed or died. Interruption (shutdown) is not a failure.
 * @category models
 */
export interface HandlerFailure extends Peer {
  readonly handler: string
  readonly cause: Cause.Cause<unknown>
}

/**
 * Server options. All optional.
 * @category models
 */
export interface Options {
  /**
   * At most this many connections/datagrams are served at once; at the limit the server stops
   * taking accepted connections (they wait unread) until one finishes. Default: no limit.
   */
  readonly maxConnections?: number | undefined
  /** Close a connection after this long without reading or writing. Default: never. */
  readonly idleTimeout?: Duration.Input | undefined
  /** How long a graceful shutdown waits for in-flight handlers before interrupting them. Default 10 seconds. */
  readonly drainTimeout?: Duration.Input | undefined
  /** `"graceful"` (default) drains in-flight handlers; `"immediate"` interrupts them at once. */
  readonly shutdownMode?: "graceful" | "immediate" | undefined
  /** Decides whether to serve a peer; `false` closes the connection (or drops the datagram) unserved. */
  readonly verify?: ((peer: Peer) => Effect.Effect<boolean>) | undefined
  /**
   * Observes handler failures. Runs after the failure is logged and counted; whatever it does, the
   * server and other connections go on. Default: nothing more.
   */
  readonly onError?: ((failure: HandlerFailure) => Effect.Effect<void>) | undefined
}

/** @category constants */
export const defaultDrainTimeout: Duration.Input = "10 seconds"

/**
 * Lets a handler notice that a graceful shutdown has begun, so that it can finish early: close an
 * idle keep-alive connection, tell a chat client goodbye. Read it with `yield* Server.Shutdown`.
 * Fork children and worker threads get it too. Outside a server it never fires.
 * @category models
 */
export interface ShutdownSignal {
  /** Completes when shutdown begins. */
  readonly requested: Effect.Effect<void>
  /** Whether shutdown has begun. */
  readonly isRequested: Effect.Effect<boolean>
}

/**
 * The current server's shutdown signal, available to every handler the server runs in-process.
 * @category services
 */
export const Shutdown = Context.Reference<ShutdownSignal>("effect-netkit/core/Server/Shutdown", {
  defaultValue: () => ({ requested: Effect.never, isRequested: Effect.succeed(false) })
})

/**
 * What `handleOne` did.
 * @category models
 */
export type HandleResult =
  | { readonly _tag: "Handled"; readonly peer: Peer }
  | { readonly _tag: "Rejected"; readonly peer: Peer }
  | { readonly _tag: "TimedOut" }
  | { readonly _tag: "Stopped" }

/**
 * The server cannot serve with this handler or strategy.
 * @category errors
 */
export class ServerError extends Schema.TaggedError<ServerError>()("ServerError", {
  reason: Schema.Literals(["HandlerMismatch", "StrategyFailed"]),
  message: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {}

/**
 * A running server bound to one listener.
 * @category services
 */
export class Server extends Context.Service<Server, {
  readonly address: NetAddress.SocketAddress
  readonly transport: Transport.Kind
  readonly strategy: Strategy.Name
  /** Serves until `shutdown` (returns after draining) or interruption (drains, then ends). */
  readonly serve: <E, R>(handler: Handler.Handler<E, R>) => Effect.Effect<void, ServerError, R>
  /** Waits for one connection or datagram (at most `timeout`) and serves it to completion. */
  readonly handleOne: <E, R>(
    handler: Handler.Handler<E, R>,
    options?: { readonly timeout?: Duration.Input | undefined }
  ) => Effect.Effect<HandleResult, ServerError, R>
  /**
   * Stops accepting (the listening socket closes), lets in-flight handlers finish within the drain
   * timeout, interrupts the rest, and returns when every `serve` has ended. Final.
   */
  readonly shutdown: Effect.Effect<void>
}>()("effect-netkit/core/Server") {}

const peerOf = (incoming: Listener.Incoming, kind: Transport.Kind): Peer =>
  incoming._tag === "IncomingConnection"
    ? { id: incoming.id, transport: kind, peer: incoming.peer, address: incoming.remoteAddress }
    : { id: incoming.id, transport: kind, peer: incoming.datagram.peer, address: incoming.datagram.sender }

/** What `serve` closes when it ends: the jobs handed out and not finished yet. */
interface Abandonable {
  readonly abandon: () => Effect.Effect<void>
}
type Unfinished = Set<Abandonable>

// The peer left while waiting to be served: nothing to handle, nothing failed.
const leftBeforeServed = (error: Connection.ConnectionError) =>
  error.reason === "Closed" ? Effect.interrupt : Effect.fail(error)

const ignoreCause = (_cause: Cause.Cause<unknown>) => Effect.void

/**
 * Builds a server over the current `Listener` and `Strategy`. Releasing its scope shuts it down.
 * @category constructors
 */
export const make = Effect.fnUntraced(function*(options: Options = {}) {
  const listener = yield* Listener.Listener
  const strategy = yield* Strategy.Strategy
  const kind = listener.kind
  const drainTimeout = options.drainTimeout ?? defaultDrainTimeout
  const graceful = (options.shutdownMode ?? "graceful") === "graceful"
  const slots = options.maxConnections !== undefined && Number.isFinite(options.maxConnections)
    ? yield* Semaphore.make(Math.max(1, options.maxConnections))
    : undefined
  const stopping = yield* Deferred.make<void>()
  // Open while no `serve`/`handleOne` runs: `shutdown` waits on it.
  let serving = 0
  const idle = yield* Latch.make(true)

  const openOptions: Listener.OpenOptions = { idleTimeout: options.idleTimeout }

  const reportFailure = (peer: Peer, handler: string, cause: Cause.Cause<unknown>) =>
    Effect.gen(function*() {
      yield* Metrics.handlerFailed(kind)
      // A peer that resets or idles out is routine; anything else deserves attention.
      const routine = Option.match(Cause.findErrorOption(cause), {
        onNone: () => false,
        onSome: (error) => error instanceof Connection.ConnectionError
      })
      yield* (routine ? Effect.logDebug : Effect.logWarning)("handler failed", cause).pipe(
        Effect.annotateLogs({ transport: kind, peer: peer.peer, connection: peer.id, handler })
      )
      if (options.onError) {
        yield* options.onError({ ...peer, handler, cause }).pipe(
          Effect.catchCause((hookCause) => Effect.logError("onError hook failed", hookCause))
        )
      }
    })

  const runHandler = <E, R>(incoming: Listener.Incoming, handler: Handler.Handler<E, R>): Effect.Effect<void, unknown, R> => {
    if (incoming._tag === "IncomingDatagram") {
      // Suspended: a handler that throws synchronously is a failure of this job, not of `serve`.
      return Effect.suspend(() => (handler as Handler.DatagramHandler<E, R>).handle(incoming.datagram)) as Effect.Effect<
        void,
        E,
        R
      >
    }
    const handle = (handler as Handler.StreamHandler<E, R>).handle
    return Effect.scoped(
      Effect.flatMap(Effect.catch(incoming.open(openOptions), leftBeforeServed), handle)
    ) as Effect.Effect<void, E | Connection.ConnectionError, R>
  }

  // Jobs that were handed to the strategy and not finished yet: whatever happens to the strategy,
  // these are closed and their slots released when `serve` ends.
  const completeElsewhere = (incoming: Listener.Incoming, handler: string, outcome: Strategy.Outcome) =>
    outcome._tag === "Failed"
      ? reportFailure(peerOf(incoming, kind), handler, outcome.cause)
      : outcome._tag === "Aborted"
      ? Effect.logDebug("job aborted", outcome.reason).pipe(Effect.annotateLogs({ transport: kind, id: incoming.id }))
      : Effect.void

  const makeJob = <E, R>(
    incoming: Listener.Incoming,
    handler: Handler.Handler<E, R>,
    unfinished: Unfinished
  ): Strategy.Job<R> => {
    // A datagram with no slot to release has nothing to close or give back: no bookkeeping, which
    // is most of the per-datagram cost of a UDP server.
    if (incoming._tag === "IncomingDatagram" && slots === undefined) {
      return {
        incoming,
        openOptions,
        runHere: Effect.catchCause(runHandler(incoming, handler), (cause) =>
          Cause.hasInterruptsOnly(cause) ? Effect.void : reportFailure(peerOf(incoming, kind), handler.name, cause)),
        complete: (outcome) => completeElsewhere(incoming, handler.name, outcome)
      }
    }
    return new TrackedJob(incoming, handler, unfinished)
  }

  // A job with a slot to give back or a connection to close, tracked in `unfinished` until it finishes. One object
  // per connection (a server may hold many): what it runs is built from shared parts and one closure.
  class TrackedJob<R> implements Strategy.Job<R>, Abandonable {
    readonly incoming: Listener.Incoming
    readonly handler: Handler.Handler<unknown, R>
    readonly unfinished: Unfinished
    finished = false

    constructor(incoming: Listener.Incoming, handler: Handler.Handler<unknown, R>, unfinished: Unfinished) {
      this.incoming = incoming
      this.handler = handler
      this.unfinished = unfinished
      unfinished.add(this)
    }

    // Built when a strategy takes it, so that the job does not keep the effect's parts alive while it runs.
    get runHere(): Effect.Effect<void, never, R> {
      // the outcome is reported (and the job finished) on every exit; the failure itself goes no further
      return Effect.catchCause(Effect.onExit(runHandler(this.incoming, this.handler), (exit) => this.exited(exit)), ignoreCause)
    }

    get openOptions(): Listener.OpenOptions {
      return openOptions
    }

    exited(exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> {
      if (Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause)) return this.finish()
      return Effect.ensuring(reportFailure(peerOf(this.incoming, kind), this.handler.name, exit.cause), this.finish())
    }

    finish(): Effect.Effect<void> {
      if (this.finished) return Effect.void
      this.finished = true
      this.unfinished.delete(this)
      return slots ? Semaphore.release(slots, 1) : Effect.void
    }

    complete(outcome: Strategy.Outcome): Effect.Effect<void> {
      return Effect.ensuring(completeElsewhere(this.incoming, this.handler.name, outcome), Effect.suspend(() => this.finish()))
    }

    abandon(): Effect.Effect<void> {
      const incoming = this.incoming
      return Effect.andThen(
        incoming._tag === "IncomingConnection" ? incoming.reject : Effect.void,
        Effect.suspend(() => this.finish())
      )
    }
  }

  const countArrivals = (batch: Arr.NonEmptyReadonlyArray<Listener.Incoming>) => {
    if (batch[0]._tag === "IncomingConnection") return Metrics.accepted(kind, batch.length)
    let bytes = 0
    for (const incoming of batch) if (incoming._tag === "IncomingDatagram") bytes += incoming.datagram.payload.byteLength
    return Metrics.received(kind, batch.length, bytes)
  }

  // Accepted item -> job, or nothing when the verify hook says no. Waiting for a slot happens
  // here, so at the connection limit the server simply stops taking accepted connections.
  const prepare = <E, R>(incoming: Listener.Incoming, handler: Handler.Handler<E, R>, unfinished: Unfinished) =>
    Effect.gen(function*() {
      if (incoming._tag === "IncomingConnection") yield* Metrics.accepted(kind)
      else yield* Metrics.received(kind, 1, incoming.datagram.payload.byteLength)
      if (slots) yield* Semaphore.take(slots, 1)
      const job = makeJob(incoming, handler, unfinished)
      if (options.verify) {
        const peer = peerOf(incoming, kind)
        const allowed = yield* options.verify(peer).pipe(
          Effect.catchCause((cause) => Effect.as(Effect.logWarning("verify hook failed; peer refused", cause), false))
        )
        if (!allowed) {
          yield* Metrics.rejected(kind)
          yield* Effect.logDebug("peer refused by verify hook").pipe(Effect.annotateLogs({ transport: kind, peer: peer.peer }))
          yield* job.complete({ _tag: "Aborted", reason: "refused by verify hook" })
          if (incoming._tag === "IncomingConnection") yield* incoming.reject
          return undefined
        }
      }
      return job
    }).pipe(Effect.onInterrupt(() => incoming._tag === "IncomingConnection" ? incoming.reject : Effect.void))

  const checkHandler = <E, R>(handler: Handler.Handler<E, R>) => {
    const wanted = kind === "tcp" || kind === "unix" ? "StreamHandler" : "DatagramHandler"
    return handler._tag === wanted ? Effect.void : Effect.fail(
      new ServerError({
        reason: "HandlerMismatch",
        message: `a ${handler._tag} cannot serve a ${kind} listener; use Handler.${
          wanted === "StreamHandler" ? "stream" : "datagram"
        }`
      })
    )
  }

  const enter = Effect.sync(() => {
    if (serving++ === 0) idle.closeUnsafe()
  })
  const leave = Effect.sync(() => {
    if (--serving === 0) idle.openUnsafe()
  })

  // Counts running `serve`/`handleOne` calls so that `shutdown` can wait for all of them.
  const tracked = <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.acquireUseRelease(enter, () => self, () => leave)

  const abandonAll = (unfinished: Unfinished) =>
    Effect.suspend(() => Effect.forEach([...unfinished], (job) => job.abandon(), { discard: true }))

  const runJobs = <E, R>(jobs: Stream.Stream<Strategy.Job<R>>, handler: Handler.Handler<E, R>, unfinished: Unfinished) =>
    Effect.gen(function*() {
      // This serve stops on the server's shutdown or on its own interruption (Ctrl-C reaches
      // `serve` as an interruption); handlers see either through `Shutdown`.
      const stopThis = yield* Deferred.make<void>()
      const stopRequested = Effect.raceFirst(Deferred.await(stopping), Deferred.await(stopThis))
      const shutdownSignal: ShutdownSignal = {
        requested: stopRequested,
        isRequested: Effect.map(
          Effect.all([Deferred.isDone(stopping), Deferred.isDone(stopThis)]),
          ([server, self]) => server || self
        )
      }
      const run = yield* strategy.run(
        jobs.pipe(Stream.interruptWhen(stopRequested)),
        handler
      ).pipe(
        // Fibers that strategies fork for handlers inherit this, so handlers can read `Shutdown`.
        Effect.provideService(Shutdown, shutdownSignal),
        Effect.forkDetach({ startImmediately: true })
      )
      const drainThenInterrupt = Effect.gen(function*() {
        if (graceful) yield* Effect.timeoutOption(Fiber.await(run), drainTimeout)
        yield* Fiber.interrupt(run)
      })
      const exit = yield* Fiber.await(run).pipe(
        Effect.raceFirst(Deferred.await(stopping).pipe(Effect.andThen(drainThenInterrupt), Effect.andThen(Fiber.await(run)))),
        Effect.onInterrupt(() => Effect.andThen(Deferred.succeed(stopThis, undefined), drainThenInterrupt)),
        Effect.ensuring(Effect.andThen(Fiber.interrupt(run), abandonAll(unfinished)))
      )
      if (Exit.isFailure(exit) && !Cause.hasInterruptsOnly(exit.cause)) {
        return yield* new ServerError({
          reason: "StrategyFailed",
          message: `the ${strategy.name} strategy failed: ${Cause.pretty(exit.cause)}`,
          cause: Cause.squash(exit.cause)
        })
      }
    })

  const serve = <E, R>(handler: Handler.Handler<E, R>): Effect.Effect<void, ServerError, R> =>
    Effect.gen(function*() {
      yield* checkHandler(handler)
      const unfinished = new Set<Abandonable>()
      // Without a verify hook or a connection limit nothing can refuse or hold an item, so a
      // whole batch from the listener becomes jobs at once (one metric update per batch).
      const jobs = options.verify === undefined && slots === undefined
        ? listener.incoming.pipe(Stream.mapArrayEffect((batch) =>
          Effect.as(countArrivals(batch), Arr.map(batch, (incoming) => makeJob(incoming, handler, unfinished)))
        ))
        : listener.incoming.pipe(
          Stream.mapEffect((incoming) => prepare(incoming, handler, unfinished)),
          Stream.filter((job): job is Strategy.Job<R> => job !== undefined)
        )
      yield* Effect.logInfo("serving").pipe(
        Effect.annotateLogs({ transport: kind, strategy: strategy.name, handler: handler.name })
      )
      yield* runJobs(jobs, handler, unfinished)
    }).pipe(tracked)

  const handleOne = <E, R>(handler: Handler.Handler<E, R>, handleOptions?: { readonly timeout?: Duration.Input | undefined }) =>
    Effect.gen(function*() {
      yield* checkHandler(handler)
      const next = Effect.raceFirst(
        Effect.map(Effect.option(listener.accept), Option.getOrUndefined),
        Effect.as(Deferred.await(stopping), undefined)
      )
      const incoming = handleOptions?.timeout === undefined
        ? yield* next
        : yield* Effect.map(Effect.timeoutOption(next, handleOptions.timeout), (o) => Option.isSome(o) ? o.value ?? null : "timeout" as const)
      if (incoming === "timeout") return { _tag: "TimedOut" } as const
      if (incoming === undefined || incoming === null) return { _tag: "Stopped" } as const
      const unfinished = new Set<Abandonable>()
      const peer = peerOf(incoming, kind)
      const job = yield* prepare(incoming, handler, unfinished)
      if (job === undefined) return { _tag: "Rejected", peer } as const
      yield* runJobs(Stream.make(job), handler, unfinished)
      return { _tag: "Handled", peer } as const
    }).pipe(tracked)

  const shutdown = Effect.gen(function*() {
    yield* Deferred.succeed(stopping, undefined)
    yield* listener.stop
    yield* idle.await
  })

  yield* Effect.addFinalizer(() =>
    Effect.andThen(shutdown, Effect.logInfo("server stopped").pipe(Effect.annotateLogs({ transport: kind })))
  )
  return Server.of({
    address: listener.address,
    transport: kind,
    strategy: strategy.name,
    serve,
    handleOne,
    shutdown
  })
})

/**
 * The server as a layer over a `Listener` and a `Strategy`.
 * @category layers
 */
export const layer = (options?: Options): Layer.Layer<Server, never, Listener.Listener | Strategy.Strategy> =>
  Layer.effect(Server, make(options))

/**
 * Options of {@link serve}.
 * @category models
 */
export interface ServeOptions {
  /** Runs once the socket is bound, before the first connection is served: say where the server listens. */
  readonly onListening?: ((address: NetAddress.SocketAddress) => Effect.Effect<void>) | undefined
}

/**
 * Serves `handler` on the current `Server` until the server shuts down or this effect is
 * interrupted; `onListening` runs first, with the bound address. The way to run a server:
 *
 * ```ts
 * const ServerLive = Server.layer().pipe(
 *   Layer.provide([StreamListener.layerTcp({ port: 7000 }), Strategy.layerFiber()])
 * )
 *
 * Main.runMain(
 *   Server.serve(EchoServer.streamHandler, { onListening: Main.printListening }).pipe(Effect.provide(ServerLive))
 * )
 * ```
 *
 * Interruption (Ctrl-C and SIGTERM under `Main.runMain`) is a graceful shutdown: the listening
 * socket closes at once, handlers see `Shutdown` (an idle connection ends, a busy one finishes its
 * work) and the effect returns once they have drained. So `Effect.raceFirst(Server.serve(h), stop)`
 * serves until `stop` completes.
 * @category combinators
 */
export const serve = <E, R>(
  handler: Handler.Handler<E, R>,
  options?: ServeOptions
): Effect.Effect<void, ServerError, Server | R> =>
  Effect.gen(function*() {
    const server = yield* Server
    if (options?.onListening !== undefined) yield* options.onListening(server.address)
    const serving = yield* Effect.forkChild(server.serve(handler), { startImmediately: true })
    // Interrupted: the shutdown comes first, so that the listener closes now rather than after the drain.
    yield* Fiber.join(serving).pipe(Effect.onInterrupt(() => server.shutdown))
  })

/**
 * A layer that serves `handler` in the background for as long as it is alive (as {@link serve});
 * releasing it shuts the server down gracefully. A failure to serve is logged.
 * @category layers
 */
export const layerServe = <E, R>(
  handler: Handler.Handler<E, R>,
  options?: ServeOptions
): Layer.Layer<never, never, Server | R> =>
  Layer.effectDiscard(Effect.forkScoped(
    serve(handler, options).pipe(Effect.catchCause((cause) => Effect.logError("server stopped with an error", cause))),
    { startImmediately: true }
  ))

/**
 * How each accepted connection or datagram is run: swap the layer, keep the handler.
 *
 * The server turns every accepted item into a `Job` and hands a stream of jobs to the `Strategy`.
 * `sequential` runs one job at a time; `fiber` runs each in its own fiber, multiplexed by Node's
 * event loop (our select/poll/epoll); `fork` and `worker` (see `ForkStrategy`, `WorkerStrategy`)
 * run the handler in child processes or worker threads, loading it by its `Handler.Reference`.
 *
 * Contract for implementations:
 * 1. consume `jobs` until the stream ends (the server ends it to stop accepting);
 * 2. return once every started job has completed (that is the graceful drain);
 * 3. when interrupted, abort in-flight jobs and release everything (fibers, processes, threads)
 *    before returning;
 * 4. finish every job exactly once, with `job.runHere` or with `job.complete`.
 *
 * This file imports no Node module.
 *
 * @since 0.1.0
 */
import type { Cause, Scope } from "effect"
import { Context, Effect, FiberSet, Layer, Queue, Schema, Semaphore, Stream } from "effect"
import type * as Connection from "./Connection.ts"
import type * as Handler from "./Handler.ts"
import type * as Listener from "./Listener.ts"

/**
 * How a job ended when it ran outside this process.
 * @category models
 */
export type Outcome =
  | { readonly _tag: "Completed" }
  | { readonly _tag: "Failed"; readonly cause: Cause.Cause<unknown> }
  | { readonly _tag: "Aborted"; readonly reason: string }

/**
 * One accepted connection or datagram, ready to run.
 * @category models
 */
export interface Job<R> {
  readonly incoming: Listener.Incoming
  /**
   * Runs the handler here, in the current fiber, with everything the server adds around it
   * (opening the connection, idle timeout, metrics, the error hook). Never fails.
   */
  readonly runHere: Effect.Effect<void, never, R>
  /** The server's options for opening the connection (idle timeout), for strategies that open it elsewhere. */
  readonly openOptions: Listener.OpenOptions
  /** For strategies that ran the handler elsewhere: how it ended. Releases the job's slot. */
  readonly complete: (outcome: Outcome) => Effect.Effect<void>
}

/**
 * A strategy could not run jobs at all (a child process or worker could not be started, the
 * handler cannot be loaded elsewhere).
 * @category errors
 */
export class StrategyError extends Schema.TaggedError<StrategyError>()("StrategyError", {
  strategy: Schema.String,
  message: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {}

/**
 * The strategy names.
 * @category models
 */
export type Name = "sequential" | "fiber" | "fork" | "worker"

/**
 * Runs jobs. See the module documentation for the contract.
 * @category services
 */
export class Strategy extends Context.Service<Strategy, {
  readonly name: Name
  readonly run: <E, R>(
    jobs: Stream.Stream<Job<R>>,
    handler: Handler.Handler<E, R>
  ) => Effect.Effect<void, StrategyError, R>
}>()("effect-netkit/core/Strategy") {}

/**
 * Connections whose `prepare` (a TLS handshake) may run at once, ahead of the jobs being run.
 * @category constants
 */
export const defaultMaxPreparing = 1024

/**
 * Runs each connection's `prepare` (see `Listener.IncomingConnection`) ahead of the strategy, up to
 * `maxPreparing` at once, and yields jobs in the order they become ready, so that a peer that stalls
 * its TLS handshake holds up no other. A job whose preparation failed is completed as aborted (the
 * listener has logged why and closed the connection) and not yielded; one still preparing when the
 * strategy is interrupted is closed. Jobs with nothing to prepare pass one at a time, as without this:
 * a plain listener's connections wait in its queue, not here. For strategies that run jobs in this
 * process one after another or in a bounded number of slots.
 * @category combinators
 */
export const prepared = <R>(jobs: Stream.Stream<Job<R>>, maxPreparing = defaultMaxPreparing): Stream.Stream<Job<R>> =>
  Stream.unwrap(Effect.gen(function*(): Effect.fn.Return<Stream.Stream<Job<R>>, never, Scope.Scope> {
    const ready = yield* Queue.bounded<Job<R>, Cause.Done>(1)
    const slots = yield* Semaphore.make(Math.max(1, maxPreparing))
    // Closed with the stream: preparations still running are interrupted.
    const preparing = yield* FiberSet.make<void, never>()
    const prepareThenOffer = (job: Job<R>, incoming: Listener.IncomingConnection, prepare: Effect.Effect<void, Connection.ConnectionError>) =>
      prepare.pipe(
        Effect.matchEffect({
          onFailure: (error) => job.complete({ _tag: "Aborted", reason: error.message }),
          onSuccess: () => Queue.offer(ready, job)
        }),
        Effect.onInterrupt(() => Effect.andThen(incoming.reject, job.complete({ _tag: "Aborted", reason: "interrupted" }))),
        Effect.ensuring(Semaphore.release(slots, 1))
      )
    yield* Stream.runForEach(jobs, (job): Effect.Effect<unknown> => {
      const incoming = job.incoming
      const prepare = incoming._tag === "IncomingConnection" ? incoming.prepare : undefined
      if (prepare === undefined) return Queue.offer(ready, job)
      return Effect.andThen(
        Semaphore.take(slots, 1),
        FiberSet.run(preparing, prepareThenOffer(job, incoming as Listener.IncomingConnection, prepare))
      )
    }).pipe(
      // The jobs ended (the server stopped accepting): what is being prepared is still served.
      Effect.andThen(FiberSet.awaitEmpty(preparing)),
      Effect.andThen(Queue.end(ready)),
      Effect.forkScoped({ startImmediately: true })
    )
    return Stream.fromQueue(ready)
  }))

/**
 * One job at a time, in the order accepted: the next client waits (accepted, not yet read) until
 * the current one is done. Python's plain `TCPServer`. TLS handshakes run ahead, concurrently
 * (`prepared`): a client is served once its handshake is done, and one that stalls it waits alone.
 * @category layers
 */
export const layerSequential: Layer.Layer<Strategy> = Layer.succeed(Strategy, Strategy.of({
  name: "sequential",
  run: (jobs) => Stream.runForEach(prepared(jobs), (job) => job.runHere)
}))

/**
 * Options for the fiber strategy.
 * @category models
 */
export interface FiberOptions {
  /** At most this many jobs at once; the next waits (unread) for a free slot. Default: no limit. */
  readonly maxConcurrent?: number | undefined
}

/**
 * Each job in its own fiber. Node's event loop multiplexes all of them: the select/poll/epoll
 * server without writing the loop. A TLS handshake runs in the job's fiber, or ahead of taking a
 * slot when `maxConcurrent` is set.
 * @category constructors
 */
export const makeFiber = (options?: FiberOptions): Strategy["Service"] => {
  const max = options?.maxConcurrent
  return Strategy.of({
    name: "fiber",
    run: <E, R>(jobs: Stream.Stream<Job<R>>, _handler: Handler.Handler<E, R>) =>
      Effect.gen(function*() {
        // Closing this scope (on interruption) interrupts every job still running.
        const running = yield* FiberSet.make<void, never>()
        if (max === undefined || !Number.isFinite(max)) {
          yield* Stream.runForEachArray(jobs, (batch) =>
            Effect.forEach(batch, (job) => FiberSet.run(running, job.runHere), { discard: true }))
        } else {
          const slots = yield* Semaphore.make(Math.max(1, max))
          // A slot is for a connection that can be served: handshakes happen before it is taken.
          yield* Stream.runForEach(prepared(jobs), (job) =>
            Effect.andThen(
              Semaphore.take(slots, 1),
              FiberSet.run(running, Effect.ensuring(job.runHere, Semaphore.release(slots, 1)))
            ))
        }
        yield* FiberSet.awaitEmpty(running)
      }).pipe(Effect.scoped)
  })
}

/**
 * The fiber strategy as a layer.
 * @category layers
 */
export const layerFiber = (options?: FiberOptions): Layer.Layer<Strategy> => Layer.succeed(Strategy, makeFiber(options))

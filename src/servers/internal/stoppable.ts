/**
 * Stopping a connection's loop from outside (a deadline, a graceful shutdown) at the least cost per connection, for
 * servers that may hold tens of thousands of idle ones.
 *
 * Racing the loop against a stop signal costs two fibers besides the handler's, per connection, for as long as it
 * lives. Instead the loop runs in one fiber of its own that a stop interrupts, the handler waits for it in a single
 * callback, and one watcher per shutdown signal (not per connection) tells every connection it serves.
 */
import { Effect, Exit, Fiber } from "effect"
import type * as Server from "../../core/Server.ts"

/**
 * Runs `loop` in a fiber of its own, handed to `started` (keep it to interrupt it), and succeeds with its exit. If
 * the caller is interrupted, so is the loop, and the caller waits for it to end.
 */
export const runStoppable = <A, E, R>(
  loop: Effect.Effect<A, E, R>,
  started: (fiber: Fiber.Fiber<A, E>) => void
): Effect.Effect<Exit.Exit<A, E>, never, R> =>
  Effect.flatMap(Effect.context<R>(), (context) =>
    Effect.callback<Exit.Exit<A, E>>((resume) => {
      const fiber = Effect.runForkWith(context)(loop)
      started(fiber)
      fiber.addObserver((exit) => resume(Effect.succeed(exit)))
      return Fiber.interrupt(fiber)
    }))

interface Watch {
  readonly callbacks: Set<() => void>
  readonly fiber: Fiber.Fiber<void>
}

const watches = new WeakMap<Server.ShutdownSignal, Watch>()

/**
 * Calls `callback` once when `signal` says a graceful shutdown has begun. Returns the function that cancels it (call
 * it when the connection ends). One fiber watches a signal for all the callbacks registered on it.
 */
export const onShutdown = (signal: Server.ShutdownSignal, callback: () => void): () => void => {
  let watch = watches.get(signal)
  if (watch === undefined) {
    const callbacks = new Set<() => void>()
    const fiber = Effect.runFork(Effect.andThen(
      signal.requested,
      Effect.sync(() => {
        watches.delete(signal)
        for (const notify of callbacks) notify()
      })
    ))
    watch = { callbacks, fiber }
    watches.set(signal, watch)
  }
  const current = watch
  current.callbacks.add(callback)
  return () => {
    if (!current.callbacks.delete(callback) || current.callbacks.size > 0 || watches.get(signal) !== current) return
    watches.delete(signal)
    current.fiber.interruptUnsafe()
  }
}

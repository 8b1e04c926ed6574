/**
 * Telling a connection's loop that a graceful shutdown began, at the least cost per connection, for servers that may
 * hold tens of thousands of idle ones: one watcher per shutdown signal (not per connection) calls every connection
 * that registered on it.
 */
import { Effect } from "effect"
import type { Fiber } from "effect"
import type * as Server from "../../core/Server.ts"

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

/**
 * The connections of one HTTP handler, watched together: one ticker checks their deadlines (so that a read costs no
 * timer of its own, as in Node's http server), a fiber in the supervisor's own scope, which opens with the first
 * connection and closes with the last; time is effect's `Clock`, so a `TestClock` drives the deadlines too. A
 * graceful shutdown reaches them through one registration per shutdown signal (`ShutdownWatch`).
 */
import { Clock, Effect, Exit, Scope } from "effect"
import type * as Server from "../../../core/Server.ts"
import * as ShutdownWatch from "../../internal/shutdownWatch.ts"

/**
 * Why a connection's loop was stopped from outside.
 * @internal
 */
export const StopReason = { Idle: 0, Headers: 1, Request: 2, Shutdown: 3 } as const
/** @internal */
export type StopReason = (typeof StopReason)[keyof typeof StopReason]

/**
 * What the supervisor needs of a connection.
 * @internal
 */
export interface Member {
  readonly signal: Server.ShutdownSignal
  /** Milliseconds on the supervisor's clock; 0 = none. */
  deadline: number
  deadlineReason: StopReason
  /** Parked in a read, waiting for a request: an idle deadline only cuts such a connection. */
  readonly awaitingInput: boolean
  readonly stopWith: (reason: StopReason) => void
  /** A graceful shutdown began: finish the current response, then close (at once when idle). */
  readonly beginShutdown: () => void
}

/**
 * One per handler.
 * @internal
 */
export class Supervisor {
  readonly members = new Set<Member>()
  /** Per shutdown signal: its members, and the function that cancels the registration. */
  readonly watchers = new Map<Server.ShutdownSignal, { count: number; cancel: () => void }>()
  readonly tickMillis: number
  /** The supervisor's clock, as of the last tick. */
  now = 0
  scope: Scope.Closeable | undefined = undefined

  constructor(timeouts: ReadonlyArray<number>) {
    const shortest = Math.min(...timeouts.filter((t) => t > 0), 4000)
    // A deadline fires at most a quarter of its timeout late.
    this.tickMillis = Math.max(10, Math.floor(shortest / 4))
  }

  /** Sets `member`'s deadline `millis` from now (0: none). */
  setDeadline(member: Member, millis: number, reason: StopReason): void {
    member.deadline = millis === 0 ? 0 : this.now + millis
    member.deadlineReason = reason
  }

  /** Starts watching `member`; the first member opens the scope and starts the ticker. */
  join(member: Member): Effect.Effect<void> {
    return Effect.withFiber((fiber) => {
      this.members.add(member)
      const signal = member.signal
      const watcher = this.watchers.get(signal)
      if (watcher !== undefined) watcher.count++
      else {
        const cancel = ShutdownWatch.onShutdown(signal, () => this.shutdown(signal))
        this.watchers.set(signal, { count: 1, cancel })
      }
      if (this.scope !== undefined) return Effect.void
      const scope = this.scope = Scope.makeUnsafe()
      this.now = fiber.getRef(Clock.Clock).currentTimeMillisUnsafe()
      return Effect.asVoid(Effect.forkIn(this.ticker, scope))
    })
  }

  /** Stops watching `member`; the last one closes the scope, which ends the ticker. */
  leave(member: Member): Effect.Effect<void> {
    return Effect.suspend(() => {
      this.members.delete(member)
      const watcher = this.watchers.get(member.signal)
      if (watcher !== undefined && --watcher.count === 0) {
        this.watchers.delete(member.signal)
        watcher.cancel()
      }
      const scope = this.scope
      if (this.members.size > 0 || scope === undefined) return Effect.void
      this.scope = undefined
      return Scope.close(scope, Exit.void)
    })
  }

  private get ticker(): Effect.Effect<void> {
    const tick = Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.sync(() => this.tick(now)))
    return Effect.forever(Effect.andThen(Effect.sleep(this.tickMillis), tick))
  }

  tick(now: number): void {
    this.now = now
    for (const member of this.members) {
      if (member.deadline === 0 || now < member.deadline) continue
      // an idle deadline only cuts a connection that waits for a request, never one still writing
      if (member.deadlineReason === StopReason.Idle && !member.awaitingInput) continue
      member.deadline = 0
      member.stopWith(member.deadlineReason)
    }
  }

  shutdown(signal: Server.ShutdownSignal): void {
    for (const member of this.members) if (member.signal === signal) member.beginShutdown()
  }
}

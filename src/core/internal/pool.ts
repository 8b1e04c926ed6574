/**
 * The members of one remote run (child processes or worker threads) as a set: least-busy
 * selection, readiness, whether a member that left should be replaced, and the news of a graceful
 * shutdown. Used by `remote.ts`, which starts, stops and talks to members; this module never
 * touches a process or a thread.
 *
 * Nothing here polls: every change that a waiter may be waiting for (a member got ready or left)
 * calls `changed`, which wakes the waiters to look again.
 */
import { Deferred, Duration, Effect } from "effect"
import * as Strategy from "../Strategy.ts"

/**
 * What the pool needs to know of a member.
 */
export interface Member {
  /** Pid or thread id, for messages. */
  readonly id: number
  /** Jobs in flight on this member; `size` is its load. */
  readonly jobs: { readonly size: number }
  /** Succeeds when the member has loaded the handler; fails when it cannot or exited first. */
  readonly ready: Deferred.Deferred<void, Strategy.StrategyError>
  isReady: boolean
  /** Set when we asked it to stop: its exit is not a crash, and it takes no new jobs. */
  stopping: boolean
}

/**
 * A wake-up for fibers waiting on state that plain callbacks change. Each `changed` completes the
 * current generation; a waiter captures the generation before it looks, so a change between its
 * look and its wait is never missed.
 */
interface Signal {
  readonly changed: () => void
  /** Waits until `probe` returns a value (not `undefined`). */
  readonly when: <A>(probe: () => A | undefined) => Effect.Effect<A>
}

const makeSignal = (): Signal => {
  let generation = Deferred.makeUnsafe<void>()
  const changed = () => {
    const done = generation
    generation = Deferred.makeUnsafe<void>()
    Deferred.doneUnsafe(done, Effect.void)
  }
  const when = <A>(probe: () => A | undefined): Effect.Effect<A> =>
    Effect.suspend(() => {
      const current = generation
      const value = probe()
      return value !== undefined ? Effect.succeed(value) : Effect.andThen(Deferred.await(current), when(probe))
    })
  return { changed, when }
}

/**
 * The members of one run.
 */
export interface Pool<M extends Member> {
  readonly members: ReadonlySet<M>
  /** Set once the run is draining or ending: exits are expected, nothing is replaced. */
  readonly isStopping: () => boolean
  readonly stop: () => void
  readonly add: (member: M) => M
  /** The member loaded its handler and takes jobs; it hears of a shutdown that began before. */
  readonly markReady: (member: M) => void
  /**
   * The member exited: forget it. True when it should be replaced: it crashed (we did not stop it)
   * after it had been ready (a handler that cannot load must not make us spawn forever), while
   * the pool is not stopping.
   */
  readonly remove: (member: M) => boolean
  /** The least busy ready member; waits while members are starting; fails when none is left. */
  readonly pick: Effect.Effect<M, Strategy.StrategyError>
  /** Waits for the member's `ready`, at most `timeout`. */
  readonly awaitReady: (member: M, timeout: Duration.Input) => Effect.Effect<void, Strategy.StrategyError>
  /** The server stopped accepting (graceful shutdown): tells every ready member, and each that gets ready later. */
  readonly shutdownBegan: () => void
}

/**
 * How the pool reaches members.
 */
export interface Options<M> {
  readonly strategy: Strategy.Name
  /** Names a member in messages: `"fork child"`, `"worker"`. */
  readonly noun: string
  /** Sends the member the news that graceful shutdown began (a message; must not throw). */
  readonly announceShutdown: (member: M) => void
}

/**
 * Builds the member set of one run.
 */
export const make = <M extends Member>(options: Options<M>): Pool<M> => {
  const { noun, strategy } = options
  const members = new Set<M>()
  const signal = makeSignal()
  let stopping = false
  let shutdown = false

  const leastBusy = (): M | Strategy.StrategyError | undefined => {
    let best: M | undefined
    for (const member of members) {
      if (!member.isReady || member.stopping) continue
      if (best === undefined || member.jobs.size < best.jobs.size) best = member
    }
    if (best !== undefined) return best
    // Otherwise every member is a replacement still starting: wait for one.
    return members.size === 0 ? error(strategy, `every ${noun} is gone and none could be replaced`) : undefined
  }

  return {
    members,
    isStopping: () => stopping,
    stop: () => {
      stopping = true
      signal.changed()
    },
    add: (member) => {
      members.add(member)
      return member
    },
    markReady: (member) => {
      member.isReady = true
      // A member that got ready after the shutdown began has not heard of it: no job reaches it before this.
      if (shutdown) options.announceShutdown(member)
      signal.changed()
    },
    remove: (member) => {
      members.delete(member)
      signal.changed()
      return !member.stopping && member.isReady && !stopping
    },
    pick: Effect.flatMap(signal.when(leastBusy), (picked) =>
      picked instanceof Strategy.StrategyError ? Effect.fail(picked) : Effect.succeed(picked)),
    awaitReady: (member, timeout) =>
      Deferred.await(member.ready).pipe(Effect.timeoutOrElse({
        duration: timeout,
        orElse: () =>
          Effect.fail(error(strategy, `${noun} ${member.id} was not ready within ${Duration.format(Duration.fromInputUnsafe(timeout))}`))
      })),
    shutdownBegan: () => {
      if (shutdown) return
      shutdown = true
      for (const member of members) if (member.isReady) options.announceShutdown(member)
    }
  }
}

/**
 * A `StrategyError` of the given strategy.
 */
export const error = (strategy: Strategy.Name, message: string, cause?: unknown): Strategy.StrategyError =>
  new Strategy.StrategyError({ strategy, message, ...(cause === undefined ? {} : { cause }) })

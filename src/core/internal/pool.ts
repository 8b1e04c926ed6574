/**
 * Bookkeeping shared by the `fork` and `worker` strategies: the set of members (child processes or
 * worker threads), least-busy selection, replacement of members that crashed, the drain count and
 * the outcome of jobs lost with a member. Starting, stopping and talking to a member stay with the
 * strategy; this module never touches a process or a thread.
 *
 * It also carries the news of a graceful shutdown to members: `Server.Shutdown` lives in the server's
 * process, so a member's handlers learn of it only when told.
 *
 * Nothing here polls: every change that a waiter may be waiting for (a member got ready or left, a
 * job finished) calls `changed`, which wakes the waiters to look again.
 */
import { Cause, Deferred, Duration, Effect } from "effect"
import type * as Handler from "../Handler.ts"
import * as Strategy from "../Strategy.ts"
import * as Ipc from "./ipcMessages.ts"

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
export interface Signal {
  readonly changed: () => void
  /** Waits until `probe` returns a value (not `undefined`). */
  readonly when: <A>(probe: () => A | undefined) => Effect.Effect<A>
}

export const makeSignal = (): Signal => {
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
 * The members and the jobs in flight of one `run`.
 */
export interface Pool<M extends Member> {
  readonly members: ReadonlySet<M>
  /** Set once `run` is draining or ending: exits are expected, nothing is replaced. */
  readonly isStopping: () => boolean
  readonly stop: () => void
  readonly add: (member: M) => M
  /** The member loaded its handler and takes jobs. */
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
  /** Counts a job in flight, until `finished`. */
  readonly started: () => void
  readonly finished: () => void
  /** Waits until no job is in flight. */
  readonly drained: Effect.Effect<void>
  /** The server stopped accepting (graceful shutdown): tells every ready member, once. */
  readonly shutdownBegan: () => void
  /** Before giving `member` a job: tells it of a shutdown that began before it was ready. */
  readonly beforeJob: (member: M) => void
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
 * Builds the bookkeeping of one `run`.
 */
export const make = <M extends Member>(options: Options<M>): Pool<M> => {
  const { noun, strategy } = options
  const members = new Set<M>()
  const signal = makeSignal()
  const told = new WeakSet<M>()
  let stopping = false
  let shutdown = false
  let inflight = 0

  const tell = (member: M) => {
    if (!shutdown || told.has(member) || !member.isReady) return
    told.add(member)
    options.announceShutdown(member)
  }

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
    started: () => {
      inflight++
    },
    finished: () => {
      inflight--
      if (inflight === 0) signal.changed()
    },
    drained: signal.when(() => inflight === 0 ? true : undefined).pipe(Effect.asVoid),
    shutdownBegan: () => {
      shutdown = true
      for (const member of members) tell(member)
    },
    beforeJob: tell
  }
}

/**
 * A `StrategyError` of the given strategy.
 */
export const error = (strategy: Strategy.Name, message: string, cause?: unknown): Strategy.StrategyError =>
  new Strategy.StrategyError({ strategy, message, ...(cause === undefined ? {} : { cause }) })

/**
 * The handler's reference, or the error that explains how to give it one.
 */
export const referenceOf = (
  strategy: Strategy.Name,
  handler: Handler.Handler<unknown, unknown>
): Effect.Effect<Handler.Reference, Strategy.StrategyError> =>
  handler.reference !== undefined ? Effect.succeed(handler.reference) : Effect.fail(error(
    strategy,
    `handler "${handler.name}" has no reference: the fork and worker strategies load handlers in another ` +
      `process or thread, so define it with Handler.stream(fn, { module: import.meta.url, export: "name" }) ` +
      `(or Handler.datagram) as an export of a module without top-level side effects`
  ))

/**
 * How a job ends when its member exits under it: aborted when we stopped the member (shutdown),
 * failed when it crashed. `where` is `"fork child 123"` or `"worker 4"`, `tag` the failure's tag.
 */
export const lostJob = (options: {
  readonly where: string
  readonly tag: string
  readonly crashed: boolean
  readonly reason: string
}): Strategy.Outcome =>
  options.crashed
    ? {
      _tag: "Failed",
      cause: Cause.fail(
        new Ipc.RemoteHandlerError({
          where: options.where,
          tag: options.tag,
          message: `${options.where} exited (${options.reason}) while serving this job`
        })
      )
    }
    : { _tag: "Aborted", reason: `${options.where} stopped (${options.reason})` }

/**
 * A job's wire outcome -> the strategy's outcome.
 */
export const outcomeOf = (where: string, outcome: Ipc.WireOutcome): Strategy.Outcome =>
  outcome._tag === "Failed" ? { _tag: "Failed", cause: Ipc.causeOfFailure(where, outcome.failure) } : outcome

/**
 * A scenario's runs, target by target: targets alternate round by round (so slow drifts of the machine hit
 * all of them), a target that cannot start is skipped from then on, and each target is reported by its best
 * run.
 */
import type { SuiteContext } from "./suite.ts"
import { startTarget } from "./target.ts"
import type { RunningTarget, StartOptions, TargetSpec } from "./target.ts"

/** What every run record has, whatever the suite measures. */
export type RunShape = { readonly ok: true; readonly round: number } | FailedShape

export interface FailedShape {
  readonly ok: false
  readonly round: number
  readonly reason: string
}

export interface TargetOutcome<R extends RunShape> {
  readonly spec: TargetSpec
  readonly runs: Array<R>
  /** Set when the target could not be started; later rounds skip it. */
  unavailable: string | null
}

/**
 * Targets that could not start, by spec id, across a suite's scenarios: a server that timed out once is not
 * waited for again in the next scenario.
 */
export type Unavailable = Map<string, string>

/**
 * All rounds of one scenario: each round runs every available target once, in order, so they alternate. With
 * `carry`, targets an earlier scenario could not start are skipped (and said so when `announceSkipped`), and
 * those this scenario could not start are added for the next ones.
 */
export const measureRounds = async <R extends RunShape>(
  ctx: SuiteContext,
  specs: ReadonlyArray<TargetSpec>,
  rounds: number,
  runOnce: (outcome: TargetOutcome<R>, round: number) => Promise<void>,
  carry?: { readonly unavailable: Unavailable; readonly announceSkipped: boolean }
): Promise<Array<TargetOutcome<R>>> => {
  const outcomes: Array<TargetOutcome<R>> = specs.map((spec) => ({
    spec,
    runs: [],
    unavailable: carry?.unavailable.get(spec.id) ?? null
  }))
  if (carry?.announceSkipped === true) {
    for (const outcome of outcomes) {
      if (outcome.unavailable !== null) ctx.print(`  ${outcome.spec.label}: n/a: ${outcome.unavailable} (skipped)`)
    }
  }
  for (let round = 1; round <= rounds; round++) {
    for (const outcome of outcomes) {
      if (outcome.unavailable === null) await runOnce(outcome, round)
    }
  }
  for (const outcome of outcomes) {
    if (outcome.unavailable !== null) carry?.unavailable.set(outcome.spec.id, outcome.unavailable)
  }
  return outcomes
}

export const okRuns = <R extends RunShape>(outcome: TargetOutcome<R>): Array<Extract<R, { ok: true }>> =>
  outcome.runs.filter((run): run is Extract<R, { ok: true }> => run.ok)

/** The failed runs, but none when no run succeeded: then the target's row itself already shows the failure. */
export const failedRunsBesideOk = <R extends RunShape>(outcome: TargetOutcome<R>): Array<Extract<R, { ok: false }>> =>
  okRuns(outcome).length === 0 ? [] : outcome.runs.filter((run): run is Extract<R, { ok: false }> => !run.ok)

/** The successful run with the highest `rate` (the first of equals); its other figures are reported alongside. */
export const bestRun = <R extends RunShape>(
  outcome: TargetOutcome<R>,
  rate: (run: Extract<R, { ok: true }>) => number
): Extract<R, { ok: true }> | undefined =>
  okRuns(outcome).reduce<Extract<R, { ok: true }> | undefined>(
    (top, run) => (top === undefined || rate(run) > rate(top) ? run : top),
    undefined
  )

/** Why a target has no row of figures: it never started, or the first failure, or it had no runs at all. */
export const whyNoRuns = <R extends RunShape>(outcome: TargetOutcome<R>): string => {
  const firstFailure = outcome.runs.find((run): run is Extract<R, { ok: false }> => !run.ok)
  return outcome.unavailable ?? firstFailure?.reason ?? "no runs"
}

/** The first fields of a target's entry in the results JSON: what it is and which run was its best. */
export const targetSummary = <R extends RunShape>(outcome: TargetOutcome<R>, top: R | undefined) => ({
  id: outcome.spec.id,
  label: outcome.spec.label,
  role: outcome.spec.role,
  argv: outcome.spec.argv,
  status: top === undefined ? "n/a" : "ok",
  unavailable: outcome.unavailable,
  best: top?.round ?? null
})

/**
 * Starts `outcome`'s target for one round. When it cannot start, the round is recorded as failed (via
 * `notStarted`), the target is marked unavailable after a first-round failure, a progress line says why, and
 * the answer is null.
 */
export const startRoundTarget = async <R extends RunShape>(
  ctx: SuiteContext,
  outcome: TargetOutcome<R>,
  round: number,
  scenarioId: string,
  notStarted: (reason: string) => R,
  options: StartOptions
): Promise<RunningTarget | null> => {
  const started = await startTarget(outcome.spec, options)
  if (started.ok) return started.target
  if (round === 1) outcome.unavailable = started.reason
  outcome.runs.push(notStarted(started.reason))
  ctx.print(`  ${scenarioId} round ${round}: ${outcome.spec.label}: n/a: ${started.reason}`)
  return null
}

/**
 * A scenario's runs, target by target: targets alternate round by round (so slow drifts of the machine hit
 * all of them), a target that cannot start is skipped from then on, and each target is reported by its best
 * run.
 */
import type { SuiteContext } from "./suite.ts"
import type { TargetSpec } from "./target.ts"

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

export const newOutcomes = <R extends RunShape>(
  specs: ReadonlyArray<TargetSpec>,
  unavailable?: Unavailable
): Array<TargetOutcome<R>> => specs.map((spec) => ({ spec, runs: [], unavailable: unavailable?.get(spec.id) ?? null }))

/** Says which targets an earlier scenario found unavailable. */
export const printSkipped = <R extends RunShape>(ctx: SuiteContext, outcomes: ReadonlyArray<TargetOutcome<R>>) => {
  for (const outcome of outcomes) {
    if (outcome.unavailable !== null) ctx.print(`  ${outcome.spec.label}: n/a: ${outcome.unavailable} (skipped)`)
  }
}

/** Runs every available target once per round, in order, so they alternate. */
export const runRounds = async <R extends RunShape>(
  rounds: number,
  outcomes: ReadonlyArray<TargetOutcome<R>>,
  runOnce: (outcome: TargetOutcome<R>, round: number) => Promise<void>
): Promise<void> => {
  for (let round = 1; round <= rounds; round++) {
    for (const outcome of outcomes) {
      if (outcome.unavailable === null) await runOnce(outcome, round)
    }
  }
}

/** Carries the targets that could not start over to the suite's next scenarios. */
export const rememberUnavailable = <R extends RunShape>(
  outcomes: ReadonlyArray<TargetOutcome<R>>,
  unavailable: Unavailable
): void => {
  for (const outcome of outcomes) if (outcome.unavailable !== null) unavailable.set(outcome.spec.id, outcome.unavailable)
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

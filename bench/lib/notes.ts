/**
 * The "note:" lines printed under a suite's table: what in its runs may make a number mean less than it
 * seems (a saturated load generator, a busy machine, failed rounds, a server that did not exit cleanly).
 */
import { failedRunsBesideOk, okRuns } from "./rounds.ts"
import type { FailedShape, RunShape, TargetOutcome } from "./rounds.ts"
import type { ExitInfo } from "./target.ts"

/** A side using at least this share of its core is saturated. */
export const SATURATED_PCT = 90
/** Background CPU (other processes, % of one core) above which a run is flagged. */
export const BACKGROUND_PCT = 10

/** CPU shares the load generators report for their window. */
interface LoadCpu {
  readonly loadCpuPct: number
  readonly otherCpuPct: number | null
}

type LoadRunShape = RunShape & ({ readonly ok: false } | { readonly ok: true; readonly result: LoadCpu })

/** When the load generator saturated its core; `consequence` says what that means for the suite. */
export const loadSaturatedNote = <R extends LoadRunShape>(
  outcome: TargetOutcome<R>,
  consequence: string
): string | undefined => {
  const runs = okRuns(outcome)
  const loadBound = runs.filter((run) => run.result.loadCpuPct >= SATURATED_PCT)
  if (loadBound.length === 0) return undefined
  return (
    `note: ${outcome.spec.label}: load generator CPU >= ${SATURATED_PCT}% in ${loadBound.length}/${runs.length} runs;` +
    consequence
  )
}

export const failedRoundNotes = <R extends RunShape>(outcome: TargetOutcome<R>): Array<string> =>
  failedRunsBesideOk(outcome).map(
    (run: FailedShape) => `note: ${outcome.spec.label}: round ${run.round} failed: ${run.reason}`
  )

/** When other processes used a share of a core during runs; `consequence` ends the line. */
export const disturbedNote = <R extends LoadRunShape>(
  outcome: TargetOutcome<R>,
  consequence: string
): string | undefined => {
  const runs = okRuns(outcome)
  const disturbed = runs.filter((run) => (run.result.otherCpuPct ?? 0) >= BACKGROUND_PCT)
  if (disturbed.length === 0) return undefined
  const worst = Math.max(...disturbed.map((run) => run.result.otherCpuPct ?? 0))
  return (
    `note: ${outcome.spec.label}: other processes used up to ${worst.toFixed(0)}% of a core during ` +
    `${disturbed.length}/${runs.length} runs; ${consequence}`
  )
}

/** Exits of servers that were asked to stop and did not exit 0 (or needed SIGKILL). */
export const roughExits = <R extends RunShape & { readonly exit: ExitInfo | null }>(
  outcome: TargetOutcome<R>
): Array<ExitInfo> =>
  outcome.runs
    .map((run) => run.exit)
    .filter((exit): exit is ExitInfo => exit !== null && !exit.exitedEarly && (!exit.graceful || exit.code !== 0))

/**
 * The echo and chat suites' notes per target: saturated load generator, failed rounds, busy machine, unclean
 * exits, in that order.
 */
export const loadRunNotes = <R extends LoadRunShape & { readonly exit: ExitInfo | null }>(
  outcomes: ReadonlyArray<TargetOutcome<R>>,
  saturatedConsequence: string
): Array<string> => {
  const lines: Array<string> = []
  for (const outcome of outcomes) {
    const saturated = loadSaturatedNote(outcome, saturatedConsequence)
    if (saturated !== undefined) lines.push(saturated)
    lines.push(...failedRoundNotes(outcome))
    const disturbed = disturbedNote(outcome, "those numbers may be disturbed")
    if (disturbed !== undefined) lines.push(disturbed)
    const rough = roughExits(outcome)
    const exit = rough[0]
    if (exit !== undefined) {
      lines.push(
        `note: ${outcome.spec.label}: did not exit 0 on SIGTERM in ${rough.length} runs ` +
          `(code ${exit.code}, signal ${exit.signal}${exit.graceful ? "" : ", needed SIGKILL"})`
      )
    }
  }
  return lines
}

/**
 * A scenario's result table: one row per target, from its best run. A target without a successful run gets a
 * line after the table instead, so its (often long) reason does not widen the columns.
 */
import type { RunShape, TargetOutcome } from "./rounds.ts"
import { whyNoRuns } from "./rounds.ts"
import { formatTable } from "./table.ts"
import type { Align } from "./table.ts"

export const bestRunsTable = <R extends RunShape>(options: {
  readonly headers: ReadonlyArray<string>
  readonly align: ReadonlyArray<Align>
  readonly outcomes: ReadonlyArray<TargetOutcome<R>>
  readonly best: (outcome: TargetOutcome<R>) => Extract<R, { ok: true }> | undefined
  readonly row: (outcome: TargetOutcome<R>, top: Extract<R, { ok: true }>) => Array<string>
  /** The line for a target without a row; `labelWidth` is the table's first column width, to align with it. */
  readonly missingLine: (label: string, why: string, labelWidth: number) => string
}): string => {
  const rows: Array<Array<string>> = []
  const missing: Array<TargetOutcome<R>> = []
  for (const outcome of options.outcomes) {
    const top = options.best(outcome)
    if (top === undefined) missing.push(outcome)
    else rows.push(options.row(outcome, top))
  }
  const labelWidth = Math.max((options.headers[0] ?? "").length, ...rows.map((cells) => (cells[0] ?? "").length))
  return [
    formatTable(options.headers, rows, options.align),
    ...missing.map((outcome) => options.missingLine(outcome.spec.label, whyNoRuns(outcome), labelWidth))
  ].join("\n")
}

/**
 * How long a suite warms up and measures, and how often. Each suite has a full and a quick (`--quick`) set;
 * `--rounds` overrides the rounds of either.
 */
import type { SuiteContext } from "./suite.ts"

/** Windows of a suite whose load generator takes its warm-up and window in milliseconds. */
export interface Timing {
  readonly rounds: number
  readonly warmupMs: number
  readonly windowMs: number
  /** Longest wait for a quiet machine before each measurement. */
  readonly quietWaitMs: number
}

/** The quick or the full timing as the command line asked, with `--rounds` applied. */
export const chooseTiming = <T extends { readonly rounds: number }>(ctx: SuiteContext, full: T, quick: T): T => {
  const base = ctx.quick ? quick : full
  return { ...base, rounds: ctx.rounds ?? base.rounds }
}

/** The load generator flags for the warm-up and the measured window. */
export const windowArgs = (timing: Timing): Array<string> => [
  "--warmup-ms",
  String(timing.warmupMs),
  "--window-ms",
  String(timing.windowMs)
]

/**
 * Waiting (bounded) for the machine to be quiet before a measurement. The
 * bench often shares the box with builds and test runs; starting a window
 * while they burn a core mostly measures them. Never waits longer than asked,
 * and reports what it saw so a disturbed run can still be recognised.
 */
import { setTimeout as sleep } from "node:timers/promises"
import { readMachineBusyMs } from "./procStat.ts"
import { pct } from "./table.ts"

export interface Quiet {
  /** Whether the last sample was under the threshold. */
  readonly quiet: boolean
  /** Time spent waiting, ms. */
  readonly waitedMs: number
  /** Busy CPU of the whole machine in the last sample, % of one core (null: unreadable). */
  readonly busyPct: number | null
}

export const waitForQuiet = async (options: {
  readonly maxWaitMs: number
  readonly thresholdPct: number
  readonly sampleMs: number
}): Promise<Quiet> => {
  const startedAt = Date.now()
  for (let attempt = 0; attempt < 1000; attempt++) {
    const before = readMachineBusyMs()
    await sleep(options.sampleMs)
    const after = readMachineBusyMs()
    if (before === null || after === null) return { quiet: true, waitedMs: Date.now() - startedAt, busyPct: null }
    const busyPct = ((after - before) / options.sampleMs) * 100
    const waitedMs = Date.now() - startedAt
    if (busyPct < options.thresholdPct) return { quiet: true, waitedMs, busyPct }
    if (waitedMs + options.sampleMs > options.maxWaitMs) return { quiet: false, waitedMs, busyPct }
  }
  return { quiet: false, waitedMs: Date.now() - startedAt, busyPct: null }
}

/** Machine-wide busy CPU (% of one core) under which it counts as quiet. */
export const QUIET_PCT = 15

/**
 * The suites' wait before a measurement: their threshold, 250 ms samples. With `print`, says so when the
 * machine stayed busy, since the run that follows is measured anyway.
 */
export const waitForQuietMachine = async (maxWaitMs: number, print?: (text: string) => void): Promise<Quiet> => {
  const quiet = await waitForQuiet({ maxWaitMs, thresholdPct: QUIET_PCT, sampleMs: 250 })
  if (!quiet.quiet && print !== undefined) {
    const waited = (quiet.waitedMs / 1000).toFixed(1)
    print(`  (machine still busy after ${waited} s: ${pct(quiet.busyPct)} of a core; measuring anyway)`)
  }
  return quiet
}

/** The suites' header sentence about that wait. */
export const quietWaitNote = (maxWaitMs: number): string =>
  `Before each measurement waits up to ${maxWaitMs / 1000} s for machine CPU < ${QUIET_PCT}% of a core.`

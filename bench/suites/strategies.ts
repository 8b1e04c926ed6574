/**
 * Strategies suite: what the `fork` and `worker` strategies buy for CPU-bound handlers, and what a
 * fresh child per connection costs.
 *
 * 1. CPU-bound requests: `bench/targets/cpuServer.ts` (a few ms of sha256 per 64-byte request) under
 *    `fiber`, `fork` (pool of 2) and `worker` (pool of 2); 8 connections, one request in flight each.
 *    Requests/s and the ratio to `fiber`, which runs every handler on the server's one thread.
 * 2. Connection set-up: connect + one small request (no hashing) + close, in 2 loops, under
 *    `fork-per-connection` against the `fork` pool (the ratio's baseline) and `fiber`:
 *    connections/s and mean latency; the difference in latency is the price of forking a child.
 *
 * Pinning differs from the echo suite on purpose: fork children and worker threads exist to use
 * both cores, so the server is left unpinned (it may use cores 0 and 1) and only the load generator
 * is pinned, to core 1. The load generator is light (one request in flight per connection).
 * Targets alternate round by round so that slow drifts of the machine hit all of them.
 */
import { runLoad } from "../lib/load.ts"
import { waitForQuiet } from "../lib/quiet.ts"
import type { Quiet } from "../lib/quiet.ts"
import type { Suite, SuiteContext } from "../lib/suite.ts"
import { nodeBin, ourProgram } from "../lib/system.ts"
import type { Pinning } from "../lib/system.ts"
import { formatTable, num } from "../lib/table.ts"
import type { Align } from "../lib/table.ts"
import { startTarget } from "../lib/target.ts"
import type { ExitInfo, TargetSpec } from "../lib/target.ts"
import type { CpuLoadResult } from "../targets/cpuLoad.ts"

const LOAD_SCRIPT = "bench/targets/cpuLoad.ts"
const START_TIMEOUT_MS = 20_000
const HOST = "127.0.0.1"
const WORKERS = 2
/** Hash rounds per request in the CPU scenario (about 4 ms of one core here). */
const CPU_ROUNDS = 4000
/** Machine-wide busy CPU (% of one core) under which it counts as quiet. */
const QUIET_PCT = 15
/** Background CPU (other processes, % of one core) above which a run is flagged. */
const BACKGROUND_PCT = 10
/** The goal for fork pool and worker against fiber on this 2-core machine. */
const GOAL = 1.6

interface Timing {
  readonly rounds: number
  readonly warmupMs: number
  readonly windowMs: number
  readonly quietWaitMs: number
}
const FULL: Timing = { rounds: 2, warmupMs: 1000, windowMs: 5000, quietWaitMs: 3000 }
const QUICK: Timing = { rounds: 1, warmupMs: 500, windowMs: 2000, quietWaitMs: 1000 }

type StrategyName = "fiber" | "fork" | "worker" | "fork-per-connection"

const labels: Record<StrategyName, string> = {
  fiber: "fiber (one thread)",
  fork: `fork pool of ${WORKERS}`,
  worker: `worker pool of ${WORKERS}`,
  "fork-per-connection": "fork per connection"
}

const server = (strategy: StrategyName, rounds: number): TargetSpec => ({
  id: `netkit-cpu-${strategy}-r${rounds}`,
  label: labels[strategy],
  role: strategy === "fiber" ? "anchor" : "ours",
  argv: ourProgram(
    "bench/targets/cpuServer.ts",
    "--strategy",
    strategy,
    "--workers",
    String(WORKERS),
    "--rounds",
    String(rounds),
    "--host",
    HOST,
    "--port",
    "0"
  ),
  requiredFile: "bench/targets/cpuServer.ts"
})

interface Scenario {
  readonly id: "cpu-requests" | "connect"
  readonly title: string
  readonly params: Record<string, number | string>
  /** The first target is the baseline of the ratio column. */
  readonly targets: ReadonlyArray<TargetSpec>
  readonly rateUnit: string
  readonly loadArgs: ReadonlyArray<string>
}

const scenarios: ReadonlyArray<Scenario> = [
  {
    id: "cpu-requests",
    title: `CPU-bound requests: ${CPU_ROUNDS} sha256 rounds per 64-byte request, 8 connections, one request in flight each`,
    params: { rounds: CPU_ROUNDS, connections: 8, requestBytes: 64, workers: WORKERS },
    targets: [server("fiber", CPU_ROUNDS), server("fork", CPU_ROUNDS), server("worker", CPU_ROUNDS)],
    rateUnit: "requests/s",
    loadArgs: ["--mode", "requests", "--connections", "8"]
  },
  {
    id: "connect",
    title: "Connection set-up: connect + one 64-byte request (no hashing) + close, 2 loops",
    params: { rounds: 0, loops: 2, requestBytes: 64 },
    targets: [server("fork", 0), server("fork-per-connection", 0), server("fiber", 0)],
    rateUnit: "connections/s",
    loadArgs: ["--mode", "connect", "--connections", "2"]
  }
]

interface RunBase {
  readonly round: number
  readonly exit: ExitInfo | null
  readonly quiet: Quiet
}
type Run =
  | RunBase & { readonly ok: true; readonly result: CpuLoadResult; readonly rate: number; readonly serverCpuPct: number | null }
  | RunBase & { readonly ok: false; readonly reason: string }
type OkRun = Extract<Run, { ok: true }>

interface TargetOutcome {
  readonly spec: TargetSpec
  readonly runs: Array<Run>
  unavailable: string | null
}

const pct = (value: number | null | undefined): string => (value === null || value === undefined ? "-" : `${value.toFixed(0)}%`)
/** Like the table module's ratio, but a child per connection is ~1000x slower than the pool: keep 2 digits. */
const ratio = (ours: number, baseline: number | undefined): string =>
  baseline === undefined || baseline === 0 ? "-" : `${ours / baseline >= 0.1 ? (ours / baseline).toFixed(2) : (ours / baseline).toPrecision(2)}x`
const ms = (us: number): string => (us / 1000).toFixed(us < 10_000 ? 2 : 1)

/** The server unpinned (both cores), the load generator pinned to the load core (1). */
const serverPinning = (pinning: Pinning): Pinning => ({ ...pinning, enabled: false })

const runOnce = async (ctx: SuiteContext, scenario: Scenario, outcome: TargetOutcome, round: number, timing: Timing) => {
  const { pinning } = ctx.env
  const quiet = await waitForQuiet({ maxWaitMs: timing.quietWaitMs, thresholdPct: QUIET_PCT, sampleMs: 250 })
  if (!quiet.quiet) {
    ctx.print(`  (machine still busy after ${(quiet.waitedMs / 1000).toFixed(1)} s: ${pct(quiet.busyPct)} of a core; measuring anyway)`)
  }
  const started = await startTarget(outcome.spec, { pinning: serverPinning(pinning), core: 0, timeoutMs: START_TIMEOUT_MS })
  const label = `  ${scenario.id} round ${round}: ${outcome.spec.label}`
  if (!started.ok) {
    if (round === 1) outcome.unavailable = started.reason
    outcome.runs.push({ round, ok: false, reason: started.reason, exit: null, quiet })
    ctx.print(`${label}: n/a: ${started.reason}`)
    return
  }
  const target = started.target
  let exit: ExitInfo | null = null
  try {
    const load = await runLoad(
      LOAD_SCRIPT,
      [
        ...scenario.loadArgs,
        "--host",
        target.host,
        "--port",
        String(target.port),
        "--warmup-ms",
        String(timing.warmupMs),
        "--window-ms",
        String(timing.windowMs),
        "--server-pid",
        String(target.pid)
      ],
      { pinning, core: pinning.loadCore, timeoutMs: timing.warmupMs + timing.windowMs + 20_000 }
    )
    const crashed = target.exited() ? ` (server exited; output: ${target.tail()})` : ""
    exit = await target.stop()
    if (!load.ok) {
      outcome.runs.push({ round, ok: false, reason: load.reason + crashed, exit, quiet })
      ctx.print(`${label}: failed: ${load.reason}${crashed}`)
      return
    }
    const result = load.result as unknown as CpuLoadResult
    const expected = scenario.id === "cpu-requests" ? "requests" : "connect"
    if (result.mode !== expected || typeof result.windowMs !== "number") {
      const reason = `unexpected load generator result: ${JSON.stringify(load.result).slice(0, 200)}`
      outcome.runs.push({ round, ok: false, reason, exit, quiet })
      ctx.print(`${label}: failed: ${reason}`)
      return
    }
    const rate = result.count / (result.windowMs / 1000)
    const serverCpuPct = result.serverCpuMs === null ? null : (result.serverCpuMs / result.windowMs) * 100
    outcome.runs.push({ round, ok: true, result, rate, serverCpuPct, exit, quiet })
    ctx.print(
      `${label}: ${num(rate, 1)} ${scenario.rateUnit}, mean ${ms(result.meanUs)} ms` +
        ` (server CPU ${pct(serverCpuPct)}, load-gen CPU ${pct(result.loadCpuPct)}, other CPU ${pct(result.otherCpuPct)})`
    )
  } finally {
    if (exit === null) await target.stop()
  }
}

const best = (outcome: TargetOutcome): OkRun | undefined =>
  outcome.runs.reduce<OkRun | undefined>((top, run) => (run.ok && (top === undefined || run.rate > top.rate) ? run : top), undefined)

const table = (scenario: Scenario, outcomes: ReadonlyArray<TargetOutcome>): string => {
  const baseline = best(outcomes[0]!)
  const headers = [
    "server strategy",
    scenario.rateUnit,
    `vs ${outcomes[0]!.spec.label}`,
    "mean ms",
    "p50 ms",
    "p99 ms",
    "server CPU",
    "load-gen / other CPU",
    `all runs (${scenario.rateUnit})`
  ]
  const align: Array<Align> = ["left", "right", "right", "right", "right", "right", "right", "right", "left"]
  const rows: Array<Array<string>> = []
  const missing: Array<string> = []
  for (const outcome of outcomes) {
    const top = best(outcome)
    if (top === undefined) {
      const failure = outcome.runs.find((run): run is Extract<Run, { ok: false }> => !run.ok)
      missing.push(`${outcome.spec.label}: n/a: ${outcome.unavailable ?? failure?.reason ?? "no runs"}`)
      continue
    }
    const r = top.result
    rows.push([
      outcome.spec.label,
      num(top.rate, 1),
      ratio(top.rate, baseline?.rate),
      ms(r.meanUs),
      ms(r.p50Us),
      ms(r.p99Us),
      pct(top.serverCpuPct),
      `${pct(r.loadCpuPct)} / ${pct(r.otherCpuPct)}`,
      outcome.runs.map((run) => (run.ok ? num(run.rate, 1) : "failed")).join(", ")
    ])
  }
  return [formatTable(headers, rows, align), ...missing].join("\n")
}

const notes = (scenario: Scenario, outcomes: ReadonlyArray<TargetOutcome>): Array<string> => {
  const lines: Array<string> = []
  const baseline = best(outcomes[0]!)
  for (const outcome of outcomes) {
    const runs = outcome.runs.filter((run): run is OkRun => run.ok)
    const disturbed = runs.filter((run) => (run.result.otherCpuPct ?? 0) >= BACKGROUND_PCT)
    if (disturbed.length > 0) {
      const worst = Math.max(...disturbed.map((run) => run.result.otherCpuPct ?? 0))
      lines.push(
        `note: ${outcome.spec.label}: other processes used up to ${worst.toFixed(0)}% of a core during ` +
          `${disturbed.length}/${runs.length} runs; the machine was shared, these numbers are disturbed`
      )
    }
    for (const run of runs.length === 0 ? [] : outcome.runs) {
      if (!run.ok) lines.push(`note: ${outcome.spec.label}: round ${run.round} failed: ${run.reason}`)
    }
    const rough = outcome.runs.map((run) => run.exit).filter((exit): exit is ExitInfo =>
      exit !== null && !exit.exitedEarly && (!exit.graceful || exit.code !== 0)
    )
    if (rough.length > 0) {
      lines.push(`note: ${outcome.spec.label}: did not exit 0 on SIGTERM in ${rough.length} runs (code ${rough[0]!.code})`)
    }
    const top = best(outcome)
    if (scenario.id === "cpu-requests" && outcome !== outcomes[0] && top !== undefined && baseline !== undefined) {
      const x = top.rate / baseline.rate
      lines.push(`goal: ${outcome.spec.label} >= ${GOAL.toFixed(1)}x fiber: ${x >= GOAL ? "met" : "NOT met"} (${x.toFixed(2)}x)`)
    }
  }
  return lines
}

const runScenario = async (ctx: SuiteContext, scenario: Scenario, timing: Timing) => {
  ctx.print(`\n== ${scenario.title}`)
  const outcomes: Array<TargetOutcome> = scenario.targets.map((spec) => ({ spec, runs: [], unavailable: null }))
  for (let round = 1; round <= timing.rounds; round++) {
    for (const outcome of outcomes) {
      if (outcome.unavailable === null) await runOnce(ctx, scenario, outcome, round, timing)
    }
  }
  ctx.print("")
  ctx.print(table(scenario, outcomes))
  for (const line of notes(scenario, outcomes)) ctx.print(line)
  const baseline = best(outcomes[0]!)
  return {
    id: scenario.id,
    title: scenario.title,
    params: scenario.params,
    targets: outcomes.map((outcome) => ({
      id: outcome.spec.id,
      label: outcome.spec.label,
      argv: outcome.spec.argv,
      status: best(outcome) === undefined ? "n/a" : "ok",
      unavailable: outcome.unavailable,
      unit: scenario.rateUnit,
      ratio: best(outcome) && baseline ? best(outcome)!.rate / baseline.rate : null,
      runs: outcome.runs
    }))
  }
}

export const strategiesSuite: Suite = {
  name: "strategies",
  description: "CPU-bound requests/s under fiber vs fork pool vs worker pool; connection set-up of fork per connection",
  run: async (ctx) => {
    const base = ctx.quick ? QUICK : FULL
    const timing: Timing = { ...base, rounds: ctx.rounds ?? base.rounds }
    const selection = `best of ${timing.rounds} run(s) per target by rate; latencies come from that same run`
    const pinning = ctx.env.pinning.enabled
      ? `server UNPINNED (fork children and worker threads use both cores), load generator pinned to core ${ctx.env.pinning.loadCore}`
      : "nothing pinned (taskset unavailable)"
    ctx.print(
      `\n# strategies: warm-up ${timing.warmupMs} ms, window ${timing.windowMs} ms, ${timing.rounds} round(s), ` +
        `targets alternate; ${selection}.\n` +
        `  Pinning for this suite: ${pinning}.\n` +
        `  Before each measurement waits up to ${timing.quietWaitMs / 1000} s for machine CPU < ${QUIET_PCT}% of a core.\n` +
        "  CPU % is of one core (200% = both); server CPU counts its children and threads; " +
        "\"other CPU\" is everything else on the machine during the window."
    )
    const results = []
    for (const scenario of scenarios) results.push(await runScenario(ctx, scenario, timing))
    return { timing, selection, pinning, scenarios: results }
  }
}

/**
 * Strategies suite: what the `fork` and `worker` strategies buy for CPU-bound handlers, and what a
 * fresh child per connection costs.
 *
 * 1. CPU-bound requests: `bench/targets/cpuServer.ts` (a few ms of FNV-1a hashing in JavaScript per 64-byte request) under
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
import { addressArgs, measureOnce } from "../lib/measurement.ts"
import type { LoadRun } from "../lib/measurement.ts"
import { disturbedNote, failedRoundNotes, roughExits } from "../lib/notes.ts"
import { quietWaitNote } from "../lib/quiet.ts"
import { bestRun, measureRounds } from "../lib/rounds.ts"
import type { TargetOutcome } from "../lib/rounds.ts"
import type { Suite, SuiteContext } from "../lib/suite.ts"
import { ourProgram } from "../lib/system.ts"
import type { Pinning } from "../lib/system.ts"
import { bestRunsTable } from "../lib/bestRunsTable.ts"
import { num, pct } from "../lib/table.ts"
import type { Align } from "../lib/table.ts"
import { BENCH_HOST } from "../lib/target.ts"
import type { TargetSpec } from "../lib/target.ts"
import { chooseTiming, windowArgs } from "../lib/timing.ts"
import type { Timing } from "../lib/timing.ts"
import type { CpuLoadResult } from "../targets/cpuLoad.ts"
import * as CpuHandler from "../targets/cpuHandler.ts"

const LOAD_SCRIPT = "bench/targets/cpuLoad.ts"
const WORKERS = 2
/** Hash rounds per request in the CPU scenario (about 4 ms of one core here). */
const CPU_ROUNDS = CpuHandler.defaultRounds
/** The goal for fork pool and worker against fiber on this 2-core machine. */
const GOAL = 1.6

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
    BENCH_HOST,
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
    title: `CPU-bound requests: ${CPU_ROUNDS} FNV-1a rounds (JavaScript) per 64-byte request, 8 connections, one request in flight each`,
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

type Run = LoadRun<{ readonly result: CpuLoadResult; readonly rate: number; readonly serverCpuPct: number | null }>
type OkRun = Extract<Run, { ok: true }>
type Outcome = TargetOutcome<Run>

/** Like the table module's ratio, but a child per connection is ~1000x slower than the pool: keep 2 digits. */
const ratio = (ours: number, baseline: number | undefined): string =>
  baseline === undefined || baseline === 0 ? "-" : `${ours / baseline >= 0.1 ? (ours / baseline).toFixed(2) : (ours / baseline).toPrecision(2)}x`
const ms = (us: number): string => (us / 1000).toFixed(us < 10_000 ? 2 : 1)

/** The server unpinned (both cores), the load generator pinned to the load core (1). */
const serverPinning = (pinning: Pinning): Pinning => ({ ...pinning, enabled: false })

const runOnce = (ctx: SuiteContext, scenario: Scenario, outcome: Outcome, round: number, timing: Timing) =>
  measureOnce(ctx, outcome, round, {
    scenarioId: scenario.id,
    quietWaitMs: timing.quietWaitMs,
    server: { pinning: serverPinning(ctx.env.pinning), core: 0 },
    loadScript: LOAD_SCRIPT,
    loadArgs: (target) => [
      ...scenario.loadArgs,
      ...addressArgs(target),
      ...windowArgs(timing),
      "--server-pid",
      String(target.pid)
    ],
    loadTimeoutMs: timing.warmupMs + timing.windowMs + 20_000,
    interpret: (load, crashed) => {
      if (!load.ok) return { ok: false, reason: load.reason + crashed }
      const result = load.result as unknown as CpuLoadResult
      const expected = scenario.id === "cpu-requests" ? "requests" : "connect"
      if (result.mode !== expected || typeof result.windowMs !== "number") {
        return { ok: false, reason: `unexpected load generator result: ${JSON.stringify(load.result).slice(0, 200)}` }
      }
      const rate = result.count / (result.windowMs / 1000)
      const serverCpuPct = result.serverCpuMs === null ? null : (result.serverCpuMs / result.windowMs) * 100
      const line =
        `${num(rate, 1)} ${scenario.rateUnit}, mean ${ms(result.meanUs)} ms` +
        ` (server CPU ${pct(serverCpuPct)}, load-gen CPU ${pct(result.loadCpuPct)}, other CPU ${pct(result.otherCpuPct)})`
      return { ok: true, figures: { result, rate, serverCpuPct }, line }
    }
  })

const best = (outcome: Outcome): OkRun | undefined => bestRun(outcome, (run) => run.rate)

const table = (scenario: Scenario, outcomes: ReadonlyArray<Outcome>): string => {
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
  const row = (outcome: Outcome, top: OkRun): Array<string> => {
    const r = top.result
    return [
      outcome.spec.label,
      num(top.rate, 1),
      ratio(top.rate, baseline?.rate),
      ms(r.meanUs),
      ms(r.p50Us),
      ms(r.p99Us),
      pct(top.serverCpuPct),
      `${pct(r.loadCpuPct)} / ${pct(r.otherCpuPct)}`,
      outcome.runs.map((run) => (run.ok ? num(run.rate, 1) : "failed")).join(", ")
    ]
  }
  return bestRunsTable({ headers, align, outcomes, best, row, missingLine: (label, why) => `${label}: n/a: ${why}` })
}

/** No load-generator saturation note here: it keeps one request in flight per connection, far from its core. */
const notes = (scenario: Scenario, outcomes: ReadonlyArray<Outcome>): Array<string> => {
  const lines: Array<string> = []
  const baseline = best(outcomes[0]!)
  for (const outcome of outcomes) {
    const disturbed = disturbedNote(outcome, "the machine was shared, these numbers are disturbed")
    if (disturbed !== undefined) lines.push(disturbed)
    lines.push(...failedRoundNotes(outcome))
    const rough = roughExits(outcome)
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
  const outcomes = await measureRounds<Run>(ctx, scenario.targets, timing.rounds, (outcome, round) =>
    runOnce(ctx, scenario, outcome, round, timing)
  )
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
    const timing = chooseTiming(ctx, FULL, QUICK)
    const selection = `best of ${timing.rounds} run(s) per target by rate; latencies come from that same run`
    const pinning = ctx.env.pinning.enabled
      ? `server UNPINNED (fork children and worker threads use both cores), load generator pinned to core ${ctx.env.pinning.loadCore}`
      : "nothing pinned (taskset unavailable)"
    ctx.print(
      `\n# strategies: warm-up ${timing.warmupMs} ms, window ${timing.windowMs} ms, ${timing.rounds} round(s), ` +
        `targets alternate; ${selection}.\n` +
        `  Pinning for this suite: ${pinning}.\n` +
        `  ${quietWaitNote(timing.quietWaitMs)}\n` +
        "  CPU % is of one core (200% = both); server CPU counts its children and threads; " +
        "\"other CPU\" is everything else on the machine during the window."
    )
    const results = []
    for (const scenario of scenarios) results.push(await runScenario(ctx, scenario, timing))
    return { timing, selection, pinning, scenarios: results }
  }
}

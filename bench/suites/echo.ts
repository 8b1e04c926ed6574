/**
 * Echo suite: the project's echo server (`examples/echo-server.ts`, `fiber`
 * strategy) against raw Node anchors in the same run, in three scenarios:
 * TCP streaming throughput, small-message TCP round trips (rate and p99),
 * and UDP echoed packets per second.
 *
 * Each measurement starts a fresh server pinned to the server core and a
 * fresh load generator pinned to the other; targets alternate round by round
 * (anchor, ours, anchor, ours, ...) so slow drifts of the machine hit both.
 */
import { addressArgs, measureOnce } from "../lib/measurement.ts"
import type { LoadRun } from "../lib/measurement.ts"
import { loadRunNotes } from "../lib/notes.ts"
import { quietWaitNote } from "../lib/quiet.ts"
import { bestRun, measureRounds, targetSummary } from "../lib/rounds.ts"
import type { TargetOutcome, Unavailable } from "../lib/rounds.ts"
import { bestRunsTable } from "../lib/bestRunsTable.ts"
import { num, pct, ratio } from "../lib/table.ts"
import type { Align } from "../lib/table.ts"
import type { Suite, SuiteContext } from "../lib/suite.ts"
import { ourProgram } from "../lib/system.ts"
import { anchorTarget, BENCH_HOST } from "../lib/target.ts"
import type { TargetSpec } from "../lib/target.ts"
import { chooseTiming, windowArgs } from "../lib/timing.ts"
import type { Timing } from "../lib/timing.ts"
import type { EchoLoadMode, EchoLoadResult } from "../load/echoLoadResult.ts"

const LOAD_SCRIPT = "bench/load/echoLoad.ts"

const FULL: Timing = { rounds: 2, warmupMs: 1000, windowMs: 5000, quietWaitMs: 3000 }
const QUICK: Timing = { rounds: 1, warmupMs: 300, windowMs: 1500, quietWaitMs: 1000 }

const anchorTcp = anchorTarget("node-net-pipe", "node:net socket.pipe (anchor)", "bench/anchors/rawNetEcho.ts")
const anchorUdp = anchorTarget("node-dgram-echo", "node:dgram send-back (anchor)", "bench/anchors/rawDgramEcho.ts")

/** The project's echo server (see `ourProgram` for how it is started). */
const ours = (transport: "tcp" | "udp"): TargetSpec => ({
  id: `netkit-${transport}-fiber`,
  label: "effect-netkit echo (fiber)",
  role: "ours",
  argv: ourProgram(
    "examples/echo-server.ts",
    "--transport",
    transport,
    "--strategy",
    "fiber",
    "--host",
    BENCH_HOST,
    "--port",
    "0"
  ),
  requiredFile: "examples/echo-server.ts"
})

/** Per-run numbers derived from the load generator's result. */
interface Measured {
  /** Primary metric, higher is better (MB/s, round trips/s, packets/s). */
  readonly rate: number
  /** Server CPU as % of one core over the window. */
  readonly serverCpuPct: number | null
  /** Server CPU-ms per unit of work (per MB, per 1000 round trips or packets). */
  readonly cpuPerUnit: number | null
}

interface Scenario {
  readonly id: EchoLoadMode
  readonly title: string
  readonly params: Record<string, number>
  readonly targets: readonly [TargetSpec, TargetSpec]
  readonly rateUnit: string
  readonly rateDecimals: number
  readonly cpuUnit: string
  /** Work done in the window, in the rate's unit (MB, round trips, packets). */
  readonly count: (result: EchoLoadResult) => number
  /** How many counted units the CPU column is per (1 MB, 1000 round trips or packets). */
  readonly cpuPer: number
  readonly loadArgs: ReadonlyArray<string>
}

const scenarios: ReadonlyArray<Scenario> = [
  {
    id: "tcp-stream",
    title: "TCP echo throughput: 4 connections streaming, 256 KiB in flight each, 64 KiB writes",
    params: { connections: 4, inflightBytes: 256 * 1024, chunkBytes: 64 * 1024 },
    targets: [anchorTcp, ours("tcp")],
    rateUnit: "MB/s",
    rateDecimals: 1,
    cpuUnit: "CPU ms/MB",
    count: (r) => (r.bytes ?? 0) / 1e6,
    cpuPer: 1,
    loadArgs: ["--connections", "4", "--inflight", String(256 * 1024), "--chunk", String(64 * 1024)]
  },
  {
    id: "tcp-rtt",
    title: "TCP round trips: 16 connections, one 64-byte message in flight each",
    params: { connections: 16, messageBytes: 64 },
    targets: [anchorTcp, ours("tcp")],
    rateUnit: "round trips/s",
    rateDecimals: 0,
    cpuUnit: "CPU ms/1k rt",
    count: (r) => r.roundTrips ?? 0,
    cpuPer: 1000,
    loadArgs: ["--connections", "16", "--size", "64"]
  },
  {
    id: "udp",
    title: "UDP echo: 4 client sockets, 32 x 64-byte datagrams in flight each",
    params: { sockets: 4, window: 32, datagramBytes: 64 },
    targets: [anchorUdp, ours("udp")],
    rateUnit: "packets/s",
    rateDecimals: 0,
    cpuUnit: "CPU ms/1k pkts",
    count: (r) => r.packets ?? 0,
    cpuPer: 1000,
    loadArgs: ["--connections", "4", "--window", "32", "--size", "64"]
  }
]

type Run = LoadRun<{ readonly result: EchoLoadResult; readonly measured: Measured }>
type OkRun = Extract<Run, { ok: true }>
type Outcome = TargetOutcome<Run>

const measure = (scenario: Scenario, result: EchoLoadResult): Measured => {
  const count = scenario.count(result)
  const units = count / scenario.cpuPer
  return {
    rate: count / (result.windowMs / 1000),
    serverCpuPct: result.serverCpuMs === null ? null : (result.serverCpuMs / result.windowMs) * 100,
    cpuPerUnit: result.serverCpuMs === null || units === 0 ? null : result.serverCpuMs / units
  }
}

/** One measurement: fresh pinned server, one load run, server stopped. */
const runOnce = (ctx: SuiteContext, scenario: Scenario, outcome: Outcome, round: number, timing: Timing) =>
  measureOnce(ctx, outcome, round, {
    scenarioId: scenario.id,
    quietWaitMs: timing.quietWaitMs,
    loadScript: LOAD_SCRIPT,
    loadArgs: (target) => [
      "--mode",
      scenario.id,
      ...addressArgs(target),
      ...scenario.loadArgs,
      ...windowArgs(timing),
      "--server-pids",
      target.pids.join(",")
    ],
    loadTimeoutMs: timing.warmupMs + timing.windowMs + 15_000,
    interpret: (load, crashed) => {
      if (!load.ok) return { ok: false, reason: load.reason + crashed }
      // The generator is ours and prints this exact shape; check the mode so a
      // mismatched script can't be silently misread.
      if (load.result["mode"] !== scenario.id || typeof load.result["windowMs"] !== "number") {
        return { ok: false, reason: `unexpected load generator result: ${JSON.stringify(load.result).slice(0, 200)}` }
      }
      const result = load.result as unknown as EchoLoadResult
      const measured = measure(scenario, result)
      const line =
        `${num(measured.rate, scenario.rateDecimals)} ${scenario.rateUnit}` +
        ` (server CPU ${pct(measured.serverCpuPct)}, load-gen CPU ${pct(result.loadCpuPct)},` +
        ` other CPU ${pct(result.otherCpuPct)})`
      return { ok: true, figures: { result, measured }, line }
    }
  })

/** The run with the highest primary rate; its latency figures are reported alongside. */
const best = (outcome: Outcome): OkRun | undefined => bestRun(outcome, (run) => run.measured.rate)

const table = (scenario: Scenario, anchor: Outcome, mine: Outcome): string => {
  const anchorBest = best(anchor)
  const headers = ["target", scenario.rateUnit, "vs anchor"]
  const align: Array<Align> = ["left", "right", "right"]
  if (scenario.id === "tcp-rtt") {
    headers.push("p50 µs", "p99 µs", "p99 vs anchor")
    align.push("right", "right", "right")
  }
  if (scenario.id === "udp") {
    headers.push("lost")
    align.push("right")
  }
  headers.push("server CPU", scenario.cpuUnit, "load-gen / other CPU", `all runs (${scenario.rateUnit})`)
  align.push("right", "right", "right", "left")

  const row = (outcome: Outcome, top: OkRun): Array<string> => {
    const m = top.measured
    const r = top.result
    const cells = [
      outcome.spec.label,
      num(m.rate, scenario.rateDecimals),
      outcome.spec.role === "anchor" ? "1.00x" : ratio(m.rate, anchorBest?.measured?.rate)
    ]
    if (scenario.id === "tcp-rtt") {
      cells.push(
        num(r.p50Us ?? 0),
        num(r.p99Us ?? 0),
        outcome.spec.role === "anchor" ? "1.00x" : ratio(r.p99Us, anchorBest?.result?.p99Us)
      )
    }
    if (scenario.id === "udp") cells.push(num(r.lost ?? 0))
    cells.push(
      pct(m.serverCpuPct),
      m.cpuPerUnit === null ? "-" : m.cpuPerUnit.toFixed(3),
      `${pct(r.loadCpuPct)} / ${pct(r.otherCpuPct)}`,
      outcome.runs.map((run) => (run.ok ? num(run.measured.rate, scenario.rateDecimals) : "failed")).join(", ")
    )
    return cells
  }
  return bestRunsTable({
    headers,
    align,
    outcomes: [anchor, mine],
    best,
    row,
    missingLine: (label, why, labelWidth) => `${label.padEnd(labelWidth)} | n/a: ${why}`
  })
}

const runScenario = async (ctx: SuiteContext, scenario: Scenario, timing: Timing, unavailable: Unavailable) => {
  ctx.print(`\n== ${scenario.title}`)
  const outcomes = await measureRounds<Run>(
    ctx,
    scenario.targets,
    timing.rounds,
    (outcome, round) => runOnce(ctx, scenario, outcome, round, timing),
    { unavailable, announceSkipped: true }
  )
  const [anchor, mine] = outcomes as [Outcome, Outcome]
  ctx.print("")
  ctx.print(table(scenario, anchor, mine))
  // Interpretation hints: who saturated, and anything off about the targets.
  const saturated = " the load generator may cap this number (server capacity could be higher)"
  for (const line of loadRunNotes(outcomes, saturated)) ctx.print(line)

  const anchorBest = best(anchor)
  const oursBest = best(mine)
  return {
    id: scenario.id,
    title: scenario.title,
    params: scenario.params,
    ratio: {
      rate: oursBest && anchorBest ? oursBest.measured.rate / anchorBest.measured.rate : null,
      p99: oursBest?.result.p99Us !== undefined && anchorBest?.result.p99Us
        ? oursBest.result.p99Us / anchorBest.result.p99Us
        : null
    },
    targets: [anchor, mine].map((outcome) => ({
      ...targetSummary(outcome, best(outcome)),
      unit: scenario.rateUnit,
      runs: outcome.runs
    }))
  }
}

export const echoSuite: Suite = {
  name: "echo",
  description: "TCP throughput, TCP small-message round trips + p99, UDP packets/s vs raw node:net / node:dgram",
  run: async (ctx) => {
    const timing = chooseTiming(ctx, FULL, QUICK)
    const selection =
      `best of ${timing.rounds} run(s) per target by the primary rate; p50/p99 come from that same run`
    ctx.print(
      `\n# echo: warm-up ${timing.warmupMs} ms, window ${timing.windowMs} ms, ${timing.rounds} round(s), ` +
        `targets alternate anchor/ours; ${selection}.\n` +
        `  ${quietWaitNote(timing.quietWaitMs)}\n` +
        "  MB = 10^6 bytes; CPU % is of one core; \"other CPU\" is everything else on the machine during the window."
    )
    const results = []
    const unavailable: Unavailable = new Map()
    for (const scenario of scenarios) results.push(await runScenario(ctx, scenario, timing, unavailable))
    return { timing, selection, scenarios: results }
  }
}

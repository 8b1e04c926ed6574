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
import { runLoad } from "../lib/load.ts"
import { waitForQuiet } from "../lib/quiet.ts"
import type { Quiet } from "../lib/quiet.ts"
import { formatTable, num, ratio } from "../lib/table.ts"
import type { Align } from "../lib/table.ts"
import type { Suite, SuiteContext } from "../lib/suite.ts"
import { nodeBin, ourProgram } from "../lib/system.ts"
import { startTarget } from "../lib/target.ts"
import type { ExitInfo, TargetSpec } from "../lib/target.ts"
import type { EchoLoadMode, EchoLoadResult } from "../load/echoLoadResult.ts"

const LOAD_SCRIPT = "bench/load/echoLoad.ts"
const START_TIMEOUT_MS = 20_000
const HOST = "127.0.0.1"
/** A side using at least this share of its core is saturated. */
const SATURATED_PCT = 90
/** Background CPU (other processes, % of one core) above which a run is flagged. */
const BACKGROUND_PCT = 10

interface Timing {
  readonly rounds: number
  readonly warmupMs: number
  readonly windowMs: number
  /** Longest wait for a quiet machine before each measurement. */
  readonly quietWaitMs: number
}

const FULL: Timing = { rounds: 2, warmupMs: 1000, windowMs: 5000, quietWaitMs: 3000 }
const QUICK: Timing = { rounds: 1, warmupMs: 300, windowMs: 1500, quietWaitMs: 1000 }
/** Machine-wide busy CPU (% of one core) under which it counts as quiet. */
const QUIET_PCT = 15

const anchorTcp: TargetSpec = {
  id: "node-net-pipe",
  label: "node:net socket.pipe (anchor)",
  role: "anchor",
  argv: [nodeBin, "bench/anchors/rawNetEcho.ts", "--host", HOST, "--port", "0"]
}

const anchorUdp: TargetSpec = {
  id: "node-dgram-echo",
  label: "node:dgram send-back (anchor)",
  role: "anchor",
  argv: [nodeBin, "bench/anchors/rawDgramEcho.ts", "--host", HOST, "--port", "0"]
}

/** The project's echo server (see `ourProgram` for how it is started). */
const ours = (transport: "tcp" | "udp"): TargetSpec => ({
  id: `netkit-${transport}-fiber`,
  label: "effect-netkit echo (fiber)",
  role: "ours",
  argv: ourProgram("examples/echo-server.ts", "--transport", transport, "--strategy", "fiber", "--host", HOST, "--port", "0"),
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

interface RunBase {
  readonly round: number
  /** How the server ended; null when it never started. */
  readonly exit: ExitInfo | null
  readonly quiet: Quiet
}

interface OkRun extends RunBase {
  readonly ok: true
  readonly result: EchoLoadResult
  readonly measured: Measured
}

interface FailedRun extends RunBase {
  readonly ok: false
  readonly reason: string
}

type Run = OkRun | FailedRun

const okRuns = (outcome: TargetOutcome): Array<OkRun> => outcome.runs.filter((run): run is OkRun => run.ok)

interface TargetOutcome {
  readonly spec: TargetSpec
  readonly runs: Array<Run>
  /** Set when the target could not be started; later rounds skip it. */
  unavailable: string | null
}

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
const runOnce = async (
  ctx: SuiteContext,
  scenario: Scenario,
  outcome: TargetOutcome,
  round: number,
  timing: Timing
): Promise<void> => {
  const { pinning } = ctx.env
  const quiet = await waitForQuiet({ maxWaitMs: timing.quietWaitMs, thresholdPct: QUIET_PCT, sampleMs: 250 })
  if (!quiet.quiet) {
    const waited = (quiet.waitedMs / 1000).toFixed(1)
    ctx.print(`  (machine still busy after ${waited} s: ${pct(quiet.busyPct)} of a core; measuring anyway)`)
  }
  const started = await startTarget(outcome.spec, { pinning, core: pinning.serverCore, timeoutMs: START_TIMEOUT_MS })
  if (!started.ok) {
    if (round === 1) outcome.unavailable = started.reason
    outcome.runs.push({ round, ok: false, reason: started.reason, exit: null, quiet })
    ctx.print(`  ${scenario.id} round ${round}: ${outcome.spec.label}: n/a: ${started.reason}`)
    return
  }
  const target = started.target
  let exit: ExitInfo | null = null
  try {
    const load = await runLoad(
      LOAD_SCRIPT,
      [
        "--mode",
        scenario.id,
        "--host",
        target.host,
        "--port",
        String(target.port),
        ...scenario.loadArgs,
        "--warmup-ms",
        String(timing.warmupMs),
        "--window-ms",
        String(timing.windowMs),
        "--server-pids",
        target.pids.join(",")
      ],
      { pinning, core: pinning.loadCore, timeoutMs: timing.warmupMs + timing.windowMs + 15_000 }
    )
    const crashed = target.exited() ? ` (server exited; output: ${target.tail()})` : ""
    exit = await target.stop()
    if (!load.ok) {
      outcome.runs.push({ round, ok: false, reason: load.reason + crashed, exit, quiet })
      ctx.print(`  ${scenario.id} round ${round}: ${outcome.spec.label}: failed: ${load.reason}${crashed}`)
      return
    }
    // The generator is ours and prints this exact shape; check the mode so a
    // mismatched script can't be silently misread.
    if (load.result["mode"] !== scenario.id || typeof load.result["windowMs"] !== "number") {
      const reason = `unexpected load generator result: ${JSON.stringify(load.result).slice(0, 200)}`
      outcome.runs.push({ round, ok: false, reason, exit, quiet })
      ctx.print(`  ${scenario.id} round ${round}: ${outcome.spec.label}: failed: ${reason}`)
      return
    }
    const result = load.result as unknown as EchoLoadResult
    const measured = measure(scenario, result)
    outcome.runs.push({ round, ok: true, result, measured, exit, quiet })
    ctx.print(
      `  ${scenario.id} round ${round}: ${outcome.spec.label}: ` +
        `${num(measured.rate, scenario.rateDecimals)} ${scenario.rateUnit}` +
        ` (server CPU ${pct(measured.serverCpuPct)}, load-gen CPU ${pct(result.loadCpuPct)},` +
        ` other CPU ${pct(result.otherCpuPct)})`
    )
  } finally {
    if (exit === null) await target.stop()
  }
}

const pct = (value: number | null): string => (value === null ? "-" : `${value.toFixed(0)}%`)

/** The run with the highest primary rate; its latency figures are reported alongside. */
const best = (outcome: TargetOutcome): OkRun | undefined =>
  okRuns(outcome).reduce<OkRun | undefined>(
    (top, run) => (top === undefined || run.measured.rate > top.measured.rate ? run : top),
    undefined
  )

const table = (scenario: Scenario, anchor: TargetOutcome, mine: TargetOutcome): string => {
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

  const row = (outcome: TargetOutcome): Array<string> => {
    const top = best(outcome)
    if (top === undefined) {
      const firstFailure = outcome.runs.find((run): run is FailedRun => !run.ok)
      const reason = outcome.unavailable ?? firstFailure?.reason ?? "no runs"
      return [outcome.spec.label, `n/a: ${reason}`]
    }
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
  // A row that is only "n/a: reason" would be padded to the widest reason;
  // keep such rows out of the column widths by printing them after the table.
  const rows = [anchor, mine].map(row)
  const full = rows.filter((cells) => cells.length > 2)
  const missing = rows.filter((cells) => cells.length === 2)
  const labelWidth = Math.max(headers[0].length, ...full.map((cells) => cells[0].length))
  return [
    formatTable(headers, full, align),
    ...missing.map((cells) => `${cells[0].padEnd(labelWidth)} | ${cells[1]}`)
  ].join("\n")
}

/** Interpretation hints: who saturated, and anything off about the targets. */
const notes = (outcomes: ReadonlyArray<TargetOutcome>): Array<string> => {
  const lines: Array<string> = []
  for (const outcome of outcomes) {
    const runs = okRuns(outcome)
    const loadBound = runs.filter((run) => run.result.loadCpuPct >= SATURATED_PCT)
    if (loadBound.length > 0) {
      lines.push(
        `note: ${outcome.spec.label}: load generator CPU >= ${SATURATED_PCT}% in ${loadBound.length}/${runs.length} runs;` +
          " the load generator may cap this number (server capacity could be higher)"
      )
    }
    // With no successful run the row itself already shows the failure.
    const failed = runs.length === 0 ? [] : outcome.runs.filter((run): run is FailedRun => !run.ok)
    for (const run of failed) lines.push(`note: ${outcome.spec.label}: round ${run.round} failed: ${run.reason}`)
    const disturbed = runs.filter((run) => (run.result.otherCpuPct ?? 0) >= BACKGROUND_PCT)
    if (disturbed.length > 0) {
      const worst = Math.max(...disturbed.map((run) => run.result.otherCpuPct ?? 0))
      lines.push(
        `note: ${outcome.spec.label}: other processes used up to ${worst.toFixed(0)}% of a core during ` +
          `${disturbed.length}/${runs.length} runs; those numbers may be disturbed`
      )
    }
    const rough = outcome.runs
      .map((run) => run.exit)
      .filter((exit): exit is ExitInfo => exit !== null && !exit.exitedEarly && (!exit.graceful || exit.code !== 0))
    if (rough.length > 0) {
      const exit = rough[0]
      lines.push(
        `note: ${outcome.spec.label}: did not exit 0 on SIGTERM in ${rough.length} runs ` +
          `(code ${exit.code}, signal ${exit.signal}${exit.graceful ? "" : ", needed SIGKILL"})`
      )
    }
  }
  return lines
}

/**
 * Targets that could not start, by spec id, across the suite's scenarios: a
 * server that timed out once is not waited for again in the next scenario.
 */
type Unavailable = Map<string, string>

const runScenario = async (ctx: SuiteContext, scenario: Scenario, timing: Timing, unavailable: Unavailable) => {
  ctx.print(`\n== ${scenario.title}`)
  const [anchor, mine]: [TargetOutcome, TargetOutcome] = [
    { spec: scenario.targets[0], runs: [], unavailable: unavailable.get(scenario.targets[0].id) ?? null },
    { spec: scenario.targets[1], runs: [], unavailable: unavailable.get(scenario.targets[1].id) ?? null }
  ]
  for (const outcome of [anchor, mine]) {
    if (outcome.unavailable !== null) ctx.print(`  ${outcome.spec.label}: n/a: ${outcome.unavailable} (skipped)`)
  }
  for (let round = 1; round <= timing.rounds; round++) {
    for (const outcome of [anchor, mine]) {
      if (outcome.unavailable !== null) continue
      await runOnce(ctx, scenario, outcome, round, timing)
    }
  }
  for (const outcome of [anchor, mine]) {
    if (outcome.unavailable !== null) unavailable.set(outcome.spec.id, outcome.unavailable)
  }
  ctx.print("")
  ctx.print(table(scenario, anchor, mine))
  for (const line of notes([anchor, mine])) ctx.print(line)

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
      id: outcome.spec.id,
      label: outcome.spec.label,
      role: outcome.spec.role,
      argv: outcome.spec.argv,
      status: best(outcome) === undefined ? "n/a" : "ok",
      unavailable: outcome.unavailable,
      best: best(outcome)?.round ?? null,
      unit: scenario.rateUnit,
      runs: outcome.runs
    }))
  }
}

export const echoSuite: Suite = {
  name: "echo",
  description: "TCP throughput, TCP small-message round trips + p99, UDP packets/s vs raw node:net / node:dgram",
  run: async (ctx) => {
    const base = ctx.quick ? QUICK : FULL
    const timing: Timing = { ...base, rounds: ctx.rounds ?? base.rounds }
    const selection =
      `best of ${timing.rounds} run(s) per target by the primary rate; p50/p99 come from that same run`
    ctx.print(
      `\n# echo: warm-up ${timing.warmupMs} ms, window ${timing.windowMs} ms, ${timing.rounds} round(s), ` +
        `targets alternate anchor/ours; ${selection}.\n` +
        `  Before each measurement waits up to ${timing.quietWaitMs / 1000} s for machine CPU < ${QUIET_PCT}% of a core.\n` +
        "  MB = 10^6 bytes; CPU % is of one core; \"other CPU\" is everything else on the machine during the window."
    )
    const results = []
    const unavailable: Unavailable = new Map()
    for (const scenario of scenarios) results.push(await runScenario(ctx, scenario, timing, unavailable))
    return { timing, selection, scenarios: results }
  }
}

/**
 * Chat suite: fan-out of the project's chat server (`examples/chat.ts --name server`, in-memory hub, fiber
 * strategy) against a minimal raw `node:net` chat server (`bench/anchors/rawChat.ts`) in the same run, both as
 * specified (one send per frame) and with `--cork` (a read's frames flushed per socket in one writev, which is
 * what the project's writer does with everything queued for a client, so that ratio isolates batching). Scenarios:
 * 16 clients each sending and receiving, one sender to 100 receivers, one sender to 1000 receivers. Measured:
 * delivered `message` frames per second (summed over all receivers) and p99 delivery latency.
 *
 * Each measurement starts a fresh server pinned to the server core and a fresh load generator
 * (`bench/load/chatLoad.ts`) pinned to the other; targets alternate round by round (anchor, ours, ...) so slow
 * drifts of the machine hit both.
 */
import { runLoad } from "../lib/load.ts"
import { waitForQuiet } from "../lib/quiet.ts"
import type { Quiet } from "../lib/quiet.ts"
import type { Suite, SuiteContext } from "../lib/suite.ts"
import { nodeBin, ourProgram } from "../lib/system.ts"
import { formatTable, num, ratio } from "../lib/table.ts"
import type { Align } from "../lib/table.ts"
import { startTarget } from "../lib/target.ts"
import type { ExitInfo, TargetSpec } from "../lib/target.ts"
import type { ChatLoadResult } from "../load/chatLoadResult.ts"

const LOAD_SCRIPT = "bench/load/chatLoad.ts"
const START_TIMEOUT_MS = 20_000
const HOST = "127.0.0.1"
/** Machine-wide busy CPU (% of one core) under which it counts as quiet. */
const QUIET_PCT = 15
/** Background CPU (other processes, % of one core) above which a run is flagged. */
const BACKGROUND_PCT = 10
/** A side using at least this share of its core is saturated. */
const SATURATED_PCT = 90

interface Timing {
  readonly rounds: number
  readonly warmupMs: number
  readonly windowMs: number
  readonly quietWaitMs: number
}

const FULL: Timing = { rounds: 2, warmupMs: 1000, windowMs: 5000, quietWaitMs: 3000 }
const QUICK: Timing = { rounds: 1, warmupMs: 500, windowMs: 1500, quietWaitMs: 1000 }

const anchor: TargetSpec = {
  id: "node-net-chat",
  label: "node:net raw chat (anchor)",
  role: "anchor",
  argv: [nodeBin, "bench/anchors/rawChat.ts", "--host", HOST, "--port", "0"]
}

const anchorCorked: TargetSpec = {
  id: "node-net-chat-corked",
  label: "node:net raw chat, corked (anchor 2)",
  role: "anchor",
  argv: [nodeBin, "bench/anchors/rawChat.ts", "--cork", "--host", HOST, "--port", "0"]
}

/** The project's chat server (see `ourProgram` for how it is started). */
const ours: TargetSpec = {
  id: "netkit-chat-memory",
  label: "effect-netkit chat (memory hub)",
  role: "ours",
  argv: ourProgram("examples/chat.ts", "--name", "server", "--host", HOST, "--port", "0"),
  requiredFile: "examples/chat.ts"
}

const targets: ReadonlyArray<TargetSpec> = [anchor, anchorCorked, ours]

interface Scenario {
  readonly id: string
  readonly title: string
  readonly senders: number
  readonly receivers: number
  /** Messages each sender may have in flight (not yet received by every other client). */
  readonly window: number
}

const scenarios: ReadonlyArray<Scenario> = [
  { id: "16-all", title: "16 clients, each sending and receiving (window 4 messages per sender)", senders: 16, receivers: 0, window: 4 },
  { id: "1-to-100", title: "1 sender to 100 receivers (window 16 messages)", senders: 1, receivers: 100, window: 16 },
  { id: "1-to-1000", title: "1 sender to 1000 receivers (window 4 messages)", senders: 1, receivers: 1000, window: 4 }
]

/** Characters of each `say` text (the marker with the send time, then padding). */
const TEXT_BYTES = 64

interface OkRun {
  readonly ok: true
  readonly round: number
  readonly result: ChatLoadResult
  /** Delivered messages per second. */
  readonly rate: number
  readonly serverCpuPct: number | null
  readonly exit: ExitInfo
  readonly quiet: Quiet
}

interface FailedRun {
  readonly ok: false
  readonly round: number
  readonly reason: string
  readonly exit: ExitInfo | null
  readonly quiet: Quiet
}

type Run = OkRun | FailedRun

interface TargetOutcome {
  readonly spec: TargetSpec
  readonly runs: Array<Run>
  unavailable: string | null
}

const pct = (value: number | null): string => (value === null ? "-" : `${value.toFixed(0)}%`)

const okRuns = (outcome: TargetOutcome): Array<OkRun> => outcome.runs.filter((run): run is OkRun => run.ok)

const best = (outcome: TargetOutcome): OkRun | undefined =>
  okRuns(outcome).reduce<OkRun | undefined>((top, run) => (top === undefined || run.rate > top.rate ? run : top), undefined)

const runOnce = async (ctx: SuiteContext, scenario: Scenario, outcome: TargetOutcome, round: number, timing: Timing) => {
  const { pinning } = ctx.env
  const quiet = await waitForQuiet({ maxWaitMs: timing.quietWaitMs, thresholdPct: QUIET_PCT, sampleMs: 250 })
  if (!quiet.quiet) {
    ctx.print(`  (machine still busy after ${(quiet.waitedMs / 1000).toFixed(1)} s: ${pct(quiet.busyPct)} of a core; measuring anyway)`)
  }
  const started = await startTarget(outcome.spec, { pinning, core: pinning.serverCore, timeoutMs: START_TIMEOUT_MS })
  if (!started.ok) {
    if (round === 1) outcome.unavailable = started.reason
    outcome.runs.push({ ok: false, round, reason: started.reason, exit: null, quiet })
    ctx.print(`  ${scenario.id} round ${round}: ${outcome.spec.label}: n/a: ${started.reason}`)
    return
  }
  const target = started.target
  let exit: ExitInfo | null = null
  try {
    const load = await runLoad(
      LOAD_SCRIPT,
      [
        "--host",
        target.host,
        "--port",
        String(target.port),
        "--senders",
        String(scenario.senders),
        "--receivers",
        String(scenario.receivers),
        "--window",
        String(scenario.window),
        "--text-bytes",
        String(TEXT_BYTES),
        "--warmup-ms",
        String(timing.warmupMs),
        "--window-ms",
        String(timing.windowMs),
        "--server-pids",
        target.pids.join(",")
      ],
      { pinning, core: pinning.loadCore, timeoutMs: 60_000 + timing.warmupMs + timing.windowMs + 15_000 }
    )
    const crashed = target.exited() ? ` (server exited; output: ${target.tail()})` : ""
    exit = await target.stop()
    if (!load.ok || typeof load.result["delivered"] !== "number") {
      const reason = (load.ok ? `unexpected result: ${JSON.stringify(load.result).slice(0, 200)}` : load.reason) + crashed
      outcome.runs.push({ ok: false, round, reason, exit, quiet })
      ctx.print(`  ${scenario.id} round ${round}: ${outcome.spec.label}: failed: ${reason}`)
      return
    }
    const result = load.result as unknown as ChatLoadResult
    const rate = result.delivered / (result.windowMs / 1000)
    const serverCpuPct = result.serverCpuMs === null ? null : (result.serverCpuMs / result.windowMs) * 100
    outcome.runs.push({ ok: true, round, result, rate, serverCpuPct, exit, quiet })
    ctx.print(
      `  ${scenario.id} round ${round}: ${outcome.spec.label}: ${num(rate)} msgs/s, p99 ${num(result.p99Us)} µs` +
        ` (server CPU ${pct(serverCpuPct)}, load-gen CPU ${pct(result.loadCpuPct)}, other CPU ${pct(result.otherCpuPct)},` +
        ` setup ${num(result.setupMs)} ms)`
    )
  } finally {
    if (exit === null) await target.stop()
  }
}

const table = (outcomes: ReadonlyArray<TargetOutcome>): string => {
  const anchorBest = best(outcomes[0]!)
  const corkedBest = best(outcomes[1]!)
  const headers = [
    "target",
    "delivered msgs/s",
    "vs anchor",
    "vs anchor 2",
    "p50 µs",
    "p99 µs",
    "p99 vs anchor",
    "p99 vs anchor 2",
    "server CPU",
    "CPU ms/1k msgs",
    "load-gen / other CPU",
    "all runs (msgs/s)"
  ]
  const align: Array<Align> = ["left", ...Array.from({ length: 10 }, (): Align => "right"), "left"]
  const rows: Array<Array<string>> = []
  const missing: Array<string> = []
  for (const outcome of outcomes) {
    const top = best(outcome)
    if (top === undefined) {
      const firstFailure = outcome.runs.find((run): run is FailedRun => !run.ok)
      missing.push(`${outcome.spec.label} | n/a: ${outcome.unavailable ?? firstFailure?.reason ?? "no runs"}`)
      continue
    }
    const r = top.result
    rows.push([
      outcome.spec.label,
      num(top.rate),
      ratio(top.rate, anchorBest?.rate),
      ratio(top.rate, corkedBest?.rate),
      num(r.p50Us),
      num(r.p99Us),
      ratio(r.p99Us, anchorBest?.result.p99Us),
      ratio(r.p99Us, corkedBest?.result.p99Us),
      pct(top.serverCpuPct),
      r.serverCpuMs === null || r.delivered === 0 ? "-" : (r.serverCpuMs / (r.delivered / 1000)).toFixed(3),
      `${pct(r.loadCpuPct)} / ${pct(r.otherCpuPct)}`,
      outcome.runs.map((run) => (run.ok ? num(run.rate) : "failed")).join(", ")
    ])
  }
  return [formatTable(headers, rows, align), ...missing].join("\n")
}

const notes = (outcomes: ReadonlyArray<TargetOutcome>): Array<string> => {
  const lines: Array<string> = []
  for (const outcome of outcomes) {
    const runs = okRuns(outcome)
    const loadBound = runs.filter((run) => run.result.loadCpuPct >= SATURATED_PCT)
    if (loadBound.length > 0) {
      lines.push(
        `note: ${outcome.spec.label}: load generator CPU >= ${SATURATED_PCT}% in ${loadBound.length}/${runs.length} runs;` +
          " it may cap this number"
      )
    }
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
      const exit = rough[0]!
      lines.push(
        `note: ${outcome.spec.label}: did not exit 0 on SIGTERM in ${rough.length} runs ` +
          `(code ${exit.code}, signal ${exit.signal}${exit.graceful ? "" : ", needed SIGKILL"})`
      )
    }
  }
  return lines
}

const runScenario = async (ctx: SuiteContext, scenario: Scenario, timing: Timing, unavailable: Map<string, string>) => {
  ctx.print(`\n== ${scenario.title}`)
  const outcomes: Array<TargetOutcome> = targets.map((spec) => ({
    spec,
    runs: [],
    unavailable: unavailable.get(spec.id) ?? null
  }))
  for (const outcome of outcomes) {
    if (outcome.unavailable !== null) ctx.print(`  ${outcome.spec.label}: n/a: ${outcome.unavailable} (skipped)`)
  }
  for (let round = 1; round <= timing.rounds; round++) {
    for (const outcome of outcomes) {
      if (outcome.unavailable === null) await runOnce(ctx, scenario, outcome, round, timing)
    }
  }
  for (const outcome of outcomes) if (outcome.unavailable !== null) unavailable.set(outcome.spec.id, outcome.unavailable)
  ctx.print("")
  ctx.print(table(outcomes))
  for (const line of notes(outcomes)) ctx.print(line)
  const [anchorBest, corkedBest, oursBest] = outcomes.map(best)
  const ratios = (reference: OkRun | undefined) => ({
    rate: oursBest && reference ? oursBest.rate / reference.rate : null,
    p99: oursBest && reference && reference.result.p99Us > 0 ? oursBest.result.p99Us / reference.result.p99Us : null
  })
  return {
    id: scenario.id,
    title: scenario.title,
    params: { senders: scenario.senders, receivers: scenario.receivers, window: scenario.window, textBytes: TEXT_BYTES },
    ratio: ratios(anchorBest),
    ratioVsCorked: ratios(corkedBest),
    targets: outcomes.map((outcome) => ({
      id: outcome.spec.id,
      label: outcome.spec.label,
      role: outcome.spec.role,
      argv: outcome.spec.argv,
      status: best(outcome) === undefined ? "n/a" : "ok",
      unavailable: outcome.unavailable,
      best: best(outcome)?.round ?? null,
      runs: outcome.runs
    }))
  }
}

export const chatSuite: Suite = {
  name: "chat",
  description: "chat fan-out: delivered messages/s and p99 delivery latency vs a raw node:net chat server",
  run: async (ctx) => {
    const base = ctx.quick ? QUICK : FULL
    const timing: Timing = { ...base, rounds: ctx.rounds ?? base.rounds }
    ctx.print(
      `\n# chat: warm-up ${timing.warmupMs} ms, window ${timing.windowMs} ms, ${timing.rounds} round(s), targets alternate ` +
        "round by round; best of the rounds by delivered msgs/s, p50/p99 from that same run.\n" +
        "  anchor = one send per frame (as a minimal server writes); anchor 2 = the same, corked per read (batched).\n" +
        "  delivered = `message` frames received by all clients together; latency = receive time minus the send time\n" +
        `  in the text (same process). ${TEXT_BYTES}-character texts. Before each measurement waits up to ` +
        `${timing.quietWaitMs / 1000} s for machine CPU < ${QUIET_PCT}% of a core.`
    )
    const unavailable = new Map<string, string>()
    const results = []
    for (const scenario of scenarios) results.push(await runScenario(ctx, scenario, timing, unavailable))
    return { timing, scenarios: results }
  }
}

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
import { addressArgs, measureOnce } from "../lib/measurement.ts"
import type { LoadRun } from "../lib/measurement.ts"
import { loadRunNotes } from "../lib/notes.ts"
import { quietWaitNote } from "../lib/quiet.ts"
import { bestRun, measureRounds, targetSummary } from "../lib/rounds.ts"
import type { TargetOutcome, Unavailable } from "../lib/rounds.ts"
import type { Suite, SuiteContext } from "../lib/suite.ts"
import { ourProgram } from "../lib/system.ts"
import { bestRunsTable } from "../lib/bestRunsTable.ts"
import { num, pct, ratio } from "../lib/table.ts"
import type { Align } from "../lib/table.ts"
import { anchorTarget, BENCH_HOST } from "../lib/target.ts"
import type { TargetSpec } from "../lib/target.ts"
import { chooseTiming, windowArgs } from "../lib/timing.ts"
import type { Timing } from "../lib/timing.ts"
import type { ChatLoadResult } from "../load/chatLoadResult.ts"

const LOAD_SCRIPT = "bench/load/chatLoad.ts"

const FULL: Timing = { rounds: 2, warmupMs: 1000, windowMs: 5000, quietWaitMs: 3000 }
const QUICK: Timing = { rounds: 1, warmupMs: 500, windowMs: 1500, quietWaitMs: 1000 }

const anchor = anchorTarget("node-net-chat", "node:net raw chat (anchor)", "bench/anchors/rawChat.ts")
const anchorCorked = anchorTarget(
  "node-net-chat-corked",
  "node:net raw chat, corked (anchor 2)",
  "bench/anchors/rawChat.ts",
  "--cork"
)

/** The project's chat server (see `ourProgram` for how it is started). */
const ours: TargetSpec = {
  id: "netkit-chat-memory",
  label: "effect-netkit chat (memory hub)",
  role: "ours",
  argv: ourProgram("examples/chat.ts", "--name", "server", "--host", BENCH_HOST, "--port", "0"),
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

type Run = LoadRun<{
  readonly result: ChatLoadResult
  /** Delivered messages per second. */
  readonly rate: number
  readonly serverCpuPct: number | null
}>
type OkRun = Extract<Run, { ok: true }>
type Outcome = TargetOutcome<Run>

const best = (outcome: Outcome): OkRun | undefined => bestRun(outcome, (run) => run.rate)

const runOnce = (ctx: SuiteContext, scenario: Scenario, outcome: Outcome, round: number, timing: Timing) =>
  measureOnce(ctx, outcome, round, {
    scenarioId: scenario.id,
    quietWaitMs: timing.quietWaitMs,
    loadScript: LOAD_SCRIPT,
    loadArgs: (target) => [
      ...addressArgs(target),
      "--senders",
      String(scenario.senders),
      "--receivers",
      String(scenario.receivers),
      "--window",
      String(scenario.window),
      "--text-bytes",
      String(TEXT_BYTES),
      ...windowArgs(timing),
      "--server-pids",
      target.pids.join(",")
    ],
    loadTimeoutMs: 60_000 + timing.warmupMs + timing.windowMs + 15_000,
    interpret: (load, crashed) => {
      if (!load.ok || typeof load.result["delivered"] !== "number") {
        const unexpected = load.ok ? `unexpected result: ${JSON.stringify(load.result).slice(0, 200)}` : load.reason
        return { ok: false, reason: unexpected + crashed }
      }
      const result = load.result as unknown as ChatLoadResult
      const rate = result.delivered / (result.windowMs / 1000)
      const serverCpuPct = result.serverCpuMs === null ? null : (result.serverCpuMs / result.windowMs) * 100
      const line =
        `${num(rate)} msgs/s, p99 ${num(result.p99Us)} µs` +
        ` (server CPU ${pct(serverCpuPct)}, load-gen CPU ${pct(result.loadCpuPct)},` +
        ` other CPU ${pct(result.otherCpuPct)},` +
        ` setup ${num(result.setupMs)} ms)`
      return { ok: true, figures: { result, rate, serverCpuPct }, line }
    }
  })

const table = (outcomes: ReadonlyArray<Outcome>): string => {
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
  const row = (outcome: Outcome, top: OkRun): Array<string> => {
    const r = top.result
    return [
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
    ]
  }
  return bestRunsTable({ headers, align, outcomes, best, row, missingLine: (label, why) => `${label} | n/a: ${why}` })
}

const runScenario = async (ctx: SuiteContext, scenario: Scenario, timing: Timing, unavailable: Unavailable) => {
  ctx.print(`\n== ${scenario.title}`)
  const outcomes = await measureRounds<Run>(
    ctx,
    targets,
    timing.rounds,
    (outcome, round) => runOnce(ctx, scenario, outcome, round, timing),
    { unavailable, announceSkipped: true }
  )
  ctx.print("")
  ctx.print(table(outcomes))
  for (const line of loadRunNotes(outcomes, " it may cap this number")) ctx.print(line)
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
    targets: outcomes.map((outcome) => ({ ...targetSummary(outcome, best(outcome)), runs: outcome.runs }))
  }
}

export const chatSuite: Suite = {
  name: "chat",
  description: "chat fan-out: delivered messages/s and p99 delivery latency vs a raw node:net chat server",
  run: async (ctx) => {
    const timing = chooseTiming(ctx, FULL, QUICK)
    ctx.print(
      `\n# chat: warm-up ${timing.warmupMs} ms, window ${timing.windowMs} ms, ${timing.rounds} round(s), targets alternate ` +
        "round by round; best of the rounds by delivered msgs/s, p50/p99 from that same run.\n" +
        "  anchor = one send per frame (as a minimal server writes); anchor 2 = the same, corked per read (batched).\n" +
        "  delivered = `message` frames received by all clients together; latency = receive time minus the send time\n" +
        `  in the text (same process). ${TEXT_BYTES}-character texts. ${quietWaitNote(timing.quietWaitMs)}`
    )
    const unavailable: Unavailable = new Map()
    const results = []
    for (const scenario of scenarios) results.push(await runScenario(ctx, scenario, timing, unavailable))
    return { timing, scenarios: results }
  }
}

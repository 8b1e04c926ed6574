/**
 * Connections suite: what an idle TCP connection costs a server in resident memory. A load generator opens 10,000
 * connections, makes each do one exchange (a 1-byte echo, or one keep-alive HTTP request) and leaves them idle;
 * the server's RSS with all of them open minus its RSS before, divided by their number, is the cost per
 * connection. Against raw `node:net` anchors in the same run:
 *
 *   echo   node:net socket.pipe (anchor)  vs  examples/echo-server.ts (fiber)
 *   web    raw node:net canned HTTP (anchor), node:http  vs  the web server (fiber, bench/targets/idleWebServer.ts)
 *
 * Each is measured twice: as Node starts it, and with V8's young generation capped (`--max-semi-space-size`, the
 * same for anchor and ours). V8 grows the young generation while many objects survive its collections, up to a
 * maximum that Node derives from the memory the process may use: semi-spaces of 32 MB up to 2 GiB (a container's
 * limit, or the machine's memory), 64 MB from 4 GiB (measured with Node 24 in memory cgroups). The capped rows use
 * 32 MB, so they show what Node's defaults give in a 2 GiB container. With 64 MB, setting up 10,000 connections
 * grows the young generation of a server that keeps more than a few KiB per connection by up to 64 MB, once; that
 * lands in the per-connection figure of 10,000. The generator then opens half as many again, and the cost of those
 * alone (the "marginal" column) shows what one more connection costs once the process has grown.
 *
 * Before the baseline a small warm-up batch is opened, exercised and closed, so that compiling the servers' code is
 * not charged to the connections. Servers and generator run under a raised limit on open files (`ulimit -n`, up to
 * the hard limit); the limits obtained are printed. Targets alternate round by round; each is reported by its lowest
 * figure (RSS only grows with garbage not yet collected).
 */
import { addressArgs, measureOnce } from "../lib/measurement.ts"
import type { LoadRun } from "../lib/measurement.ts"
import { bestRunsTable } from "../lib/bestRunsTable.ts"
import { failedRoundNotes } from "../lib/notes.ts"
import { quietWaitNote } from "../lib/quiet.ts"
import { bestRun, measureRounds, targetSummary } from "../lib/rounds.ts"
import type { TargetOutcome, Unavailable } from "../lib/rounds.ts"
import type { Suite, SuiteContext } from "../lib/suite.ts"
import { nodeBin, withFileLimit } from "../lib/system.ts"
import { num, ratio } from "../lib/table.ts"
import type { Align } from "../lib/table.ts"
import { BENCH_HOST } from "../lib/target.ts"
import type { TargetSpec } from "../lib/target.ts"
import { chooseTiming } from "../lib/timing.ts"
import type { ConnectionsLoadMode, ConnectionsLoadResult } from "../load/connectionsLoadResult.ts"

const LOAD_SCRIPT = "bench/load/connectionsLoad.ts"

interface Timing {
  readonly rounds: number
  readonly connections: number
  /** Connections opened after the measured ones, for the marginal cost. */
  readonly further: number
  readonly warmup: number
  readonly settleMs: number
  readonly quietWaitMs: number
}

const FULL: Timing = {
  rounds: 2,
  connections: 10_000,
  further: 5_000,
  warmup: 1_000,
  settleMs: 2_000,
  quietWaitMs: 3000
}
const QUICK: Timing = { rounds: 1, connections: 2_000, further: 1_000, warmup: 200, settleMs: 1_000, quietWaitMs: 1000 }

/** Descriptors a process needs besides its connections. */
const spareFiles = 1024

/** The goal for our servers, per connection. */
const goalBytes = 8 * 1024
/** ...with this many connections open. */
const goalConnections = 10_000
const goalVerdict = (bytesPerConnection: number): string => bytesPerConnection <= goalBytes ? "met" : "NOT met"

/** V8's young generation for the capped variants: semi-spaces of at most this many MB. */
const cappedSemiSpaceMb = 32

/** A target, and the anchor its figure is compared with (run with the same Node flags). */
interface Target extends TargetSpec {
  readonly anchorId: string
}

const variant = (
  id: string,
  label: string,
  role: TargetSpec["role"],
  anchorId: string,
  file: string,
  args: ReadonlyArray<string>,
  fileLimit: number,
  capped: boolean
): Target => ({
  id: capped ? `${id}-semi${cappedSemiSpaceMb}` : id,
  label: capped ? `${label}, semi-space ${cappedSemiSpaceMb} MB` : label,
  role,
  anchorId: capped ? `${anchorId}-semi${cappedSemiSpaceMb}` : anchorId,
  argv: withFileLimit(fileLimit, [
    nodeBin,
    ...(capped ? [`--max-semi-space-size=${cappedSemiSpaceMb}`] : []),
    file,
    ...args,
    "--host",
    BENCH_HOST,
    "--port",
    "0"
  ])
})

interface Scenario {
  readonly id: ConnectionsLoadMode
  readonly title: string
  readonly targets: ReadonlyArray<Target>
}

const scenarios = (fileLimit: number): ReadonlyArray<Scenario> => {
  const both = (make: (capped: boolean) => ReadonlyArray<Target>) => [...make(false), ...make(true)]
  return [
    {
      id: "echo",
      title: "idle echo connections (each echoed 1 byte)",
      targets: both((capped) => [
        variant("node-net-pipe", "node:net socket.pipe (anchor)", "anchor", "node-net-pipe", "bench/anchors/rawNetEcho.ts", [], fileLimit, capped),
        variant(
          "netkit-echo-fiber",
          "effect-netkit echo (fiber)",
          "ours",
          "node-net-pipe",
          "examples/echo-server.ts",
          ["--transport", "tcp", "--strategy", "fiber"],
          fileLimit,
          capped
        )
      ])
    },
    {
      id: "http",
      title: "idle HTTP keep-alive connections (each served one GET)",
      targets: [
        ...both((capped) => [
          variant("raw-net-canned", "raw node:net canned HTTP (anchor)", "anchor", "raw-net-canned", "bench/anchors/httpRawNet.ts", [], fileLimit, capped),
          variant(
            "netkit-web-fiber",
            "effect-netkit web server (fiber, keep-alive 1 h)",
            "ours",
            "raw-net-canned",
            "bench/targets/idleWebServer.ts",
            [],
            fileLimit,
            capped
          )
        ]),
        variant(
          "node-http",
          "node:http (keep-alive 1 h)",
          "anchor",
          "raw-net-canned",
          "bench/anchors/httpNode.ts",
          ["--keep-alive-ms", "3600000"],
          fileLimit,
          false
        )
      ]
    }
  ]
}

type Run = LoadRun<{ readonly result: ConnectionsLoadResult }>
type Outcome = TargetOutcome<Run>

const KiB = 1024
const MiB = 1024 * 1024

const runOnce = (ctx: SuiteContext, scenario: Scenario, outcome: Outcome, round: number, timing: Timing) =>
  measureOnce(ctx, outcome, round, {
    scenarioId: scenario.id,
    quietWaitMs: timing.quietWaitMs,
    loadScript: LOAD_SCRIPT,
    loadArgs: (running) => [
      "--mode",
      scenario.id,
      ...addressArgs(running),
      "--server-pid",
      String(running.pid),
      "--connections",
      String(timing.connections),
      "--further",
      String(timing.further),
      "--warmup",
      String(timing.warmup),
      "--settle-ms",
      String(timing.settleMs)
    ],
    loadTimeoutMs: 120_000,
    loadFileLimit: timing.connections + timing.further + spareFiles,
    interpret: (load, crashed) => {
      if (!load.ok) return { ok: false, reason: load.reason + crashed }
      if (load.result["mode"] !== scenario.id || typeof load.result["bytesPerConnection"] !== "number") {
        return { ok: false, reason: `unexpected load generator result: ${JSON.stringify(load.result).slice(0, 200)}` }
      }
      const result = load.result as unknown as ConnectionsLoadResult
      const line = `${num(result.bytesPerConnection / KiB, 2)} KiB/connection, ` +
        `marginal ${num(result.marginalBytesPerConnection / KiB, 2)} ` +
        `(RSS ${num(result.rssBeforeBytes / MiB, 1)} -> ${num(result.rssAfterBytes / MiB, 1)} MiB, ` +
        `${num(result.connections)} open in ${num(result.openMs / 1000, 1)} s; ` +
        `file limits: server ${result.serverFileLimit ?? "?"}, load ${result.loadFileLimit ?? "?"})`
      return { ok: true, figures: { result }, line }
    }
  })

/** The lowest cost per connection of a target's runs. */
const best = (outcome: Outcome) => bestRun(outcome, (run) => -run.result.bytesPerConnection)

/** `judged`: whether the run holds as many connections as the goal is set for (a quick run holds fewer). */
const table = (scenario: Scenario, outcomes: ReadonlyArray<Outcome>, judged: boolean): string => {
  const anchorOf = (outcome: Outcome) => {
    const anchorId = scenario.targets.find((spec) => spec.id === outcome.spec.id)?.anchorId
    const anchor = outcomes.find((candidate) => candidate.spec.id === anchorId)
    return anchor === undefined ? undefined : best(anchor)
  }
  const headers = [
    "target",
    "KiB/conn",
    "vs anchor",
    "marginal KiB/conn",
    "goal <= 8 KiB (KiB/conn, marginal)",
    "RSS before MiB",
    "RSS after MiB",
    "all runs (KiB/conn)"
  ]
  const align: Array<Align> = ["left", "right", "right", "right", "left", "right", "right", "left"]
  return bestRunsTable({
    headers,
    align,
    outcomes,
    best,
    row: (outcome, top) => {
      const perConnection = top.result.bytesPerConnection
      const anchor = anchorOf(outcome)
      return [
        outcome.spec.label,
        num(perConnection / KiB, 2),
        anchor === top ? "1.00x" : ratio(perConnection, anchor?.result.bytesPerConnection),
        num(top.result.marginalBytesPerConnection / KiB, 2),
        outcome.spec.role !== "ours"
          ? ""
          : judged
          ? `${goalVerdict(perConnection)}, ${goalVerdict(top.result.marginalBytesPerConnection)}`
          : `not judged under ${num(goalConnections)}`,
        num(top.result.rssBeforeBytes / MiB, 1),
        num(top.result.rssAfterBytes / MiB, 1),
        outcome.runs.map((run) => (run.ok ? num(run.result.bytesPerConnection / KiB, 2) : "failed")).join(", ")
      ]
    },
    missingLine: (label, why, labelWidth) => `${label.padEnd(labelWidth)} | n/a: ${why}`
  })
}

const runScenario = async (ctx: SuiteContext, scenario: Scenario, timing: Timing, unavailable: Unavailable) => {
  ctx.print(`\n== ${num(timing.connections)} ${scenario.title}`)
  const outcomes = await measureRounds<Run>(
    ctx,
    scenario.targets,
    timing.rounds,
    (outcome, round) => runOnce(ctx, scenario, outcome, round, timing),
    { unavailable, announceSkipped: true }
  )
  ctx.print("")
  ctx.print(table(scenario, outcomes, timing.connections >= goalConnections))
  for (const outcome of outcomes) for (const line of failedRoundNotes(outcome)) ctx.print(line)
  return {
    id: scenario.id,
    title: scenario.title,
    connections: timing.connections,
    targets: outcomes.map((outcome) => {
      const top = best(outcome)
      return {
        ...targetSummary(outcome, top),
        bytesPerConnection: top?.result.bytesPerConnection ?? null,
        marginalBytesPerConnection: top?.result.marginalBytesPerConnection ?? null,
        runs: outcome.runs
      }
    })
  }
}

export const connectionsSuite: Suite = {
  name: "connections",
  description: "RSS per idle connection with 10,000 open: echo and web servers vs raw node:net",
  run: async (ctx) => {
    const timing = chooseTiming(ctx, FULL, QUICK)
    const fileLimit = timing.connections + timing.further + spareFiles
    ctx.print(
      `\n# connections: ${num(timing.connections)} connections per run after a warm-up of ${num(timing.warmup)}, ` +
        `${timing.rounds} round(s), targets alternate; each target's lowest figure is shown.\n` +
        `  ${quietWaitNote(timing.quietWaitMs)}\n` +
        `  Servers and load generator ask for ${num(fileLimit)} open files (ulimit -n; the hard limit if lower).\n` +
        "  KiB/conn = (server RSS with them open - RSS before) / connections; " +
        `marginal: each of ${num(timing.further)} opened on top of them;\n` +
        `  "semi-space ${cappedSemiSpaceMb} MB" rows run node --max-semi-space-size=${cappedSemiSpaceMb}, which is ` +
        "Node's own choice for a process with 2 GiB of memory (with 4 GiB or more it chooses 64 MB);\n" +
        "  each is compared with its anchor run the same way. Goal for ours: <= 8 KiB."
    )
    const results = []
    const unavailable: Unavailable = new Map()
    for (const scenario of scenarios(fileLimit)) results.push(await runScenario(ctx, scenario, timing, unavailable))
    return { timing, scenarios: results }
  }
}

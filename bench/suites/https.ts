/**
 * HTTPS suite: `examples/web-server.ts` over a TLS listener (`--tls-cert`, `--tls-key`, ALPN http/1.1), under
 * fiber and with a fork pool of one child (which does the handshakes itself), against `node:https` (the anchor)
 * answering the same `200 text/plain "Hello from Epoll Server"` with the same certificate: ECDSA P-256, issued
 * at run time by a throwaway CA (`test/utils/certificates.ts`).
 *
 *   keep-alive   wrk -t1 -c50 https://...      requests over established TLS connections
 *   handshakes   bench/load/tlsHandshakeLoad   a new TLS connection (full handshake) per request, 16 at a time
 *
 * wrk is not used for handshakes: it resumes TLS sessions on reconnect (about half of them, measured), which
 * would mix cheap resumptions into the figure. Reported: rate, server CPU (all threads, from /proc) per request
 * or handshake, and both as ratios to node:https. Server and load generator are pinned to their own cores;
 * targets alternate round by round.
 */
import { spawn } from "node:child_process"
import { rmSync } from "node:fs"
import { makeUnsafe as makeCertificates } from "../../test/utils/certificates.ts"
import { bestRunsTable } from "../lib/bestRunsTable.ts"
import { track } from "../lib/children.ts"
import { SATURATED_PCT } from "../lib/notes.ts"
import { processTree, readCpuMs } from "../lib/procStat.ts"
import { waitForQuietMachine } from "../lib/quiet.ts"
import { bestRun, measureRounds, startRoundTarget, targetSummary } from "../lib/rounds.ts"
import type { TargetOutcome, Unavailable } from "../lib/rounds.ts"
import type { Suite, SuiteContext } from "../lib/suite.ts"
import { childEnv, nodeBin, pinned, repoRoot } from "../lib/system.ts"
import { num, pct, ratio } from "../lib/table.ts"
import type { Align } from "../lib/table.ts"
import { anchorTarget } from "../lib/target.ts"
import type { TargetSpec } from "../lib/target.ts"
import { chooseTiming } from "../lib/timing.ts"
import type { TlsHandshakeLoadResult } from "../load/tlsHandshakeLoad.ts"
import { ensureWrk, parseWrk, runWrk } from "../lib/wrk.ts"
import { webServerTarget } from "./http.ts"

const START_TIMEOUT_MS = 30_000
const CONNECTIONS = 50
const HANDSHAKE_LOOPS = 16

interface Timing {
  readonly rounds: number
  readonly warmupSec: number
  readonly windowSec: number
  readonly quietWaitMs: number
}

const FULL: Timing = { rounds: 2, warmupSec: 1, windowSec: 5, quietWaitMs: 3000 }
const QUICK: Timing = { rounds: 1, warmupSec: 1, windowSec: 2, quietWaitMs: 1000 }

const ours = (strategy: "fiber" | "fork", tlsFlags: ReadonlyArray<string>): TargetSpec =>
  webServerTarget(
    `netkit-https-${strategy}`,
    `effect-netkit web-server, TLS (${strategy === "fiber" ? "fiber" : "fork x1"})`,
    strategy,
    1,
    ...tlsFlags
  )

const targetsFor = (tlsFlags: ReadonlyArray<string>): ReadonlyArray<TargetSpec> => [
  anchorTarget("node-https", "node:https (anchor)", "bench/anchors/httpNode.ts", ...tlsFlags),
  ours("fiber", tlsFlags),
  // one child: the same core as the others, so the row shows what passing sockets to a child costs
  ours("fork", tlsFlags)
]

/** What one measured window gave, whatever generated the load. */
interface Measured {
  /** Requests (keep-alive) or completed connections (handshakes). */
  readonly count: number
  readonly seconds: number
  readonly errors: number
  readonly p99Ms: number | null
  readonly serverCpuMs: number | null
  /** Load generator CPU, % of its core, when it reports it. */
  readonly loadCpuPct: number | null
}

interface Scenario {
  readonly id: "keepalive" | "handshakes"
  readonly title: string
  /** What `count` counts, for the table's headers. */
  readonly unit: string
  readonly measure: (ctx: SuiteContext, url: string, pids: ReadonlyArray<number>, timing: Timing) => Promise<Measured>
}

const measureKeepAlive: Scenario["measure"] = async (ctx, url, pids, timing) => {
  const args = ["-t1", `-c${CONNECTIONS}`]
  const warm = await runWrk(ctx, [...args, `-d${timing.warmupSec}s`, url], 30_000)
  if (!warm.ok) throw new Error(`warm-up: ${warm.reason}`)
  const before = readCpuMs(pids)
  const measured = await runWrk(ctx, [...args, "--latency", `-d${timing.windowSec}s`, url], timing.windowSec * 1000 + 30_000)
  const after = readCpuMs(pids)
  if (!measured.ok) throw new Error(measured.reason)
  const wrk = parseWrk(measured.text)
  if (typeof wrk === "string") throw new Error(wrk)
  return {
    count: wrk.requests,
    seconds: wrk.seconds,
    errors: wrk.errors,
    p99Ms: wrk.p99Ms,
    serverCpuMs: before === null || after === null ? null : after - before,
    loadCpuPct: null
  }
}

const measureHandshakes: Scenario["measure"] = (ctx, url, pids, timing) =>
  new Promise((resolve, reject) => {
    const { hostname, port } = new URL(url)
    const argv = [
      nodeBin,
      "bench/load/tlsHandshakeLoad.ts",
      "--host",
      hostname,
      "--port",
      port,
      "--connections",
      String(HANDSHAKE_LOOPS),
      "--warmup-ms",
      String(timing.warmupSec * 1000),
      "--window-ms",
      String(timing.windowSec * 1000),
      "--server-pids",
      pids.join(",")
    ]
    const [command, ...rest] = pinned(ctx.env.pinning, ctx.env.pinning.loadCore, argv)
    const child = spawn(command!, rest, { cwd: repoRoot, env: childEnv(), stdio: ["ignore", "pipe", "pipe"] })
    track(child)
    let out = ""
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (out += chunk))
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (out += chunk))
    child.once("error", reject)
    child.once("exit", () => {
      const line = out.trim().split("\n").at(-1) ?? ""
      try {
        const result = JSON.parse(line) as TlsHandshakeLoadResult | { readonly ok: false; readonly error: string }
        if (!result.ok) return reject(new Error(result.error))
        resolve({
          count: result.connections,
          seconds: result.windowMs / 1000,
          errors: result.errors,
          p99Ms: null,
          serverCpuMs: result.serverCpuMs,
          loadCpuPct: result.loadCpuPct
        })
      } catch {
        reject(new Error(`unexpected load generator output: ${out.trim().slice(-200)}`))
      }
    })
  })

const scenarios: ReadonlyArray<Scenario> = [
  {
    id: "keepalive",
    title: `HTTPS hello world, keep-alive: wrk -t1 -c${CONNECTIONS}`,
    unit: "req",
    measure: measureKeepAlive
  },
  {
    id: "handshakes",
    title: `HTTPS, a new TLS connection per request (full handshake): ${HANDSHAKE_LOOPS} at a time`,
    unit: "handshake",
    measure: measureHandshakes
  }
]

interface OkRun {
  readonly ok: true
  readonly round: number
  readonly measured: Measured
  readonly rate: number
  readonly cpuUsPerUnit: number | null
  readonly serverCpuPct: number | null
}

type Run = OkRun | { readonly ok: false; readonly round: number; readonly reason: string }
type Outcome = TargetOutcome<Run>

const runOnce = async (ctx: SuiteContext, scenario: Scenario, outcome: Outcome, round: number, timing: Timing) => {
  const { pinning } = ctx.env
  await waitForQuietMachine(timing.quietWaitMs)
  const server = { pinning, core: pinning.serverCore, timeoutMs: START_TIMEOUT_MS }
  const notStarted = (reason: string): Run => ({ ok: false, round, reason })
  const target = await startRoundTarget(ctx, outcome, round, scenario.id, notStarted, server)
  if (target === null) return
  try {
    // A fork child starts once the server has announced its address: count its CPU too.
    const pids = await processTreeOf(target.pid, outcome.spec.id.endsWith("-fork") ? 2 : 1)
    const measured = await scenario.measure(ctx, `https://${target.host}:${target.port}/`, pids, timing)
    if (target.exited()) throw new Error(`server exited during the run: ${target.tail()}`)
    const windowMs = measured.seconds * 1000
    const run: OkRun = {
      ok: true,
      round,
      measured,
      rate: measured.count / measured.seconds,
      cpuUsPerUnit: measured.serverCpuMs === null || measured.count === 0 ? null : (measured.serverCpuMs * 1000) / measured.count,
      serverCpuPct: measured.serverCpuMs === null ? null : (measured.serverCpuMs / windowMs) * 100
    }
    outcome.runs.push(run)
    ctx.print(
      `  ${scenario.id} round ${round}: ${outcome.spec.label}: ${num(run.rate)} ${scenario.unit}/s` +
        ` (server CPU ${pct(run.serverCpuPct)}, ${run.cpuUsPerUnit?.toFixed(1) ?? "-"} µs/${scenario.unit},` +
        ` errors ${measured.errors}${measured.loadCpuPct === null ? "" : `, load CPU ${pct(measured.loadCpuPct)}`})`
    )
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error)
    outcome.runs.push({ ok: false, round, reason })
    ctx.print(`  ${scenario.id} round ${round}: ${outcome.spec.label}: failed: ${reason}`)
  } finally {
    await target.stop()
  }
}

/** The process tree of `pid` once it has `size` processes (at most 10 s later). */
const processTreeOf = async (pid: number, size: number): Promise<ReadonlyArray<number>> => {
  const deadline = Date.now() + 10_000
  let tree = processTree(pid)
  while (tree.length < size && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    tree = processTree(pid)
  }
  return tree
}

const best = (outcome: Outcome): OkRun | undefined => bestRun(outcome, (run) => run.rate)

const table = (scenario: Scenario, outcomes: ReadonlyArray<Outcome>): string => {
  const anchorBest = best(outcomes[0]!)
  const unit = scenario.unit
  const headers = [
    "target",
    `${unit}/s`,
    "vs node:https",
    "p99 ms",
    "server CPU",
    `CPU µs/${unit}`,
    `CPU/${unit} vs node:https`,
    "errors",
    `all runs (${unit}/s)`
  ]
  const align: Array<Align> = ["left", "right", "right", "right", "right", "right", "right", "right", "left"]
  const row = (outcome: Outcome, top: OkRun): Array<string> => [
    outcome.spec.label,
    num(top.rate),
    ratio(top.rate, anchorBest?.rate),
    top.measured.p99Ms === null ? "-" : top.measured.p99Ms.toFixed(2),
    pct(top.serverCpuPct),
    top.cpuUsPerUnit === null ? "-" : top.cpuUsPerUnit.toFixed(1),
    ratio(top.cpuUsPerUnit ?? undefined, anchorBest?.cpuUsPerUnit ?? undefined),
    String(top.measured.errors),
    outcome.runs.map((run) => (run.ok ? num(run.rate) : "failed")).join(", ")
  ]
  return bestRunsTable({ headers, align, outcomes, best, row, missingLine: (label, why) => `${label}: n/a: ${why}` })
}

export const httpsSuite: Suite = {
  name: "https",
  description: "HTTPS hello world (keep-alive with wrk, full handshakes per second) vs node:https, ECDSA P-256",
  run: async (ctx) => {
    const timing = chooseTiming(ctx, FULL, QUICK)
    ctx.print(
      `\n# https: warm-up ${timing.warmupSec} s, window ${timing.windowSec} s, ${timing.rounds} round(s), targets ` +
        "alternate; best run per target by rate.\n" +
        "  Certificate: ECDSA P-256 from a throwaway CA, the same file for every target.\n" +
        "  CPU µs per unit = server process CPU (user+sys, all threads) over the window / units completed."
    )
    const missingWrk = ensureWrk(ctx.print)
    if (missingWrk !== undefined) {
      ctx.print(`  https suite skipped: ${missingWrk}`)
      return { skipped: missingWrk }
    }
    const certificates = makeCertificates()
    try {
      const targets = targetsFor(["--tls-cert", certificates.server.certPath, "--tls-key", certificates.server.keyPath])
      const results = []
      const unavailable: Unavailable = new Map()
      for (const scenario of scenarios) {
        ctx.print(`\n== ${scenario.title}`)
        const outcomes = await measureRounds<Run>(
          ctx,
          targets,
          timing.rounds,
          (outcome, round) => runOnce(ctx, scenario, outcome, round, timing),
          { unavailable, announceSkipped: true }
        )
        ctx.print("")
        ctx.print(table(scenario, outcomes))
        const saturated = outcomes.flatMap((outcome) => outcome.runs).some((run) =>
          run.ok && (run.measured.loadCpuPct ?? 0) >= SATURATED_PCT
        )
        if (saturated) {
          ctx.print(
            `note: the load generator used ${SATURATED_PCT}% or more of its core: the ${scenario.unit} rates are capped ` +
              `by it; compare CPU µs/${scenario.unit}`
          )
        }
        results.push({
          id: scenario.id,
          title: scenario.title,
          targets: outcomes.map((outcome) => ({ ...targetSummary(outcome, best(outcome)), runs: outcome.runs }))
        })
      }
      return { timing, connections: CONNECTIONS, handshakeLoops: HANDSHAKE_LOOPS, key: "ECDSA P-256", scenarios: results }
    } finally {
      rmSync(certificates.dir, { recursive: true, force: true })
    }
  }
}

/**
 * HTTP suite: `examples/web-server.ts` (fiber, and a worker pool of 2) against `node:http` (the anchor), effect's
 * own `NodeHttpServer`, and a raw `node:net` server writing a canned response per request (the ceiling), all
 * answering `200 text/plain "Hello from Epoll Server"`. Load: `wrk` (Debian package `wrk`, installed when missing),
 * the same settings for every target, pinned to the load core while the target is pinned to the server core:
 *
 *   keep-alive   wrk -t1 -c50              one request in flight per connection
 *   pipelined    wrk -t1 -c50 -s pipeline  16 requests per write (bench/wrk/pipeline.lua)
 *
 * Reported: requests/s, p99 latency, server CPU (from /proc, all threads of the server process) per request, and
 * both as ratios to node:http. Every target (the worker pool too) runs on the one server core, so the pool row shows
 * what the strategy costs, not what a second core would add. Targets alternate round by round.
 */
import { spawn, spawnSync } from "node:child_process"
import { track } from "../lib/children.ts"
import { BACKGROUND_PCT } from "../lib/notes.ts"
import { readCpuMs, readMachineBusyMs } from "../lib/procStat.ts"
import { waitForQuietMachine } from "../lib/quiet.ts"
import type { Quiet } from "../lib/quiet.ts"
import { bestRun, measureRounds } from "../lib/rounds.ts"
import type { TargetOutcome, Unavailable } from "../lib/rounds.ts"
import type { Suite, SuiteContext } from "../lib/suite.ts"
import { childEnv, ourProgram, pinned, repoRoot } from "../lib/system.ts"
import { bestRunsTable } from "../lib/bestRunsTable.ts"
import { num, pct, ratio } from "../lib/table.ts"
import type { Align } from "../lib/table.ts"
import { anchorTarget, BENCH_HOST, startTarget } from "../lib/target.ts"
import type { ExitInfo, TargetSpec } from "../lib/target.ts"
import { chooseTiming } from "../lib/timing.ts"

const START_TIMEOUT_MS = 30_000
const CONNECTIONS = 50
const PIPELINE_DEPTH = 16

/** wrk takes its durations in whole seconds. */
interface Timing {
  readonly rounds: number
  readonly warmupSec: number
  readonly windowSec: number
  readonly quietWaitMs: number
}

const FULL: Timing = { rounds: 2, warmupSec: 1, windowSec: 5, quietWaitMs: 3000 }
const QUICK: Timing = { rounds: 1, warmupSec: 1, windowSec: 2, quietWaitMs: 1000 }

const ours = (strategy: "fiber" | "worker", workers: number): TargetSpec => ({
  id: `netkit-http-${strategy}`,
  label: strategy === "fiber" ? "effect-netkit web-server (fiber)" : `effect-netkit web-server (worker x${workers})`,
  role: "ours",
  argv: ourProgram(
    "examples/web-server.ts",
    "--strategy",
    strategy,
    "--workers",
    String(workers),
    "--host",
    BENCH_HOST,
    "--port",
    "0"
  ),
  requiredFile: "examples/web-server.ts"
})

const nodeHttp = anchorTarget("node-http", "node:http (anchor)", "bench/anchors/httpNode.ts")
const targets: ReadonlyArray<TargetSpec> = [
  nodeHttp,
  anchorTarget("effect-node-http", "effect NodeHttpServer", "bench/anchors/httpEffectPlatform.ts"),
  anchorTarget("raw-net-canned", "raw node:net canned (reference)", "bench/anchors/httpRawNet.ts"),
  ours("fiber", 1),
  ours("worker", 2)
]

interface Scenario {
  readonly id: "keepalive" | "pipelined"
  readonly title: string
  readonly wrkArgs: ReadonlyArray<string>
}

const scenarios: ReadonlyArray<Scenario> = [
  {
    id: "keepalive",
    title: `HTTP hello world, keep-alive: wrk -t1 -c${CONNECTIONS}`,
    wrkArgs: ["-t1", `-c${CONNECTIONS}`]
  },
  {
    id: "pipelined",
    title: `HTTP hello world, pipelined depth ${PIPELINE_DEPTH}: wrk -t1 -c${CONNECTIONS} -s bench/wrk/pipeline.lua`,
    wrkArgs: ["-t1", `-c${CONNECTIONS}`, "-s", "bench/wrk/pipeline.lua"]
  }
]

/** What one wrk run printed. */
interface WrkResult {
  readonly requests: number
  readonly seconds: number
  readonly rps: number
  readonly p99Ms: number | null
  /** Socket errors, non-2xx responses and timeouts together. */
  readonly errors: number
}

const toMs = (value: string, unit: string): number =>
  Number(value) * (unit === "us" ? 0.001 : unit === "s" ? 1000 : unit === "m" ? 60_000 : 1)

/** Parses wrk's text report (with `--latency`). */
export const parseWrk = (text: string): WrkResult | string => {
  const total = /(\d+) requests in ([\d.]+)(us|ms|s|m)/.exec(text)
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(text)
  if (total === null || rps === null) return `unexpected wrk output: ${text.trim().split("\n").slice(-3).join(" / ")}`
  const p99 = /^\s*99%\s+([\d.]+)(us|ms|s|m)\s*$/m.exec(text)
  let errors = 0
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text)
  if (socket !== null) errors += socket.slice(1).reduce((sum, n) => sum + Number(n), 0)
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(text)
  if (non2xx !== null) errors += Number(non2xx[1])
  return {
    requests: Number(total[1]),
    seconds: toMs(total[2]!, total[3]!) / 1000,
    rps: Number(rps[1]),
    p99Ms: p99 === null ? null : toMs(p99[1]!, p99[2]!),
    errors
  }
}

/** wrk on PATH, installing the Debian package (non-interactively) when it is missing. */
const ensureWrk = (print: (text: string) => void): string | undefined => {
  const has = () => spawnSync("wrk", ["--version"], { stdio: "ignore" }).error === undefined
  if (has()) return undefined
  print("  wrk not found: apt-get install -y wrk")
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" }
  let install = spawnSync("apt-get", ["install", "-y", "wrk"], { stdio: "ignore", env })
  if (install.status !== 0) {
    spawnSync("apt-get", ["update"], { stdio: "ignore", env })
    install = spawnSync("apt-get", ["install", "-y", "wrk"], { stdio: "ignore", env })
  }
  return has() ? undefined : "wrk is not installed and apt-get install -y wrk failed"
}

const runWrk = (
  ctx: SuiteContext,
  args: ReadonlyArray<string>,
  timeoutMs: number
): Promise<{ readonly ok: true; readonly text: string } | { readonly ok: false; readonly reason: string }> =>
  new Promise((resolve) => {
    const [command, ...rest] = pinned(ctx.env.pinning, ctx.env.pinning.loadCore, ["wrk", ...args])
    const child = spawn(command!, rest, { cwd: repoRoot, env: childEnv(), stdio: ["ignore", "pipe", "pipe"] })
    track(child)
    let out = ""
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (out += chunk))
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (out += chunk))
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs)
    child.once("error", (error) => {
      clearTimeout(timer)
      resolve({ ok: false, reason: `wrk failed to start: ${error.message}` })
    })
    child.once("exit", (code, signal) => {
      clearTimeout(timer)
      resolve(code === 0 ? { ok: true, text: out } : { ok: false, reason: `wrk exited ${signal ?? code}: ${out.trim().slice(-200)}` })
    })
  })

interface OkRun {
  readonly ok: true
  readonly round: number
  readonly wrk: WrkResult
  readonly serverCpuMs: number | null
  readonly cpuUsPerRequest: number | null
  readonly serverCpuPct: number | null
  readonly otherCpuPct: number | null
  readonly quiet: Quiet
  readonly exit: ExitInfo | null
}

interface FailedRun {
  readonly ok: false
  readonly round: number
  readonly reason: string
}

type Run = OkRun | FailedRun
type Outcome = TargetOutcome<Run>

const runOnce = async (ctx: SuiteContext, scenario: Scenario, outcome: Outcome, round: number, timing: Timing) => {
  const { pinning } = ctx.env
  const quiet = await waitForQuietMachine(timing.quietWaitMs)
  const started = await startTarget(outcome.spec, { pinning, core: pinning.serverCore, timeoutMs: START_TIMEOUT_MS })
  if (!started.ok) {
    if (round === 1) outcome.unavailable = started.reason
    outcome.runs.push({ ok: false, round, reason: started.reason })
    ctx.print(`  ${scenario.id} round ${round}: ${outcome.spec.label}: n/a: ${started.reason}`)
    return
  }
  const target = started.target
  let exit: ExitInfo | null = null
  try {
    const url = `http://${target.host}:${target.port}/`
    const extra = scenario.id === "pipelined" ? ["--", String(PIPELINE_DEPTH)] : []
    const warm = await runWrk(ctx, [...scenario.wrkArgs, `-d${timing.warmupSec}s`, url, ...extra], 30_000)
    if (!warm.ok) throw new Error(`warm-up: ${warm.reason}`)
    const cpuBefore = readCpuMs(target.pids)
    const busyBefore = readMachineBusyMs()
    const measured = await runWrk(
      ctx,
      [...scenario.wrkArgs, "--latency", `-d${timing.windowSec}s`, url, ...extra],
      timing.windowSec * 1000 + 30_000
    )
    const cpuAfter = readCpuMs(target.pids)
    const busyAfter = readMachineBusyMs()
    if (!measured.ok) throw new Error(measured.reason)
    const wrk = parseWrk(measured.text)
    if (typeof wrk === "string") throw new Error(wrk)
    const serverCpuMs = cpuBefore === null || cpuAfter === null ? null : cpuAfter - cpuBefore
    const windowMs = wrk.seconds * 1000
    // wrk is single-threaded here and saturates its core: count it as one busy core
    const otherCpuPct = busyBefore === null || busyAfter === null || serverCpuMs === null
      ? null
      : Math.max(0, ((busyAfter - busyBefore - serverCpuMs) / windowMs) * 100 - 100)
    const crashed = target.exited()
    exit = await target.stop()
    if (crashed) throw new Error(`server exited during the run: ${target.tail()}`)
    const run: OkRun = {
      ok: true,
      round,
      wrk,
      serverCpuMs,
      cpuUsPerRequest: serverCpuMs === null || wrk.requests === 0 ? null : (serverCpuMs * 1000) / wrk.requests,
      serverCpuPct: serverCpuMs === null ? null : (serverCpuMs / windowMs) * 100,
      otherCpuPct,
      quiet,
      exit
    }
    outcome.runs.push(run)
    ctx.print(
      `  ${scenario.id} round ${round}: ${outcome.spec.label}: ${num(wrk.rps)} req/s` +
        ` (server CPU ${pct(run.serverCpuPct)}, ${run.cpuUsPerRequest?.toFixed(2) ?? "-"} µs/req,` +
        ` errors ${wrk.errors}, other CPU ~${pct(otherCpuPct)})`
    )
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error)
    outcome.runs.push({ ok: false, round, reason })
    ctx.print(`  ${scenario.id} round ${round}: ${outcome.spec.label}: failed: ${reason}`)
  } finally {
    if (exit === null) await target.stop()
  }
}

const best = (outcome: Outcome): OkRun | undefined => bestRun(outcome, (run) => run.wrk.rps)

/** The goal for the worker pool: its server CPU per keep-alive request at most this many times fiber's. */
const WORKER_CPU_GOAL = 1.3

/** How the worker pool's CPU per request compares with fiber's, the same server on one thread. */
const workerVsFiber = (scenario: Scenario, outcomes: ReadonlyArray<Outcome>): string | undefined => {
  const cpuOf = (strategy: "fiber" | "worker") => {
    const outcome = outcomes.find((o) => o.spec.id === `netkit-http-${strategy}`)
    return outcome === undefined ? undefined : best(outcome)?.cpuUsPerRequest
  }
  const fiber = cpuOf("fiber")
  const worker = cpuOf("worker")
  if (fiber == null || worker == null) return undefined
  const x = worker / fiber
  const line = `worker pool vs fiber, server CPU per request: ${worker.toFixed(2)} / ${fiber.toFixed(2)} µs = ${x.toFixed(2)}x`
  return scenario.id === "keepalive"
    ? `goal: ${line} <= ${WORKER_CPU_GOAL.toFixed(1)}x: ${x <= WORKER_CPU_GOAL ? "met" : "NOT met"}`
    : line
}

const table = (outcomes: ReadonlyArray<Outcome>): string => {
  const anchorBest = best(outcomes[0]!)
  const headers = [
    "target",
    "req/s",
    "vs node:http",
    "p99 ms",
    "server CPU",
    "CPU µs/req",
    "CPU/req vs node:http",
    "errors",
    "all runs (req/s)"
  ]
  const align: Array<Align> = ["left", "right", "right", "right", "right", "right", "right", "right", "left"]
  const row = (outcome: Outcome, top: OkRun): Array<string> => [
    outcome.spec.label,
    num(top.wrk.rps),
    ratio(top.wrk.rps, anchorBest?.wrk.rps),
    top.wrk.p99Ms === null ? "-" : top.wrk.p99Ms.toFixed(2),
    pct(top.serverCpuPct),
    top.cpuUsPerRequest === null ? "-" : top.cpuUsPerRequest.toFixed(2),
    ratio(top.cpuUsPerRequest ?? undefined, anchorBest?.cpuUsPerRequest ?? undefined),
    String(top.wrk.errors),
    outcome.runs.map((run) => (run.ok ? num(run.wrk.rps) : "failed")).join(", ")
  ]
  return bestRunsTable({ headers, align, outcomes, best, row, missingLine: (label, why) => `${label}: n/a: ${why}` })
}

export const httpSuite: Suite = {
  name: "http",
  description: "HTTP/1.1 hello world with wrk (keep-alive, pipelined x16) vs node:http, effect NodeHttpServer, raw net",
  run: async (ctx) => {
    const timing = chooseTiming(ctx, FULL, QUICK)
    ctx.print(
      `\n# http: wrk warm-up ${timing.warmupSec} s, window ${timing.windowSec} s, ${timing.rounds} round(s), targets ` +
        "alternate; best run per target by req/s.\n" +
        "  CPU µs/req = server process CPU (user+sys, all threads) over the window / requests answered.\n" +
        "  \"other CPU\" = machine busy CPU minus server minus one core for wrk: load from other jobs on the box."
    )
    const missingWrk = ensureWrk(ctx.print)
    if (missingWrk !== undefined) {
      ctx.print(`  http suite skipped: ${missingWrk}`)
      return { skipped: missingWrk }
    }
    const results = []
    const unavailable: Unavailable = new Map()
    for (const scenario of scenarios) {
      ctx.print(`\n== ${scenario.title}`)
      // Unlike echo and chat, http has never announced skipped targets; the table names them.
      const outcomes = await measureRounds<Run>(
        ctx,
        targets,
        timing.rounds,
        (outcome, round) => runOnce(ctx, scenario, outcome, round, timing),
        { unavailable, announceSkipped: false }
      )
      ctx.print("")
      ctx.print(table(outcomes))
      const versus = workerVsFiber(scenario, outcomes)
      if (versus !== undefined) ctx.print(versus)
      const busy = outcomes
        .flatMap((o) => o.runs)
        .filter((run): run is OkRun => run.ok && (run.otherCpuPct ?? 0) >= BACKGROUND_PCT)
      if (busy.length > 0) {
        const worst = Math.max(...busy.map((run) => run.otherCpuPct ?? 0))
        ctx.print(`note: other processes used up to ~${worst.toFixed(0)}% of a core during ${busy.length} runs; numbers may be disturbed`)
      }
      results.push({
        id: scenario.id,
        title: scenario.title,
        targets: outcomes.map((outcome) => ({
          id: outcome.spec.id,
          label: outcome.spec.label,
          argv: outcome.spec.argv,
          unavailable: outcome.unavailable,
          best: best(outcome)?.round ?? null,
          runs: outcome.runs
        }))
      })
    }
    return { timing, connections: CONNECTIONS, pipelineDepth: PIPELINE_DEPTH, scenarios: results }
  }
}

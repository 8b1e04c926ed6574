/**
 * HTTP load with wrk, shared by the HTTP suites: every target started and measured the same way, targets alternating
 * round by round, each pinned to the server core while wrk runs on the load core. Reported: requests/s, p99 latency,
 * server CPU (from /proc, all threads of the server process) per request, and both as ratios to the first target
 * (the anchor). `wrk` comes from the Debian package (installed when missing).
 */
import { spawn, spawnSync } from "node:child_process"
import { track } from "./children.ts"
import { BACKGROUND_PCT } from "./notes.ts"
import { readCpuMs, readMachineBusyMs } from "./procStat.ts"
import { waitForQuietMachine } from "./quiet.ts"
import type { Quiet } from "./quiet.ts"
import { bestRun, measureRounds, startRoundTarget } from "./rounds.ts"
import type { TargetOutcome, Unavailable } from "./rounds.ts"
import type { Suite, SuiteContext } from "./suite.ts"
import { childEnv, pinned, repoRoot } from "./system.ts"
import { bestRunsTable } from "./bestRunsTable.ts"
import { num, pct, ratio } from "./table.ts"
import type { Align } from "./table.ts"
import type { ExitInfo, TargetSpec } from "./target.ts"
import { chooseTiming } from "./timing.ts"

const START_TIMEOUT_MS = 30_000

/** wrk takes its durations in whole seconds. */
export interface Timing {
  readonly rounds: number
  readonly warmupSec: number
  readonly windowSec: number
  readonly quietWaitMs: number
}

export const FULL: Timing = { rounds: 2, warmupSec: 1, windowSec: 5, quietWaitMs: 3000 }
export const QUICK: Timing = { rounds: 1, warmupSec: 1, windowSec: 2, quietWaitMs: 1000 }

/** One load shape: wrk's arguments, the path it hits, and what follows `--` (arguments of a wrk script). */
export interface Scenario {
  readonly id: string
  readonly title: string
  readonly wrkArgs: ReadonlyArray<string>
  readonly path?: string | undefined
  readonly scriptArgs?: ReadonlyArray<string> | undefined
}

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
export const ensureWrk = (print: (text: string) => void): string | undefined => {
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

/** Runs wrk pinned to the load core; resolves with its report, or why it failed. */
export const runWrk = (
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
  const server = { pinning, core: pinning.serverCore, timeoutMs: START_TIMEOUT_MS }
  const notStarted = (reason: string): Run => ({ ok: false, round, reason })
  const target = await startRoundTarget(ctx, outcome, round, scenario.id, notStarted, server)
  if (target === null) return
  let exit: ExitInfo | null = null
  try {
    const url = `http://${target.host}:${target.port}${scenario.path ?? "/"}`
    const extra = scenario.scriptArgs === undefined ? [] : ["--", ...scenario.scriptArgs]
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

const table = (outcomes: ReadonlyArray<Outcome>, anchor: string): string => {
  const anchorBest = best(outcomes[0]!)
  const headers = [
    "target",
    "req/s",
    `vs ${anchor}`,
    "p99 ms",
    "server CPU",
    "CPU µs/req",
    `CPU/req vs ${anchor}`,
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


/** What a wrk suite measures. */
export interface WrkSuiteSpec {
  readonly name: string
  readonly description: string
  /** The first target is the anchor of the ratios. */
  readonly targets: ReadonlyArray<TargetSpec>
  /** How the anchor is named in the column titles ("node:http"). */
  readonly anchor: string
  readonly scenarios: ReadonlyArray<Scenario>
  /** Facts of the load for the JSON results (connections, pipeline depth...). */
  readonly facts: Record<string, unknown>
  /**
   * A line printed under a scenario's table (a goal between two targets, say), given each target's best server CPU
   * per request by target id; `undefined` prints nothing.
   */
  readonly summary?: ((scenario: Scenario, cpuPerRequest: (id: string) => number | undefined) => string | undefined) | undefined
}

/** A suite that runs every scenario against every target. */
export const wrkSuite = (spec: WrkSuiteSpec): Suite => ({
  name: spec.name,
  description: spec.description,
  run: async (ctx) => {
    const timing = chooseTiming(ctx, FULL, QUICK)
    ctx.print(
      `\n# ${spec.name}: wrk warm-up ${timing.warmupSec} s, window ${timing.windowSec} s, ${timing.rounds} round(s), targets ` +
        "alternate; best run per target by req/s.\n" +
        "  CPU µs/req = server process CPU (user+sys, all threads) over the window / requests answered.\n" +
        "  \"other CPU\" = machine busy CPU minus server minus one core for wrk: load from other jobs on the box."
    )
    const missingWrk = ensureWrk(ctx.print)
    if (missingWrk !== undefined) {
      ctx.print(`  ${spec.name} suite skipped: ${missingWrk}`)
      return { skipped: missingWrk }
    }
    const results = []
    const unavailable: Unavailable = new Map()
    for (const scenario of spec.scenarios) {
      ctx.print(`\n== ${scenario.title}`)
      // skipped targets are not announced; the table names them
      const outcomes = await measureRounds<Run>(
        ctx,
        spec.targets,
        timing.rounds,
        (outcome, round) => runOnce(ctx, scenario, outcome, round, timing),
        { unavailable, announceSkipped: false }
      )
      ctx.print("")
      ctx.print(table(outcomes, spec.anchor))
      const summary = spec.summary?.(scenario, (id) => {
        const outcome = outcomes.find((o) => o.spec.id === id)
        return outcome === undefined ? undefined : best(outcome)?.cpuUsPerRequest ?? undefined
      })
      if (summary !== undefined) ctx.print(summary)
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
    return { timing, ...spec.facts, scenarios: results }
  }
})

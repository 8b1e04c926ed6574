/**
 * Starting and stopping benchmark targets. A target is just a command line
 * that prints `listening on HOST:PORT` when ready, so the project's example
 * servers and the raw Node anchors are started, pinned and measured the same
 * way.
 */
import { spawn } from "node:child_process"
import { existsSync } from "node:fs"
import * as path from "node:path"
import { signal, terminate, track, waitExit } from "./children.ts"
import { processTree } from "./procStat.ts"
import { childEnv, nodeBin, pinned, repoRoot } from "./system.ts"
import type { Pinning } from "./system.ts"

export interface TargetSpec {
  /** Stable key in the JSON results. */
  readonly id: string
  /** Row label in tables. */
  readonly label: string
  readonly role: "anchor" | "ours"
  /** Command line, run from the repo root. */
  readonly argv: ReadonlyArray<string>
  /** Repo-relative file whose absence means "not implemented yet" (reported, not spawned). */
  readonly requiredFile?: string
}

export interface ExitInfo {
  readonly code: number | null
  readonly signal: string | null
  /** False when SIGTERM was not enough and SIGKILL was needed. */
  readonly graceful: boolean
  /** True when it had already exited (crashed) before it was asked to stop. */
  readonly exitedEarly: boolean
}

export interface RunningTarget {
  readonly spec: TargetSpec
  readonly pid: number
  /** The pid and its descendants at the time it became ready. */
  readonly pids: ReadonlyArray<number>
  readonly host: string
  readonly port: number
  /** True when the process is no longer running. */
  readonly exited: () => boolean
  /** Last lines of its stdout/stderr, for error reports. */
  readonly tail: () => string
  readonly stop: () => Promise<ExitInfo>
}

/** Where every target listens: loopback, on a port the OS picks (`--port 0`). */
export const BENCH_HOST = "127.0.0.1"

/** A raw Node anchor program under `bench/anchors/`, listening on {@link BENCH_HOST}. */
export const anchorTarget = (id: string, label: string, file: string, ...args: ReadonlyArray<string>): TargetSpec => ({
  id,
  label,
  role: "anchor",
  argv: [nodeBin, file, ...args, "--host", BENCH_HOST, "--port", "0"]
})

export type StartResult =
  | { readonly ok: true; readonly target: RunningTarget }
  | { readonly ok: false; readonly reason: string }

const READY = /listening on (\S+):(\d+)/
const TAIL_LINES = 20

/**
 * Spawns the target pinned to `core` and waits for its `listening on` line.
 * Never throws: failures (missing file, crash, timeout) become a reason
 * string so a suite can print "n/a" and carry on with the other targets.
 */
/** Where a target runs and how long it may take to say it listens. */
export interface StartOptions {
  readonly pinning: Pinning
  readonly core: number
  readonly timeoutMs: number
}

export const startTarget = async (
  spec: TargetSpec,
  options: StartOptions
): Promise<StartResult> => {
  if (spec.requiredFile !== undefined && !existsSync(path.resolve(repoRoot, spec.requiredFile))) {
    return { ok: false, reason: `${spec.requiredFile} not found` }
  }
  const [command, ...args] = pinned(options.pinning, options.core, spec.argv)
  if (command === undefined) return { ok: false, reason: "empty command line" }
  const child = spawn(command, args, { cwd: repoRoot, env: childEnv(), stdio: ["ignore", "pipe", "pipe"] })
  track(child)

  const tail: Array<string> = []
  const remember = (line: string) => {
    tail.push(line)
    if (tail.length > TAIL_LINES) tail.shift()
  }
  let stdoutRest = ""
  let ready: { host: string; port: number } | undefined
  let onReady: (() => void) | undefined
  // Both pipes are drained for the target's whole life: a server that logs a
  // lot must never block on a full pipe and distort the measurement.
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    const lines = (stdoutRest + chunk).split("\n")
    stdoutRest = lines.pop() ?? ""
    if (stdoutRest.length > 10_000) stdoutRest = stdoutRest.slice(-10_000)
    for (const line of lines) {
      remember(line)
      const match = ready === undefined ? READY.exec(line) : null
      if (match !== null) {
        ready = { host: match[1] as string, port: Number(match[2]) }
        onReady?.()
      }
    }
  })
  let stderrRest = ""
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    const lines = (stderrRest + chunk).split("\n")
    stderrRest = (lines.pop() ?? "").slice(-10_000)
    for (const line of lines) remember(line)
  })
  const tailText = () => [...tail, stdoutRest, stderrRest].filter((l) => l.trim() !== "").slice(-5).join(" / ")

  const outcome = await new Promise<string | undefined>((resolve) => {
    const timer = setTimeout(() => done(`not listening after ${options.timeoutMs / 1000} s`), options.timeoutMs)
    const onExit = (code: number | null, sig: string | null) =>
      done(`exited before listening (${sig ?? `code ${code}`})`)
    const onError = (error: Error) => done(`spawn failed: ${error.message}`)
    const done = (reason: string | undefined) => {
      clearTimeout(timer)
      child.off("exit", onExit)
      child.off("error", onError)
      onReady = undefined
      resolve(reason)
    }
    onReady = () => done(undefined)
    child.once("exit", onExit)
    child.once("error", onError)
    if (ready !== undefined) done(undefined)
  })

  if (outcome !== undefined || ready === undefined || child.pid === undefined) {
    await terminate(child, 1000)
    const detail = tailText()
    return { ok: false, reason: detail === "" ? (outcome ?? "failed") : `${outcome ?? "failed"}: ${detail}` }
  }

  const pid = child.pid
  const pids = processTree(pid)
  const exited = () => child.exitCode !== null || child.signalCode !== null
  const stop = async (): Promise<ExitInfo> => {
    let graceful = true
    const exitedEarly = exited()
    if (!exitedEarly) {
      signal(child, "SIGTERM")
      if (!(await waitExit(child, 3000))) {
        graceful = false
        signal(child, "SIGKILL")
        await waitExit(child, 2000)
      }
    }
    // Descendants of a wrapper (if any) must not outlive it.
    for (const other of pids) {
      if (other === pid) continue
      try {
        process.kill(other, "SIGKILL")
      } catch {
        // already gone
      }
    }
    return { code: child.exitCode, signal: child.signalCode, graceful, exitedEarly }
  }
  return { ok: true, target: { spec, pid, pids, host: ready.host, port: ready.port, exited, tail: tailText, stop } }
}

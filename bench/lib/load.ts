/**
 * Running a load generator process: pinned to the load core, bounded by a
 * hard timeout, its single JSON result line parsed from stdout.
 */
import { spawn } from "node:child_process"
import { terminate, track } from "./children.ts"
import { childEnv, nodeBin, pinned, repoRoot, withFileLimit } from "./system.ts"
import type { Pinning } from "./system.ts"

export type LoadOutcome =
  | { readonly ok: true; readonly result: Record<string, unknown> }
  | { readonly ok: false; readonly reason: string }

/**
 * Runs `node <script> ...args` and resolves with the last JSON object it
 * printed. A result with `ok: false` (the generator's own error report) is
 * turned into a failure with its `error` text.
 */
export const runLoad = async (
  script: string,
  args: ReadonlyArray<string>,
  options: {
    readonly pinning: Pinning
    readonly core: number
    readonly timeoutMs: number
    /** Open files the generator needs (see `withFileLimit`); default: the harness's own limit. */
    readonly fileLimit?: number | undefined
  }
): Promise<LoadOutcome> => {
  const argv = [nodeBin, script, ...args]
  const [command, ...rest] = pinned(
    options.pinning,
    options.core,
    options.fileLimit === undefined ? argv : withFileLimit(options.fileLimit, argv)
  )
  if (command === undefined) return { ok: false, reason: "empty command line" }
  const child = spawn(command, rest, { cwd: repoRoot, env: childEnv(), stdio: ["ignore", "pipe", "pipe"] })
  track(child)
  let stdout = ""
  let stderr = ""
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    stdout = (stdout + chunk).slice(-100_000)
  })
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    stderr = (stderr + chunk).slice(-10_000)
  })
  const exit = await new Promise<string>((resolve) => {
    const timer = setTimeout(() => {
      resolve(`timed out after ${options.timeoutMs / 1000} s`)
      void terminate(child, 500)
    }, options.timeoutMs)
    child.once("error", (error) => {
      clearTimeout(timer)
      resolve(`spawn failed: ${error.message}`)
    })
    child.once("exit", (code, sig) => {
      clearTimeout(timer)
      resolve(sig ?? `code ${code}`)
    })
  })
  const line = stdout
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .pop()
  if (line === undefined) {
    const detail = stderr.trim().split("\n").slice(-3).join(" / ")
    return { ok: false, reason: `load generator produced no result (${exit})${detail === "" ? "" : `: ${detail}`}` }
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(line)
  } catch {
    return { ok: false, reason: `unparsable load generator output: ${line.slice(0, 200)}` }
  }
  if (typeof parsed !== "object" || parsed === null) return { ok: false, reason: "load generator result is not an object" }
  const result = parsed as Record<string, unknown>
  if (result["ok"] !== true) return { ok: false, reason: String(result["error"] ?? `load generator failed (${exit})`) }
  return { ok: true, result }
}

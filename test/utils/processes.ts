/**
 * Child processes for tests: start a program with the project's Node 24 (tsx as a loader), wait for
 * its `listening on` line, collect its output, and always kill it at the end of the scope.
 */
import { assert } from "@effect/vitest"
import { Effect, Scope } from "effect"
import * as ChildProcess from "node:child_process"
import * as Path from "node:path"

/** The repository root. */
export const root = Path.resolve(import.meta.dirname, "../..")
// `node --import tsx` runs the program in this one process; the `tsx` command would run it in a
// grandchild that survives a SIGKILL of the process we hold.
const node = Path.join(root, "node_modules/.bin/node")

/** A running program and what it printed so far. */
export interface Program {
  readonly child: ChildProcess.ChildProcess
  readonly stdout: Array<string>
  readonly stderr: Array<string>
  /** Resolves with the first stdout line matching `pattern`. */
  readonly waitFor: (pattern: RegExp, timeoutMs?: number) => Promise<RegExpMatchArray>
  /** Resolves with the first stderr line matching `pattern` (log lines go there). */
  readonly waitForStderr: (pattern: RegExp, timeoutMs?: number) => Promise<RegExpMatchArray>
  /** Resolves with the exit code (or signal name). */
  readonly exited: Promise<number | string>
  /** Sends `signal` to the program, or to its whole process group (as a terminal's Ctrl-C) if started with `group`. */
  readonly signal: (signal: NodeJS.Signals) => void
}

/**
 * Starts `node --import tsx <file> ...args` from the repository root; killed when the scope closes. With `group`, the
 * program leads a process group of its own, so that a signal can reach it and every process it started at once.
 * With `fileLimit`, the program runs under that limit on open files (`ulimit -n`, soft and hard).
 */
export const start = (
  file: string,
  args: ReadonlyArray<string> = [],
  options?: {
    readonly env?: Record<string, string> | undefined
    readonly group?: boolean | undefined
    readonly fileLimit?: number | undefined
  }
): Effect.Effect<Program, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const argv = [node, "--import", "tsx", Path.join(root, file), ...args]
      // `exec` keeps one process: the pid we hold is the program's
      const [command, ...rest] = options?.fileLimit === undefined
        ? argv
        : ["bash", "-c", `ulimit -n ${options.fileLimit} && exec "$@"`, "bash", ...argv]
      const child = ChildProcess.spawn(command!, rest, {
        cwd: root,
        stdio: ["pipe", "pipe", "pipe"],
        env: { ...process.env, FORCE_COLOR: "0", ...options?.env },
        detached: options?.group === true
      })
      const signal = (name: NodeJS.Signals) => {
        if (options?.group === true && child.pid !== undefined) process.kill(-child.pid, name)
        else child.kill(name)
      }
      const stdout: Array<string> = []
      const stderr: Array<string> = []
      const waiters = new Set<() => void>()
      const lines = (sink: Array<string>) => {
        let partial = ""
        return (chunk: Buffer) => {
          const text = partial + chunk.toString("utf8")
          const parts = text.split("\n")
          partial = parts.pop() ?? ""
          sink.push(...parts)
          waiters.forEach((w) => w())
        }
      }
      child.stdout!.on("data", lines(stdout))
      child.stderr!.on("data", lines(stderr))
      const exited = new Promise<number | string>((resolve) =>
        child.once("exit", (code, signal) => {
          waiters.forEach((w) => w())
          resolve(code ?? signal ?? "unknown")
        })
      )
      const waitIn = (lines: Array<string>) => (pattern: RegExp, timeoutMs = 30_000) =>
        new Promise<RegExpMatchArray>((resolve, reject) => {
          const check = () => {
            for (const line of lines) {
              const match = line.match(pattern)
              if (match) {
                cleanup()
                return resolve(match)
              }
            }
            if (child.exitCode !== null) {
              cleanup()
              reject(new Error(`exited ${child.exitCode} before printing ${pattern}; stderr: ${stderr.join("\n")}`))
            }
          }
          const timer = setTimeout(() => {
            cleanup()
            reject(new Error(`no line matching ${pattern} within ${timeoutMs} ms; stderr: ${stderr.join("\n")}`))
          }, timeoutMs)
          const cleanup = () => {
            clearTimeout(timer)
            waiters.delete(check)
          }
          waiters.add(check)
          check()
        })
      return { child, stdout, stderr, waitFor: waitIn(stdout), waitForStderr: waitIn(stderr), exited, signal }
    }),
    (program) =>
      Effect.promise(() => {
        if (program.child.exitCode !== null || program.child.signalCode !== null) return Promise.resolve()
        program.signal("SIGKILL")
        return program.exited.then(() => undefined)
      })
  )

/** Runs a program to completion (bounded) and returns its exit code and output. */
export const run = (file: string, args: ReadonlyArray<string>, timeoutMs = 30_000) =>
  Effect.scoped(Effect.gen(function*() {
    const program = yield* start(file, args)
    const code = yield* Effect.promise(() =>
      Promise.race([program.exited, new Promise<string>((resolve) => setTimeout(() => resolve("timeout"), timeoutMs))])
    )
    return { code, stdout: program.stdout, stderr: program.stderr }
  }))

/**
 * The exit code, or `"still running"` when the program has not exited within `boundMs`: a guard against a hang (a
 * shutdown waiting out its drain timeout), not a measure of speed.
 */
export const exitWithin = (program: Program, boundMs = 5_000): Effect.Effect<number | string> =>
  Effect.promise(() => {
    let timer: ReturnType<typeof setTimeout> | undefined
    const bound = new Promise<string>((resolve) => {
      timer = setTimeout(() => resolve("still running"), boundMs)
    })
    return Promise.race([program.exited, bound]).finally(() => clearTimeout(timer))
  })

/** `listening on 127.0.0.1:PORT` -> PORT */
export const listeningPort = /^listening on 127\.0\.0\.1:(\d+)$/

/**
 * Runs a program that must fail: a non-zero exit and exactly one non-blank stderr line, which includes each of
 * `expected`. Returns that line for further checks.
 */
export const expectOneLineError = (
  file: string,
  args: ReadonlyArray<string>,
  expected: string | ReadonlyArray<string> = []
): Effect.Effect<string> =>
  Effect.gen(function*() {
    const result = yield* run(file, args)
    assert.notStrictEqual(result.code, 0)
    const lines = result.stderr.filter((line) => line.trim() !== "")
    assert.strictEqual(lines.length, 1, lines.join("\n"))
    for (const part of typeof expected === "string" ? [expected] : expected) assert.include(lines[0], part)
    return lines[0]!
  })

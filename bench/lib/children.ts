/**
 * Registry of every child process the harness starts, so a single cleanup
 * path can end them on normal exit, errors, Ctrl-C or SIGTERM.
 */
import type { ChildProcess } from "node:child_process"

const live = new Set<ChildProcess>()

/** Tracks a child until it exits. */
export const track = (child: ChildProcess): void => {
  live.add(child)
  child.once("exit", () => live.delete(child))
}

const hasExited = (child: ChildProcess): boolean => child.exitCode !== null || child.signalCode !== null

/** Resolves when the child has exited, or after `timeoutMs` (true = exited). */
export const waitExit = (child: ChildProcess, timeoutMs: number): Promise<boolean> => {
  if (hasExited(child)) return Promise.resolve(true)
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off("exit", onExit)
      resolve(false)
    }, timeoutMs)
    const onExit = () => {
      clearTimeout(timer)
      resolve(true)
    }
    child.once("exit", onExit)
  })
}

/** Sends a signal to the child by its pid, ignoring "already gone". */
export const signal = (child: ChildProcess, sig: NodeJS.Signals): void => {
  if (hasExited(child) || child.pid === undefined) return
  try {
    process.kill(child.pid, sig)
  } catch {
    // ESRCH: it exited between the check and the kill
  }
}

/**
 * Ends a child politely (SIGTERM) and forcibly (SIGKILL) if it has not exited
 * within `graceMs`, so a wedged server can never outlive the harness.
 */
export const terminate = async (child: ChildProcess, graceMs = 3000): Promise<void> => {
  signal(child, "SIGTERM")
  if (await waitExit(child, graceMs)) return
  signal(child, "SIGKILL")
  await waitExit(child, 2000)
}

/** Ends every child still alive. */
export const terminateAll = async (): Promise<void> => {
  await Promise.all([...live].map((child) => terminate(child, 2000)))
}

/** Synchronous last resort for `process.on("exit")`, where no awaiting is possible. */
export const killAllNow = (): void => {
  for (const child of live) signal(child, "SIGKILL")
}

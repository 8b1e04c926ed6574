/**
 * Log lines from fork children and worker threads: a logger that turns each line into a
 * `LogRecord` for the parent, which re-logs it annotated with the child's pid or the thread's id,
 * so the server keeps one log. How a record travels (IPC, `parentPort`) is the caller's.
 */
import { Cause, Logger, References } from "effect"
import type * as Ipc from "./ipcMessages.ts"

/** Any logged value as text: strings as they are, causes pretty-printed, the rest as JSON. */
export const safeString = (u: unknown): string => {
  if (typeof u === "string") return u
  if (Cause.isCause(u)) return Cause.pretty(u)
  try {
    return u instanceof Error ? String(u) : JSON.stringify(u) ?? String(u)
  } catch {
    return String(u)
  }
}

/** A logger that hands every line, with its annotations and cause, to `send`. */
export const make = (send: (record: Ipc.LogRecord) => void): Logger.Logger<unknown, void> =>
  Logger.make<unknown, void>((options) => {
    if (options.logLevel === "All" || options.logLevel === "None") return
    const annotations: Record<string, string> = {}
    for (const [key, value] of Object.entries(options.fiber.getRef(References.CurrentLogAnnotations))) {
      annotations[key] = safeString(value)
    }
    const parts = Array.isArray(options.message) ? options.message : [options.message]
    const cause = options.cause.reasons.length > 0 ? `\n${Cause.pretty(options.cause)}` : ""
    send({ _tag: "Log", level: options.logLevel, message: parts.map(safeString).join(" ") + cause, annotations })
  })

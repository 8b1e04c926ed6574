/**
 * Running a server program as a process: Ctrl-C or SIGTERM shuts it down gracefully and exits 0,
 * a failure prints one line (`error: ...`) to stderr and exits 1, and log lines go to stderr so
 * that standard output stays free for the program's own output.
 *
 * @since 0.1.0
 */
// Subpath import: the package index loads every Node module, ~20 MB of heap for nothing here.
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Effect, Exit, Layer, Logger, Option } from "effect"

/**
 * One readable line for any failure: the error's message, prefixed by its tag when that helps.
 * @category formatting
 */
export const formatFailure = (cause: Cause.Cause<unknown>): string => {
  const error = Option.getOrUndefined(Cause.findErrorOption(cause)) ?? Cause.squash(cause)
  const message = typeof error === "object" && error !== null && "message" in error && typeof error.message === "string"
    ? error.message
    : String(error)
  return (message.split("\n")[0] ?? "").trim() || "unknown failure"
}

/**
 * Logs to stderr in logfmt, leaving stdout to the program.
 * @category layers
 */
export const layerLogger: Layer.Layer<never> = Logger.layer([Logger.withConsoleError(Logger.formatLogFmt)])

/**
 * Runs `program` as the process's main fiber. Signals interrupt it (its scopes close, servers
 * drain) and the process exits 0; a failure exits 1 after one line on stderr.
 * @category running
 */
export const runMain = <A, E>(program: Effect.Effect<A, E>): void =>
  NodeRuntime.runMain(
    program.pipe(
      Effect.tapCause((cause) =>
        Cause.hasInterruptsOnly(cause) ? Effect.void : Effect.sync(() => process.stderr.write(`error: ${formatFailure(cause)}\n`))
      ),
      Effect.provide(layerLogger)
    ),
    {
      disableErrorReporting: true,
      teardown: (exit, onExit) => onExit(Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause) ? 0 : 1)
    }
  )

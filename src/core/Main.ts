/**
 * Running a server program as a process: Ctrl-C or SIGTERM shuts it down gracefully and exits 0,
 * a second Ctrl-C (or SIGTERM) during that shutdown exits at once with 130 (143 for SIGTERM), a
 * failure prints one line (`error: ...`) to stderr and exits 1, and log lines go to stderr so that
 * standard output stays free for the program's own output.
 *
 * @since 0.1.0
 */
// Subpath import: the package index loads every Node module, ~20 MB of heap for nothing here.
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Console, Duration, Effect, Exit, Layer, Logger, Option } from "effect"
import { NetAddress } from "effect/net"
import * as ProcessExit from "./internal/processExit.ts"

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
 * Prints `listening on HOST:PORT` (or `listening on PATH`) on stdout: the line the example
 * programs print once bound, and that scripts and tests wait for.
 * @category output
 */
export const printListening = (address: NetAddress.SocketAddress): Effect.Effect<void> =>
  Console.log(`listening on ${NetAddress.formatSocketAddress(address)}`)

/**
 * How long the process may stay up after the program has ended, for connections that are still
 * closing to finish: 1 second.
 * @category constants
 */
export const defaultExitGrace: Duration.Input = "1 second"

/** The exit code of a process stopped by a signal, as shells report it: 128 + the signal's number. */
const signalExitCode = { SIGINT: 130, SIGTERM: 143 } as const

/**
 * Runs `program` as the process's main fiber. The first SIGINT or SIGTERM interrupts it (its
 * scopes close, servers drain) and the process exits 0; a second one while that runs exits at
 * once (130, or 143 for SIGTERM). A failure exits 1 after one line on stderr.
 *
 * The process ends when its event loop is empty, at most `defaultExitGrace` after the program:
 * exiting at once would reset connections that are still closing gracefully, and a reset can
 * destroy bytes the peer has not read yet.
 * @category running
 */
export const runMain = <A, E>(program: Effect.Effect<A, E>): void => {
  let signalled = false
  let ended = false
  const onSignal = (signal: keyof typeof signalExitCode) => {
    // NodeRuntime interrupts the program on the first signal; this is for the one after it.
    if (signalled || ended) process.exit(signalExitCode[signal])
    signalled = true
    process.stderr.write(`stopping gracefully (${signal === "SIGINT" ? "Ctrl-C" : signal} again to stop at once)\n`)
  }
  process.on("SIGINT", onSignal)
  process.on("SIGTERM", onSignal)
  NodeRuntime.runMain(
    program.pipe(
      Effect.tapCause((cause) =>
        Cause.hasInterruptsOnly(cause) ? Effect.void : Effect.sync(() => process.stderr.write(`error: ${formatFailure(cause)}\n`))
      ),
      Effect.provide(layerLogger)
    ),
    {
      disableErrorReporting: true,
      teardown: (exit) => {
        ended = true
        const code = Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause) ? 0 : 1
        ProcessExit.exitWhenIdle(code, Duration.toMillis(Duration.fromInputUnsafe(defaultExitGrace)))
      }
    }
  )
}

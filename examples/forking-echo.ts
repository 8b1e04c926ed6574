/**
 * A forking echo server (Python's ForkingMixIn): a pool of two child processes; each accepted
 * connection's socket is handed to a child, which answers with its own PID. Two clients send
 * `Hello echo server!` and print the reply, then the server shuts down and the program exits 0.
 *
 *   npx tsx examples/forking-echo.ts
 *
 * The handler is exported with a reference so that the children can load it; the program itself
 * runs only when this file is the main script (a child imports this module to find the handler).
 */
import { Effect, Stream } from "effect"
import * as ForkStrategy from "../src/core/ForkStrategy.ts"
import * as Handler from "../src/core/Handler.ts"
import * as Tour from "./internal/Tour.ts"

/** Reads the whole request, answers `PID <pid> echoes: <request>`, then closes. */
export const pidEcho = Handler.stream(
  (connection) =>
    Effect.gen(function*() {
      const request = yield* connection.bytes.pipe(Stream.decodeText(), Stream.mkString)
      yield* connection.write(`PID ${process.pid} echoes: ${request}`)
      yield* connection.end
    }),
  { module: import.meta.url, export: "pidEcho" }
)

Tour.runIfMain(import.meta.url, {
  name: "forking-echo",
  description: "A tour of the fork strategy: two clients, each reply names the child process that served it.",
  banner: (port) => `forking echo server on 127.0.0.1:${port} (parent PID ${process.pid})`,
  strategy: ForkStrategy.layer({ mode: "pool", size: 2 }),
  handler: pidEcho,
  messages: ["Hello echo server!", "Hello echo server!"]
})

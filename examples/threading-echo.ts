/**
 * A threading echo server (Python's ThreadingMixIn, with real parallelism): a pool of worker
 * threads runs the handler while the main thread owns the sockets. Three clients send
 * `Hello from Client N`; each reply names the worker thread that served it. Then the server shuts
 * down (every worker is terminated) and the program exits 0.
 *
 *   npx tsx examples/threading-echo.ts
 *
 * The handler is exported with a reference so that the workers can load it; the program itself
 * runs only in the main thread of the main script.
 */
import { Effect, Stream } from "effect"
import { threadId } from "node:worker_threads"
import * as Handler from "../src/core/Handler.ts"
import * as WorkerStrategy from "../src/core/WorkerStrategy.ts"
import * as Tour from "./internal/Tour.ts"

/** Reads the whole request, answers `worker thread <id>: <request>`, then closes. */
export const threadEcho = Handler.stream(
  (connection) =>
    Effect.gen(function*() {
      const request = yield* connection.bytes.pipe(Stream.decodeText(), Stream.mkString)
      yield* connection.write(`worker thread ${threadId}: ${request}`)
      yield* connection.end
    }),
  { module: import.meta.url, export: "threadEcho" }
)

Tour.runIfMain(import.meta.url, {
  name: "threading-echo",
  description: "A tour of the worker strategy: three clients, each reply names the worker thread that served it.",
  banner: (port) => `threading echo server on 127.0.0.1:${port}`,
  strategy: WorkerStrategy.layer({ size: 3 }),
  handler: threadEcho,
  messages: [1, 2, 3].map((n) => `Hello from Client ${n}`)
})

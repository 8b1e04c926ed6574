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
import { Console, Context, Effect, Layer, Stream } from "effect"
import * as Net from "node:net"
import * as Url from "node:url"
import { isMainThread, threadId } from "node:worker_threads"
import * as Handler from "../src/core/Handler.ts"
import * as Main from "../src/core/Main.ts"
import * as Server from "../src/core/Server.ts"
import * as StreamListener from "../src/core/StreamListener.ts"
import * as Transport from "../src/core/Transport.ts"
import * as WorkerStrategy from "../src/core/WorkerStrategy.ts"

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

const request = (port: number, message: string) =>
  Effect.promise(() =>
    new Promise<string>((resolve, reject) => {
      const socket = Net.connect({ host: "127.0.0.1", port })
      const chunks: Array<Buffer> = []
      socket.on("data", (chunk: Buffer) => chunks.push(chunk))
      socket.on("end", () => resolve(Buffer.concat(chunks).toString()))
      socket.on("error", reject)
      socket.end(message)
    })
  )

const program = Effect.gen(function*() {
  const context = yield* Layer.build(
    Server.layer().pipe(Layer.provide([
      StreamListener.layer(Transport.tcp({ host: "127.0.0.1", port: 0 })),
      WorkerStrategy.layer({ size: 3 })
    ]))
  )
  const server = Context.get(context, Server.Server)
  const port = (server.address as { port: number }).port
  yield* Console.log(`threading echo server on 127.0.0.1:${port}`)
  yield* Effect.forkScoped(server.serve(threadEcho), { startImmediately: true })
  const replies = yield* Effect.forEach([1, 2, 3], (n) => request(port, `Hello from Client ${n}`), {
    concurrency: "unbounded"
  })
  for (const [i, reply] of replies.entries()) yield* Console.log(`Client ${i + 1} received: ${reply}`)
  yield* server.shutdown
  yield* Console.log("server stopped")
}).pipe(Effect.scoped)

if (isMainThread && process.argv[1] === Url.fileURLToPath(import.meta.url)) Main.runMain(program)

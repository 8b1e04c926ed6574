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
import { Console, Context, Effect, Layer, Stream } from "effect"
import * as Net from "node:net"
import * as Url from "node:url"
import { isMainThread } from "node:worker_threads"
import * as ForkStrategy from "../src/core/ForkStrategy.ts"
import * as Handler from "../src/core/Handler.ts"
import * as Main from "../src/core/Main.ts"
import * as Server from "../src/core/Server.ts"
import * as StreamListener from "../src/core/StreamListener.ts"
import * as Transport from "../src/core/Transport.ts"

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
      ForkStrategy.layer({ mode: "pool", size: 2 })
    ]))
  )
  const server = Context.get(context, Server.Server)
  const port = (server.address as { port: number }).port
  yield* Console.log(`forking echo server on 127.0.0.1:${port} (parent PID ${process.pid})`)
  yield* Effect.forkScoped(server.serve(pidEcho), { startImmediately: true })
  const replies = yield* Effect.forEach([1, 2], () => request(port, "Hello echo server!"), { concurrency: "unbounded" })
  for (const [i, reply] of replies.entries()) yield* Console.log(`Client ${i + 1} received: ${reply}`)
  yield* server.shutdown
  yield* Console.log("server stopped")
}).pipe(Effect.scoped)

if (isMainThread && process.argv[1] === Url.fileURLToPath(import.meta.url)) Main.runMain(program)

/**
 * The tour the forking and threading echo examples share: start a TCP server on a free port with
 * a given strategy, let N clients each send one request (concurrently) and print their replies,
 * then shut the server down gracefully. The examples keep only what differs: the strategy, the
 * handler (which must carry a reference) and the messages.
 */
import { Console, Effect, Layer } from "effect"
import * as Net from "node:net"
import * as Url from "node:url"
import { isMainThread } from "node:worker_threads"
import type * as Handler from "../../src/core/Handler.ts"
import * as Main from "../../src/core/Main.ts"
import * as Server from "../../src/core/Server.ts"
import type * as Strategy from "../../src/core/Strategy.ts"
import * as StreamListener from "../../src/core/StreamListener.ts"
import * as Transport from "../../src/core/Transport.ts"
import * as Cli from "./Cli.ts"

/** What a tour runs. */
export interface Options<E> {
  /** The program's name and what it shows, for `--help`. */
  readonly name: string
  readonly description: string
  /** The first line printed, given the port. */
  readonly banner: (port: number) => string
  readonly strategy: Layer.Layer<Strategy.Strategy>
  readonly handler: Handler.StreamHandler<E>
  /** One client per message, all at once. */
  readonly messages: ReadonlyArray<string>
}

/** One client: connect, send `message`, half-close, read the whole reply. */
export const request = (port: number, message: string): Effect.Effect<string> =>
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

/**
 * Serves on a free port while the clients run, prints `Client N received: ...`, then stops the
 * server as Ctrl-C would: gracefully.
 */
export const run = <E>(options: Options<E>) => {
  const ServerLive = Server.layer().pipe(Layer.provide([
    StreamListener.layer(Transport.tcp({ host: "127.0.0.1", port: 0 })),
    options.strategy
  ]))
  return Effect.gen(function*() {
    const { address } = yield* Server.Server
    const port = address._tag === "UnixPathAddress" ? 0 : address.port
    const clients = Effect.gen(function*() {
      const replies = yield* Effect.forEach(options.messages, (message) => request(port, message), {
        concurrency: "unbounded"
      })
      for (const [i, reply] of replies.entries()) yield* Console.log(`Client ${i + 1} received: ${reply}`)
    })
    yield* Server.serve(options.handler, { onListening: () => Console.log(options.banner(port)) }).pipe(
      Effect.raceFirst(clients)
    )
    yield* Console.log("server stopped")
  }).pipe(Effect.provide(ServerLive))
}

/**
 * Runs the tour only in the main thread of the main script: fork children and worker threads
 * import the example's module to find its handler, and must not start a tour of their own.
 */
export const runIfMain = <E>(moduleUrl: string, options: Options<E>): void => {
  if (isMainThread && process.argv[1] === Url.fileURLToPath(moduleUrl)) {
    Main.runMain(Cli.run({ name: options.name, description: options.description }, {}, () => run(options)))
  }
}

/**
 * The chat room, both sides. `--name server` runs the server; any other name joins as a client.
 *
 *   npx tsx examples/chat.ts --name server --port 9090            # stops on Ctrl-C or a line on its stdin
 *   npx tsx examples/chat.ts --name server --hub redis --redis-url redis://127.0.0.1:6379
 *   npx tsx examples/chat.ts --name alice --port 9090             # prompt `[alice@127.0.0.1]> `, a line = a say
 *
 * The server prints `listening on HOST:PORT` (or the path) once ready. The client prints what arrives as it
 * arrives (`#[bob@127.0.0.1]>> hi`, `(Connected: bob@127.0.0.1, 2 online)`, `(Now hung up: ...)`) and says so
 * when the server goes away.
 */
import { Console, Context, Effect, Layer, Queue, Stream } from "effect"
import type { Scope } from "effect"
import { NetAddress } from "effect/net"
import * as Readline from "node:readline"
import * as Main from "../src/core/Main.ts"
import * as Server from "../src/core/Server.ts"
import * as Strategy from "../src/core/Strategy.ts"
import * as StreamListener from "../src/core/StreamListener.ts"
import * as Transport from "../src/core/Transport.ts"
import type * as ChatMessage from "../src/protocol/ChatMessage.ts"
import * as ChatClient from "../src/servers/chat/ChatClient.ts"
import * as ChatHub from "../src/servers/chat/ChatHub.ts"
import * as ChatServer from "../src/servers/chat/ChatServer.ts"
import * as Args from "./internal/Args.ts"

const flags = {
  name: Args.optionalString,
  host: Args.string(Transport.defaultHost),
  port: Args.int({ min: 0, max: 65535, default: 9090 }),
  path: Args.optionalString,
  hub: Args.choice(["memory", "redis"], "memory"),
  "redis-url": Args.string("redis://127.0.0.1:6379")
}

// Lines typed on stdin; the stream ends when stdin closes.
const stdinLines: Stream.Stream<string> = Stream.callback<string>((queue) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const lines = Readline.createInterface({ input: process.stdin, terminal: false })
      lines.on("line", (line) => Queue.offerUnsafe(queue, line))
      lines.on("close", () => Queue.endUnsafe(queue))
      return lines
    }),
    (lines) =>
      Effect.sync(() => {
        lines.close()
        process.stdin.destroy()
      })
  )
)

const runServer = (args: { readonly host: string; readonly port: number; readonly path: string | undefined; readonly hub: "memory" | "redis"; readonly redisUrl: string }) =>
  Effect.gen(function*() {
    const transport = args.path !== undefined ? Transport.unix({ path: args.path }) : Transport.tcp({ host: args.host, port: args.port })
    const serverContext = yield* Layer.build(
      Server.layer().pipe(Layer.provide([StreamListener.layer(transport), Strategy.layerFiber()]))
    )
    const server = Context.get(serverContext, Server.Server)
    const hub = args.hub === "redis" ? ChatHub.layerRedis({ url: args.redisUrl }) : ChatHub.layerMemory
    const roomContext = yield* Layer.build(ChatServer.layer().pipe(Layer.provide(hub)))
    yield* Effect.forkScoped(server.serve(ChatServer.handler).pipe(Effect.provideContext(roomContext)), {
      startImmediately: true
    })
    // On a signal too, the graceful shutdown comes first: every session sees it and tells its client `shutdown`.
    yield* Effect.addFinalizer(() => server.shutdown)
    yield* Console.log(`listening on ${NetAddress.formatSocketAddress(server.address)}`)
    // A line on stdin stops the server; a closed stdin (e.g. run in the background) does not.
    const line = yield* stdinLines.pipe(Stream.runHead)
    if (line._tag === "None") yield* Effect.never
    yield* server.shutdown
  })

const render = (message: ChatMessage.ServerMessage): string => {
  switch (message.type) {
    case "welcome":
      return `(Welcome ${message.name}, ${message.count} online)`
    case "joined":
      return `(Connected: ${message.client}, ${message.count} online)`
    case "left":
      return `(Now hung up: ${message.client})`
    case "message":
      return `#[${message.from}]>> ${message.text}`
    case "error":
      return `(Error from server: ${message.code}${message.detail === undefined ? "" : `: ${message.detail}`})`
    case "shutdown":
      return "(The server is shutting down)"
  }
}

const runClient = (args: { readonly name: string; readonly host: string; readonly port: number; readonly path: string | undefined }) =>
  Effect.gen(function*() {
    const client = yield* ChatClient.connect(
      args.path !== undefined ? { path: args.path, name: args.name } : { host: args.host, port: args.port, name: args.name }
    )
    const prompt = `[${client.identity}]> `
    const tty = process.stdout.isTTY === true
    let promptShown = false
    // On a terminal the user's Enter ended the prompt's line; in a pipe nothing is echoed and the prompt still stands.
    const showPrompt = Effect.sync(() => {
      if (promptShown && !tty) return
      process.stdout.write(prompt)
      promptShown = true
    })
    // An incoming line replaces the prompt on a terminal; in a pipe it goes on a line of its own.
    const print = (text: string) =>
      Effect.sync(() => {
        if (promptShown) process.stdout.write(tty ? "\r\x1b[K" : "\n")
        process.stdout.write(`${text}\n`)
        process.stdout.write(prompt)
        promptShown = true
      })
    yield* Console.log(render({ type: "welcome", name: client.identity, address: client.address, count: client.count }))
    yield* showPrompt
    const incoming = client.messages.pipe(
      Stream.runForEach((message) => print(render(message))),
      Effect.andThen(print("(Disconnected: the server closed the connection)"))
    )
    const typing = stdinLines.pipe(
      Stream.runForEach((line) =>
        line.length === 0
          ? showPrompt
          : client.say(line).pipe(
            Effect.andThen(showPrompt),
            Effect.catch((error) =>
              error.reason === "InvalidInput" ? print(`(Not sent: ${error.message})`) : Effect.fail(error)
            )
          )
      ),
      Effect.andThen(client.close)
    )
    // Whichever ends first ends the program: the server going away, or stdin closing.
    yield* Effect.raceFirst(incoming, typing)
    if (promptShown) process.stdout.write("\n")
  })

const program: Effect.Effect<void, unknown, Scope.Scope> = Effect.gen(function*() {
  const args = yield* Args.parse(flags)
  if (args.name === undefined) {
    return yield* new Args.ArgumentError({ message: "--name: required (`server` runs the server, any other name joins)" })
  }
  if (args.name === "server") {
    return yield* runServer({ host: args.host, port: args.port, path: args.path, hub: args.hub, redisUrl: args["redis-url"] })
  }
  return yield* runClient({ name: args.name, host: args.host, port: args.port, path: args.path })
})

Main.runMain(Effect.scoped(program))

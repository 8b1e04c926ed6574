/**
 * The chat room, both sides. `--name server` runs the server; any other name joins as a client. `--help` lists
 * the flags.
 *
 *   npx tsx examples/chat.ts --name server --port 9090            # stops on Ctrl-C, SIGTERM or a line on its stdin
 *   npx tsx examples/chat.ts --name server --hub redis --redis-url redis://127.0.0.1:6379
 *   npx tsx examples/chat.ts --name alice --port 9090             # prompt `[alice@127.0.0.1]> `, a line = a say
 *   npx tsx examples/chat.ts --name server --tls-cert cert.pem --tls-key key.pem   # TLS; SIGHUP reloads them
 *   npx tsx examples/chat.ts --name alice --host localhost --tls-ca ca.pem          # a client that speaks TLS
 *
 * The server prints `listening on HOST:PORT` (or the path) once ready. The client prints what arrives as it
 * arrives (`#[bob@127.0.0.1]>> hi`, `(Connected: bob@127.0.0.1, 2 online)`, `(Now hung up: ...)`) and says so
 * when the server goes away.
 */
import { Console, Effect, Layer, Queue, Stream } from "effect"
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
import * as Cli from "./internal/Cli.ts"
import * as TlsFlags from "./internal/TlsFlags.ts"

const flags = {
  name: Cli.requiredString("name", { description: "`server` runs the server, any other name joins as a client" }),
  host: Cli.string("host", { default: Transport.defaultHost, description: "the server's address" }),
  port: Cli.int("port", { min: 0, max: 65535, default: 9090, description: "the server's port; 0 picks a free one" }),
  path: Cli.optionalString("path", { description: "a Unix socket path instead of host and port" }),
  hub: Cli.choice("hub", ["memory", "redis"], {
    default: "memory",
    description: "the server's room: in this process, or shared over Redis"
  }),
  redisUrl: Cli.string("redis-url", { default: "redis://127.0.0.1:6379", description: "Redis for --hub redis" }),
  ...TlsFlags.flags,
  tlsCa: Cli.optionalString("tls-ca", {
    description: "a client connects over TLS, trusting this CA certificate (PEM file) for the server's"
  })
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

const runServer = (args: {
  readonly host: string
  readonly port: number
  readonly path: string | undefined
  readonly hub: "memory" | "redis"
  readonly redisUrl: string
  readonly tlsCert: string | undefined
  readonly tlsKey: string | undefined
}) => Effect.gen(function*() {
  const transport = args.path !== undefined
    ? Transport.unix({ path: args.path })
    : Transport.tcp({ host: args.host, port: args.port })
  const tls = yield* TlsFlags.serverTls(args)
  const ServerLive = Server.layer().pipe(Layer.provide([StreamListener.layer(transport, { tls }), Strategy.layerFiber()]))
  const hub = args.hub === "redis" ? ChatHub.layerRedis({ url: args.redisUrl }) : ChatHub.layerMemory
  const RoomLive = ChatServer.layer().pipe(Layer.provide(hub))
  // A line on stdin stops the server as a signal does; a closed stdin (e.g. run in the background) does not.
  const lineOnStdin = Effect.flatMap(
    Stream.runHead(stdinLines),
    (line) => line._tag === "None" ? Effect.never : Effect.void
  )
  // Every session sees the graceful shutdown (`Server.Shutdown`) and tells its client `shutdown`.
  return yield* Server.serve(ChatServer.handler, { onListening: Main.printListening }).pipe(
    Effect.raceFirst(lineOnStdin),
    Effect.provide([ServerLive, RoomLive])
  )
}).pipe(Effect.scoped)

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

const runClient = (args: {
  readonly name: string
  readonly host: string
  readonly port: number
  readonly path: string | undefined
  readonly tlsCa: string | undefined
}) =>
  Effect.gen(function*() {
    const tls = args.tlsCa === undefined ? undefined : { ca: { path: args.tlsCa } }
    const client = yield* ChatClient.connect(
      args.path !== undefined
        ? { path: args.path, name: args.name, tls }
        : { host: args.host, port: args.port, name: args.name, tls }
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

const chat = Cli.run(
  { name: "chat", description: "The chat room: `--name server` runs the server, any other name joins it." },
  flags,
  (args) =>
    Effect.gen(function*() {
      if (args.name === "server") return yield* runServer(args)
      return yield* Effect.scoped(runClient(args))
    })
)

Main.runMain(chat)

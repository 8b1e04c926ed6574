/**
 * `npm start`: the demo servers on their embedded defaults, all in one process.
 *
 *   echo over TCP          127.0.0.1:7007
 *   echo over UDP          127.0.0.1:7007
 *   echo over a Unix path  <tmpdir>/netkit-echo.sock
 *   chat (in-memory hub)   127.0.0.1:9090   join: npx tsx examples/chat.ts --name alice --port 9090
 *   web (HTTP/1.1)         127.0.0.1:8080   try: curl http://127.0.0.1:8080/
 *
 * Each prints where it listens. Ctrl-C or SIGTERM stops every server gracefully (exit 0): idle
 * connections close at once, work under way finishes first. `--ephemeral` binds free ports and a
 * temporary Unix path instead, so tests can run the demo next to anything else; `--help` says so.
 */
import { Console, Effect, Layer } from "effect"
import { NetAddress } from "effect/net"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as DatagramListener from "../src/core/DatagramListener.ts"
import type * as Handler from "../src/core/Handler.ts"
import type * as Listener from "../src/core/Listener.ts"
import * as Main from "../src/core/Main.ts"
import * as Server from "../src/core/Server.ts"
import * as Strategy from "../src/core/Strategy.ts"
import * as StreamListener from "../src/core/StreamListener.ts"
import * as ChatServer from "../src/servers/chat/ChatServer.ts"
import * as EchoServer from "../src/servers/echo/EchoServer.ts"
import * as WebServer from "../src/servers/http/WebServer.ts"
import * as Cli from "./internal/Cli.ts"

const flags = {
  ephemeral: Cli.flag("ephemeral", { description: "free ports and a temporary Unix path instead of the defaults" })
}

const portOf = (address: NetAddress.SocketAddress) => address._tag === "UnixPathAddress" ? 0 : address.port

/**
 * One server of the demo: `handler` on `listener` under the fiber strategy, run as every example
 * runs a server; it announces itself with `title` (and `hint`, a line on how to use it, when given).
 */
const demoServer = <E, R>(
  title: string,
  listener: Layer.Layer<Listener.Listener, Listener.BindError>,
  handler: Handler.Handler<E, R>,
  hint?: (address: NetAddress.SocketAddress) => string
) =>
  Server.serve(handler, {
    onListening: (address) =>
      Effect.andThen(
        Console.log(`${title.padEnd(24)} listening on ${NetAddress.formatSocketAddress(address)}`),
        hint === undefined ? Effect.void : Console.log(`${"".padEnd(24)} ${hint(address)}`)
      )
  }).pipe(Effect.provide(Server.layer().pipe(Layer.provide([listener, Strategy.layerFiber()]))))

const demo = Cli.run(
  { name: "demo", description: "The demo servers (echo over TCP, UDP and a Unix path, chat, web) in one process." },
  flags,
  (args) => {
    const ports = args.ephemeral ? { echo: 0, web: 0, chat: 0 } : { echo: 7007, web: 8080, chat: 9090 }
    const unixPath = args.ephemeral
      ? Path.join(Fs.mkdtempSync(Path.join(Os.tmpdir(), "netkit-demo-")), "echo.sock")
      : Path.join(Os.tmpdir(), "netkit-echo.sock")
    const servers = [
      demoServer("echo (tcp)", StreamListener.layerTcp({ port: ports.echo }), EchoServer.streamHandler),
      demoServer("echo (udp)", DatagramListener.layerUdp({ port: ports.echo }), EchoServer.datagramHandler),
      demoServer("echo (unix)", StreamListener.layerUnix({ path: unixPath }), EchoServer.streamHandler),
      demoServer(
        "web (http)",
        StreamListener.layerTcp({ port: ports.web }),
        WebServer.webServer,
        (address) => `try: curl http://127.0.0.1:${portOf(address)}/`
      ),
      demoServer(
        "chat (tcp, memory hub)",
        StreamListener.layerTcp({ port: ports.chat }),
        ChatServer.handler,
        (address) => `join the chat: npx tsx examples/chat.ts --name alice --port ${portOf(address)}`
      ).pipe(Effect.provide(ChatServer.layerMemory()))
    ]
    // One failing (a busy port, say) stops the others, gracefully, and the program with it.
    return Effect.all(servers, { concurrency: "unbounded", discard: true }).pipe(
      Effect.ensuring(Console.log("all servers stopped"))
    )
  }
)

Main.runMain(demo)

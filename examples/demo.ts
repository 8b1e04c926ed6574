/**
 * `npm start`: the demo servers on their embedded defaults, all in one process.
 *
 *   echo over TCP          127.0.0.1:7007
 *   echo over UDP          127.0.0.1:7007
 *   echo over a Unix path  <tmpdir>/netkit-echo.sock
 *   chat (in-memory hub)   127.0.0.1:9090   join: npx tsx examples/chat.ts --name alice --port 9090
 *   web (HTTP/1.1)         127.0.0.1:8080   try: curl http://127.0.0.1:8080/
 *
 * Each prints where it listens; Ctrl-C stops every server gracefully (in-flight work drains).
 * `--ephemeral` binds free ports and a temporary Unix path instead, so tests can run the demo
 * next to anything else.
 */
import { Console, Effect, Layer } from "effect"
import { NetAddress } from "effect/net"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as DatagramListener from "../src/core/DatagramListener.ts"
import * as Handler from "../src/core/Handler.ts"
import type * as Listener from "../src/core/Listener.ts"
import * as Main from "../src/core/Main.ts"
import * as Server from "../src/core/Server.ts"
import * as Strategy from "../src/core/Strategy.ts"
import * as StreamListener from "../src/core/StreamListener.ts"
import * as ChatHub from "../src/servers/chat/ChatHub.ts"
import * as ChatServer from "../src/servers/chat/ChatServer.ts"
import * as EchoServer from "../src/servers/echo/EchoServer.ts"
import * as WebServer from "../src/servers/http/WebServer.ts"

const ephemeral = process.argv.includes("--ephemeral")
const ports = ephemeral ? { echo: 0, web: 0, chat: 0 } : { echo: 7007, web: 8080, chat: 9090 }
const unixPath = ephemeral
  ? Path.join(Fs.mkdtempSync(Path.join(Os.tmpdir(), "netkit-demo-")), "echo.sock")
  : Path.join(Os.tmpdir(), "netkit-echo.sock")

/**
 * One server: a listener, the fiber strategy and a handler, announcing its address once bound
 * (and `hint`, a line on how to use it, when given).
 */
const demoServer = <E>(
  title: string,
  listener: Layer.Layer<Listener.Listener, Listener.BindError>,
  handler: Handler.Handler<E>,
  hint?: (address: NetAddress.SocketAddress) => string
) =>
  Layer.effectDiscard(Effect.gen(function*() {
    const server = yield* Server.Server
    yield* Console.log(`${title.padEnd(24)} listening on ${NetAddress.formatSocketAddress(server.address)}`)
    if (hint) yield* Console.log(`${"".padEnd(24)} ${hint(server.address)}`)
    yield* Effect.forkScoped(server.serve(handler), { startImmediately: true })
  })).pipe(Layer.provide(Server.layer().pipe(Layer.provide([listener, Strategy.layerFiber()]))))

const portOf = (address: NetAddress.SocketAddress) => address._tag === "UnixPathAddress" ? 0 : address.port

const Demo = Layer.mergeAll(
  demoServer("echo (tcp)", StreamListener.layerTcp({ port: ports.echo }), EchoServer.streamHandler),
  demoServer("echo (udp)", DatagramListener.layerUdp({ port: ports.echo }), EchoServer.datagramHandler),
  demoServer("echo (unix)", StreamListener.layerUnix({ path: unixPath }), EchoServer.streamHandler),
  demoServer(
    "web (http)",
    StreamListener.layerTcp({ port: ports.web }),
    WebServer.webServer,
    (address) => `try: curl http://127.0.0.1:${portOf(address)}/`
  ),
  // The room lives in this process, so its handler is bound to it here; the server's shutdown tells clients goodbye.
  Layer.unwrap(Effect.map(ChatServer.make(), (room) =>
    demoServer(
      "chat (tcp, memory hub)",
      StreamListener.layerTcp({ port: ports.chat }),
      Handler.stream(room.handle, { name: "chat" }),
      (address) => `join the chat: npx tsx examples/chat.ts --name alice --port ${portOf(address)}`
    ))).pipe(Layer.provide(ChatHub.layerMemory))
)

Main.runMain(
  Layer.launch(Demo).pipe(
    Effect.ensuring(Console.log("all servers stopped"))
  )
)

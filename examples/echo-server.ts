/**
 * The echo server: every byte (TCP, Unix stream) or every datagram (UDP, Unix datagram) goes back
 * unchanged. Run `npx tsx examples/echo-server.ts --help`-free: flags are listed below.
 *
 *   npx tsx examples/echo-server.ts --transport tcp --port 7007
 *   npx tsx examples/echo-server.ts --transport unix --path /tmp/echo.sock --strategy sequential
 *
 * Prints `listening on HOST:PORT` (or the path) once ready; Ctrl-C stops it gracefully.
 */
import { Console, Context, Effect, Layer } from "effect"
import { NetAddress } from "effect/net"
import * as Os from "node:os"
import * as Path from "node:path"
import * as DatagramListener from "../src/core/DatagramListener.ts"
import * as Main from "../src/core/Main.ts"
import * as Server from "../src/core/Server.ts"
import * as StreamListener from "../src/core/StreamListener.ts"
import * as Transport from "../src/core/Transport.ts"
import * as EchoServer from "../src/servers/echo/EchoServer.ts"
import * as Args from "./internal/Args.ts"
import * as Strategies from "./internal/Strategies.ts"

const flags = {
  transport: Args.choice(["tcp", "udp", "unix", "unix-dgram"], "tcp"),
  strategy: Args.choice(Strategies.names, "fiber"),
  host: Args.string(Transport.defaultHost),
  port: Args.int({ min: 0, max: 65535, default: 7007 }),
  path: Args.optionalString,
  workers: Args.int({ min: 1, max: 1024, default: Os.availableParallelism() })
}

const program = Effect.gen(function*() {
  const args = yield* Args.parse(flags)
  const defaultPath = Path.join(Os.tmpdir(), args.transport === "unix" ? "netkit-echo.sock" : "netkit-echo-dgram.sock")
  const transport: Transport.Transport = args.transport === "tcp"
    ? Transport.tcp({ host: args.host, port: args.port })
    : args.transport === "udp"
    ? Transport.udp({ host: args.host, port: args.port })
    : args.transport === "unix"
    ? Transport.unix({ path: args.path ?? defaultPath })
    : Transport.unixDatagram({ path: args.path ?? defaultPath })
  const listener = Transport.isStream(transport) ? StreamListener.layer(transport) : DatagramListener.layer(transport)
  const strategy = yield* Strategies.layerFor(args.strategy, args.workers)
  const context = yield* Layer.build(Server.layer().pipe(Layer.provide([listener, strategy])))
  const server = Context.get(context, Server.Server)
  yield* Console.log(`listening on ${NetAddress.formatSocketAddress(server.address)}`)
  yield* Transport.isStream(transport) ? server.serve(EchoServer.streamHandler) : server.serve(EchoServer.datagramHandler)
}).pipe(Effect.scoped)

Main.runMain(program)

/**
 * The echo server: every byte (TCP, Unix stream) or every datagram (UDP, Unix datagram) goes back
 * unchanged. `--help` lists the flags.
 *
 *   npx tsx examples/echo-server.ts --transport tcp --port 7007
 *   npx tsx examples/echo-server.ts --transport unix --path /tmp/echo.sock --strategy sequential
 *   npx tsx examples/echo-server.ts --tls-cert cert.pem --tls-key key.pem   # TLS (tcp, unix); SIGHUP reloads them
 *
 * Prints `listening on HOST:PORT` (or the path) once ready. Ctrl-C or SIGTERM stops it gracefully
 * (exit 0): idle connections close at once, an echo under way is finished first.
 */
import { Effect, Layer } from "effect"
import * as Os from "node:os"
import * as Path from "node:path"
import * as DatagramListener from "../src/core/DatagramListener.ts"
import * as Main from "../src/core/Main.ts"
import * as Server from "../src/core/Server.ts"
import * as StreamListener from "../src/core/StreamListener.ts"
import * as Transport from "../src/core/Transport.ts"
import * as EchoServer from "../src/servers/echo/EchoServer.ts"
import * as Cli from "./internal/Cli.ts"
import * as Strategies from "./internal/Strategies.ts"
import * as TlsFlags from "./internal/TlsFlags.ts"

const flags = {
  transport: Cli.choice("transport", ["tcp", "udp", "unix", "unix-dgram"], {
    default: "tcp",
    description: "what to listen on"
  }),
  ...Strategies.flags,
  host: Cli.string("host", { default: Transport.defaultHost, description: "address to bind (tcp, udp)" }),
  port: Cli.int("port", {
    min: 0,
    max: 65535,
    default: 7007,
    description: "port to bind (tcp, udp); 0 picks a free one"
  }),
  path: Cli.optionalString("path", { description: "socket path (unix, unix-dgram; default in the temp directory)" }),
  ...TlsFlags.flags
}

const echoServer = Cli.run(
  { name: "echo-server", description: "Echoes every byte or datagram back unchanged." },
  flags,
  (args) =>
    Effect.gen(function*() {
      const defaultName = args.transport === "unix" ? "netkit-echo.sock" : "netkit-echo-dgram.sock"
      const defaultPath = Path.join(Os.tmpdir(), defaultName)
      const transport: Transport.Transport = args.transport === "tcp"
        ? Transport.tcp({ host: args.host, port: args.port })
        : args.transport === "udp"
        ? Transport.udp({ host: args.host, port: args.port })
        : args.transport === "unix"
        ? Transport.unix({ path: args.path ?? defaultPath })
        : Transport.unixDatagram({ path: args.path ?? defaultPath })
      const tls = yield* TlsFlags.serverTls(args)
      if (tls !== undefined && !Transport.isStream(transport)) {
        return yield* new Cli.ArgumentError({ message: `--tls-cert: TLS needs --transport tcp or unix, not ${args.transport}` })
      }
      const listener = Transport.isStream(transport)
        ? StreamListener.layer(transport, { tls })
        : DatagramListener.layer(transport)
      const ServerLive = Server.layer().pipe(Layer.provide([listener, Strategies.layerFor(args.strategy, args.workers)]))
      const echo = Transport.isStream(transport)
        ? Server.serve(EchoServer.streamHandler, { onListening: Main.printListening })
        : Server.serve(EchoServer.datagramHandler, { onListening: Main.printListening })
      return yield* echo.pipe(Effect.provide(ServerLive))
    }).pipe(Effect.scoped)
)

Main.runMain(echoServer)

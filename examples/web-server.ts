/**
 * The HTTP/1.1 web server: every request gets `200`, `Content-Type: text/plain`, body `Hello from Epoll Server`,
 * once the whole request (head and body) has been read. A body that breaks the HTTP framing gets the parser's status
 * (400, 413, ...) instead, and the connection closes. `--help` lists the flags.
 *
 *   npx tsx examples/web-server.ts --port 8080
 *   npx tsx examples/web-server.ts --strategy worker --workers 4
 *   npx tsx examples/web-server.ts --port 8443 --tls-cert cert.pem --tls-key key.pem   # HTTPS; SIGHUP reloads them
 *
 * Prints `listening on HOST:PORT` once ready. Ctrl-C or SIGTERM stops it gracefully (exit 0): idle keep-alive
 * connections close at once, a request under way gets its response (with `Connection: close`) first.
 */
import { Effect, Layer } from "effect"
import * as Main from "../src/core/Main.ts"
import * as Server from "../src/core/Server.ts"
import * as StreamListener from "../src/core/StreamListener.ts"
import * as Transport from "../src/core/Transport.ts"
import * as HttpServer from "../src/servers/http/HttpServer.ts"
import * as WebServer from "../src/servers/http/WebServer.ts"
import * as Cli from "./internal/Cli.ts"
import * as Strategies from "./internal/Strategies.ts"
import * as TlsFlags from "./internal/TlsFlags.ts"

const flags = {
  ...Strategies.flags,
  host: Cli.string("host", { default: Transport.defaultHost, description: "address to bind" }),
  port: Cli.int("port", { min: 0, max: 65535, default: 8080, description: "port to bind; 0 picks a free one" }),
  ...TlsFlags.flags
}

const webServer = Cli.run(
  { name: "web-server", description: "An HTTP/1.1 server that answers every request with Hello from Epoll Server." },
  flags,
  (args) =>
    Effect.gen(function*() {
      const tls = yield* TlsFlags.serverTls(args, { alpn: HttpServer.alpnProtocols })
      const listener = StreamListener.layer(Transport.tcp({ host: args.host, port: args.port }), { tls })
      const ServerLive = Server.layer().pipe(Layer.provide([listener, Strategies.layerFor(args.strategy, args.workers)]))
      return yield* Server.serve(WebServer.webServer, { onListening: Main.printListening }).pipe(Effect.provide(ServerLive))
    }).pipe(Effect.scoped)
)

Main.runMain(webServer)

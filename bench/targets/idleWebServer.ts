/**
 * The connections benchmark's web server: the web server of `examples/web-server.ts` (the same response, fiber
 * strategy, one process) with a keep-alive timeout of an hour instead of 5 s, so that connections left idle after a
 * request stay open while the benchmark counts them.
 *
 *   node bench/targets/idleWebServer.ts [--host 127.0.0.1] [--port 0]
 *
 * Prints `listening on HOST:PORT` once bound; SIGTERM stops it gracefully (exit 0).
 */
import { Effect, Layer } from "effect"
import * as Cli from "../../examples/internal/Cli.ts"
import * as Main from "../../src/core/Main.ts"
import * as Server from "../../src/core/Server.ts"
import * as Strategy from "../../src/core/Strategy.ts"
import * as StreamListener from "../../src/core/StreamListener.ts"
import * as Transport from "../../src/core/Transport.ts"
import * as HttpResponse from "../../src/servers/http/HttpResponse.ts"
import * as HttpServer from "../../src/servers/http/HttpServer.ts"
import * as WebServer from "../../src/servers/http/WebServer.ts"

const flags = {
  host: Cli.string("host", { default: "127.0.0.1", description: "address to bind" }),
  port: Cli.int("port", { min: 0, max: 65535, default: 0, description: "port to bind; 0 picks a free one" })
}

const answer = Effect.succeed(HttpResponse.text(WebServer.greeting, { contentType: "text/plain" }))
const web = HttpServer.handler(() => answer, { name: "web", keepAliveTimeout: "1 hour" })

const idleWebServer = Cli.run(
  { name: "idleWebServer", description: "The connections benchmark's web server: keep-alive connections stay idle." },
  flags,
  (args) => {
    const ServerLive = Server.layer().pipe(Layer.provide([
      StreamListener.layer(Transport.tcp({ host: args.host, port: args.port })),
      Strategy.layerFiber()
    ]))
    return Server.serve(web, { onListening: Main.printListening }).pipe(Effect.provide(ServerLive))
  }
)

Main.runMain(idleWebServer)

/**
 * The HTTP/1.1 web server: every request gets `200`, `Content-Type: text/plain`, body `Hello from Epoll Server`.
 *
 *   npx tsx examples/web-server.ts --port 8080
 *   npx tsx examples/web-server.ts --strategy worker --workers 4
 *
 * Prints `listening on HOST:PORT` once ready; Ctrl-C or SIGTERM stops it gracefully (exit 0).
 */
import { Console, Context, Effect, Fiber, Layer } from "effect"
import { NetAddress } from "effect/net"
import * as Os from "node:os"
import * as Main from "../src/core/Main.ts"
import * as Server from "../src/core/Server.ts"
import * as StreamListener from "../src/core/StreamListener.ts"
import * as Transport from "../src/core/Transport.ts"
import * as WebServer from "../src/servers/http/WebServer.ts"
import * as Args from "./internal/Args.ts"
import * as Strategies from "./internal/Strategies.ts"

const flags = {
  strategy: Args.choice(Strategies.names, "fiber"),
  host: Args.string(Transport.defaultHost),
  port: Args.int({ min: 0, max: 65535, default: 8080 }),
  workers: Args.int({ min: 1, max: 1024, default: Os.availableParallelism() })
}

const program = Effect.gen(function*() {
  const args = yield* Args.parse(flags)
  const listener = StreamListener.layer(Transport.tcp({ host: args.host, port: args.port }))
  const strategy = yield* Strategies.layerFor(args.strategy, args.workers)
  const context = yield* Layer.build(Server.layer().pipe(Layer.provide([listener, strategy])))
  const server = Context.get(context, Server.Server)
  yield* Console.log(`listening on ${NetAddress.formatSocketAddress(server.address)}`)
  // On a signal, start the server's graceful shutdown before anything is interrupted: that is what tells idle
  // keep-alive connections to close at once (interrupting `serve` alone drains without telling handlers).
  const serving = yield* Effect.forkChild(server.serve(WebServer.webServer), { startImmediately: true })
  yield* Fiber.join(serving).pipe(Effect.onInterrupt(() => server.shutdown))
}).pipe(Effect.scoped)

Main.runMain(program)

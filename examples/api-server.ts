/**
 * An effect `HttpApi` served on the netkit engine: the app (`internal/TodoApi.ts`) is written with effect's own
 * HTTP modules only; `EffectHttpServer` runs it on our listener, parser and strategies. `--help` lists the flags.
 *
 *   npx tsx examples/api-server.ts --port 3000
 *   npx tsx examples/api-server.ts --strategy fork --workers 4
 *
 *   curl localhost:3000/todos
 *   curl -X POST localhost:3000/todos -H 'content-type: application/json' -d '{"title":"write tests"}'
 *   curl localhost:3000/todos/stream
 *
 * Prints `listening on HOST:PORT` once ready. Ctrl-C or SIGTERM stops it gracefully (exit 0).
 */
import { Effect, Layer } from "effect"
import * as Main from "../src/core/Main.ts"
import * as Server from "../src/core/Server.ts"
import * as StreamListener from "../src/core/StreamListener.ts"
import * as Transport from "../src/core/Transport.ts"
import * as Cli from "./internal/Cli.ts"
import * as Strategies from "./internal/Strategies.ts"
import * as TodoApi from "./internal/TodoApi.ts"

const flags = {
  ...Strategies.flags,
  host: Cli.string("host", { default: Transport.defaultHost, description: "address to bind" }),
  port: Cli.int("port", { min: 0, max: 65535, default: 3000, description: "port to bind; 0 picks a free one" })
}

const apiServer = Cli.run(
  { name: "api-server", description: "An effect HttpApi of todos, with a streamed route and a WebSocket echo." },
  flags,
  (args) => {
    const listener = StreamListener.layer(Transport.tcp({ host: args.host, port: args.port }))
    const ServerLive = Server.layer().pipe(Layer.provide([listener, Strategies.layerFor(args.strategy, args.workers)]))
    return Server.serve(TodoApi.app, { onListening: Main.printListening }).pipe(Effect.provide(ServerLive))
  }
)

Main.runMain(apiServer)

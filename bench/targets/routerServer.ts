/**
 * The effect-http benchmark's server: `routerApp.ts` on effect's own `NodeHttpServer` (the anchor) or on the netkit
 * engine (`EffectHttpServer`, fiber strategy).
 *
 *   node bench/targets/routerServer.ts --engine node|netkit [--host 127.0.0.1] [--port 0]
 *
 * Prints `listening on HOST:PORT` once bound; SIGTERM stops it (exit 0).
 */
import { NodeHttpServer } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { HttpServer } from "effect/http"
import * as http from "node:http"
import * as Cli from "../../examples/internal/Cli.ts"
import * as Main from "../../src/core/Main.ts"
import * as Transport from "../../src/core/Transport.ts"
import * as EffectHttpServer from "../../src/servers/effect-http/EffectHttpServer.ts"
import * as RouterApp from "./routerApp.ts"

const flags = {
  engine: Cli.choice("engine", ["node", "netkit"] as const, {
    default: "netkit",
    description: "which server runs the app"
  }),
  host: Cli.string("host", { default: "127.0.0.1", description: "address to bind" }),
  port: Cli.int("port", { min: 0, max: 65535, default: 0, description: "port to bind; 0 picks a free one" })
}

const routerServer = Cli.run(
  { name: "routerServer", description: "The effect-http benchmark's server: one HttpRouter app on either engine." },
  flags,
  (args) => {
    const server = args.engine === "node"
      ? NodeHttpServer.layer(http.createServer, { host: args.host, port: args.port })
      : EffectHttpServer.layer({ transport: Transport.tcp({ host: args.host, port: args.port }) })
    const announce = Layer.effectDiscard(
      Effect.flatMap(HttpServer.HttpServer, (server) => Main.printListening(server.address))
    )
    return Layer.launch(Layer.mergeAll(RouterApp.app, announce).pipe(Layer.provide(server)))
  }
)

Main.runMain(routerServer)

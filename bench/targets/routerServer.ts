/**
 * The effect-http benchmark's server: `routerApp.ts` on effect's own `NodeHttpServer` (the anchor) or on the netkit
 * engine (`EffectHttpServer`, fiber strategy).
 *
 *   node bench/targets/routerServer.ts --engine node|netkit [--host 127.0.0.1] [--port 0]
 *
 * Prints `listening on HOST:PORT` once bound; SIGTERM stops it (exit 0).
 */
import { NodeHttpServer } from "@effect/platform-node"
import { Console, Effect, Layer } from "effect"
import { HttpServer } from "effect/http"
import { NetAddress } from "effect/net"
import * as http from "node:http"
import * as Args from "../../examples/internal/Args.ts"
import * as Main from "../../src/core/Main.ts"
import * as Transport from "../../src/core/Transport.ts"
import * as EffectHttpServer from "../../src/servers/effect-http/EffectHttpServer.ts"
import * as RouterApp from "./routerApp.ts"

const flags = {
  engine: Args.choice(["node", "netkit"] as const, "netkit"),
  host: Args.string("127.0.0.1"),
  port: Args.int({ min: 0, max: 65535, default: 0 })
}

const program = Effect.gen(function*() {
  const args = yield* Args.parse(flags)
  const server = args.engine === "node"
    ? NodeHttpServer.layer(http.createServer, { host: args.host, port: args.port })
    : EffectHttpServer.layer({ transport: Transport.tcp({ host: args.host, port: args.port }) })
  const announce = Layer.effectDiscard(Effect.flatMap(
    HttpServer.HttpServer,
    (server) => Console.log(`listening on ${NetAddress.formatSocketAddress(server.address)}`)
  ))
  return yield* Layer.launch(Layer.mergeAll(RouterApp.app, announce).pipe(Layer.provide(server)))
})

Main.runMain(program)

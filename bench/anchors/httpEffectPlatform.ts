/**
 * Anchor: effect's own HTTP server (`NodeHttpServer` from `@effect/platform-node`, over `node:http`) answering
 * every request with `200`, `Content-Type: text/plain` and `Hello from Epoll Server`.
 */
import { NodeHttpServer } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { HttpServer, HttpServerResponse } from "effect/http"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { announce, exitWith, hostPort } from "./common.ts"

const { host, port } = hostPort()
const server = http.createServer()

const app = HttpServer.serve()(Effect.succeed(HttpServerResponse.text("Hello from Epoll Server", { contentType: "text/plain" })))

const main = Layer.launch(
  app.pipe(
    Layer.provide(NodeHttpServer.layer(() => server, { host, port })),
    Layer.tap(() =>
      Effect.sync(() => {
        const address = server.address() as AddressInfo
        announce(address.address, address.port)
      })
    )
  )
)

const fiber = Effect.runFork(main)
fiber.addObserver(() => process.exit(0))
exitWith(() => server.closeAllConnections())

/**
 * The effect `HttpRouter` app of the effect-http benchmark, served unchanged by effect's `NodeHttpServer` and by
 * `EffectHttpServer`: `GET /hello` (text), `GET /json` (a small JSON object), `POST /echo` (the body back).
 */
import { Effect, Layer } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"

const greeting = { message: "hello", items: [1, 2, 3], ok: true }

/** The routes. */
export const routes = HttpRouter.addAll([
  HttpRouter.route("GET", "/hello", Effect.sync(() => HttpServerResponse.text("Hello from Epoll Server"))),
  HttpRouter.route("GET", "/json", Effect.sync(() => HttpServerResponse.jsonUnsafe(greeting))),
  HttpRouter.route(
    "POST",
    "/echo",
    Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
      Effect.map(request.arrayBuffer, (body) =>
        HttpServerResponse.uint8Array(new Uint8Array(body), {
          contentType: request.headers["content-type"] ?? "application/octet-stream"
        })))
  )
])

/** The app as a layer over effect's `HttpServer`; the per-request logger is off, as a benchmark wants. */
export const app: Layer.Layer<never, never, import("effect/http").HttpServer.HttpServer> = HttpRouter.serve(routes, {
  disableLogger: true,
  disableListenLog: true
})

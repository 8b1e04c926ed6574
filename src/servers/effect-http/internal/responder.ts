/**
 * Running effect `HttpApp`s on the shared HTTP/1.1 request loop.
 *
 * - The apps `HttpServer.serve` installed: the newest one answers; closing its `serve` scope uninstalls it (the
 *   older one answers again) and interrupts its requests still running. With none installed: 503.
 * - Each request runs `HttpEffect.toHandled(app, writeResponse)` in a fiber of its own, as with effect's Node server
 *   (an app may interrupt `Fiber.getCurrent()` without ending the connection). The fiber starts at once, inside the
 *   read event that completed the request, so an app that answers without waiting costs no step of the
 *   connection's fiber: its response joins the batch of the read, as pipelined responses do.
 * - When the client goes away while its request runs (`Connection.closed`, which a half-close does not trip), that
 *   fiber is interrupted as a `ClientAbort` (effect answers such requests with 499, which nobody receives). The
 *   connection is watched only while a request waits: an idle keep-alive connection keeps no watcher fiber.
 */
import { Context, Deferred, Effect, Fiber, Option, Scope } from "effect"
import { HttpEffect, HttpServer, HttpServerError, HttpServerRequest } from "effect/http"
import type { HttpMiddleware, HttpServerResponse } from "effect/http"
import { NetAddress } from "effect/net"
import type * as Connection from "../../../core/Connection.ts"
import type { HttpRequestHead } from "../../../protocol/http/RequestHead.ts"
import { finishAfterBody, finishRequest } from "../../http/internal/connectionState.ts"
import type { ConnectionState } from "../../http/internal/connectionState.ts"
import type { ServeRequest } from "../../http/internal/requestLoop.ts"
import { encodeFixed, errorResponse, modeOf } from "../../http/internal/wire.ts"
import { Exchange } from "./exchange.ts"
import { ServerRequest } from "./serverRequest.ts"
import type { UpgradeContext } from "./upgrade.ts"
import { writeResponse } from "./writeResponse.ts"

/** An installed app: what runs per request, the services it runs with, and its exchanges in flight. */
interface InstalledApp {
  readonly handled: Effect.Effect<void, never, HttpServerRequest.HttpServerRequest>
  readonly context: Context.Context<never>
  readonly running: Set<Exchange>
}

/** The apps of one server, newest last. */
export class AppSlot {
  readonly apps: Array<InstalledApp> = []

  get current(): InstalledApp | undefined {
    return this.apps[this.apps.length - 1]
  }

  uninstall(app: InstalledApp): void {
    const index = this.apps.indexOf(app)
    if (index >= 0) this.apps.splice(index, 1)
    // its services are going away: its requests in flight end with it
    for (const exchange of app.running) exchange.fiber?.interruptUnsafe()
    app.running.clear()
  }
}

/** What every connection of one server shares. */
export interface ServerContext {
  readonly slot: AppSlot
  readonly upgrades: UpgradeContext
  /** The scheme of absolute `originalUrl`s. */
  readonly scheme: "http" | "https"
}

const handleResponse = (
  request: HttpServerRequest.HttpServerRequest,
  response: HttpServerResponse.HttpServerResponse
): Effect.Effect<void> =>
  request instanceof ServerRequest
    ? writeResponse(request.exchange, response)
    : Effect.die(new TypeError("the request is not the one the server made: it cannot be answered"))

/** effect's `HttpServer` service over `slot`: `serve` installs an app for as long as its scope is open. */
export const makeHttpServer = (slot: AppSlot, address: NetAddress.SocketAddress): HttpServer.HttpServer["Service"] =>
  HttpServer.make({
    address,
    serve: (httpApp, middleware?: HttpMiddleware.HttpMiddleware) =>
      Effect.gen(function*() {
        const scope = yield* Effect.scope
        const context = yield* Effect.context<never>()
        const app: InstalledApp = {
          handled: HttpEffect.toHandled(httpApp, handleResponse, middleware) as Effect.Effect<
            void,
            never,
            HttpServerRequest.HttpServerRequest
          >,
          context,
          running: new Set()
        }
        slot.apps.push(app)
        yield* Scope.addFinalizer(scope, Effect.sync(() => slot.uninstall(app)))
      })
  })

/** Interrupts `fiber`, a request's, as a `ClientAbort` if the connection goes away; interrupt the watcher when done. */
const watchClientAbort = (connection: Connection.Connection, fiber: Fiber.Fiber<unknown, unknown>): Fiber.Fiber<void> =>
  Effect.runFork(Effect.andThen(
    connection.closed,
    Effect.sync(() => fiber.interruptUnsafe(undefined, HttpServerError.ClientAbort.annotation))
  ))

/** The responder of one connection. */
export const responder = (server: ServerContext) => (state: ConnectionState): ServeRequest<never> => {
  const peer = state.connection.remoteAddress
  const remoteAddress = peer === undefined ? Option.none<string>() : Option.some(NetAddress.formatIp(peer.address))
  const unavailable = (head: HttpRequestHead) => {
    const persistent = state.persists(head)
    state.out.push(encodeFixed(errorResponse(503), modeOf(persistent, head.version), head.method === "HEAD"))
    return finishAfterBody(state, persistent)
  }
  // what is left once the application is done: the rest of the body, or the conversation of a switched protocol
  const finish = (exchange: Exchange, app: InstalledApp): Effect.Effect<void, Connection.ConnectionError> | undefined => {
    exchange.abortWatch?.interruptUnsafe()
    state.cancelRequest = undefined
    app.running.delete(exchange)
    if (exchange.switched) {
      // the connection speaks another protocol now: close it once that conversation is over
      state.closing = true
      const done = exchange.switchedDone
      const over = done === undefined ? Effect.void : Effect.raceFirst(Deferred.await(done), state.connection.closed)
      return Effect.andThen(over, Effect.sync(() => finishRequest(state, false)))
    }
    if (!exchange.responded) {
      // interrupted (the client left, a timeout, a shutdown) or lost: nothing more can be said on this connection
      state.closing = true
      finishRequest(state, false)
      return undefined
    }
    return finishAfterBody(state, exchange.persistent)
  }
  return (head) => {
    const hasBody = state.beginRequest(head)
    const app = server.slot.current
    if (app === undefined) return unavailable(head)
    const exchange = new Exchange(state, head, remoteAddress, hasBody, server.scheme)
    const context = Context.add(app.context, HttpServerRequest.HttpServerRequest, new ServerRequest(exchange, server.upgrades))
    // the request's own fiber, as effect's Node server gives it; it runs now, so an app that answers without waiting
    // is done before this returns, and the loop goes on in the same read event
    const fiber = Effect.runForkWith(context)(app.handled)
    if (fiber.pollUnsafe() !== undefined) return finish(exchange, app)
    exchange.fiber = fiber
    exchange.abortWatch = watchClientAbort(state.connection, fiber)
    // a stop (the request timeout) interrupts the application's fiber; the loop then ends with the stop's reason
    state.cancelRequest = () => fiber.interruptUnsafe()
    app.running.add(exchange)
    return Effect.flatMap(
      Effect.onInterrupt(Fiber.await(fiber), () => Effect.sync(() => fiber.interruptUnsafe())),
      () => finish(exchange, app) ?? Effect.void
    )
  }
}

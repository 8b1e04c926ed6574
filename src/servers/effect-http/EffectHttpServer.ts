/**
 * effect's `HttpServer` on the netkit engine: apps written with effect's own HTTP modules (`HttpRouter`,
 * `HttpApi`/`HttpApiBuilder`, `HttpMiddleware`, `HttpServerRequest`, `HttpServerResponse`) run unchanged over our
 * listeners, strategies, strict HTTP/1.1 parser and request loop, in place of `@effect/platform-node`'s
 * `NodeHttpServer`:
 *
 * ```ts
 * HttpRouter.serve(AppRoutes).pipe(
 *   Layer.provide(EffectHttpServer.layer({ transport: Transport.tcp({ port: 3000 }) })),
 *   Layer.launch,
 *   Main.runMain
 * )
 * ```
 *
 * - {@link layer}: the server and the services an app expects beside it (`HttpPlatform`, `Etag`, the Node file
 *   system and path), like `NodeHttpServer.layer`; {@link layerTest} is `NodeHttpServer.layerTest`'s twin.
 * - {@link make} / {@link layerServer}: effect's `HttpServer` over a netkit `Server` you built yourself. `serve`
 *   receives the app as a closure, so the server must run connections in this process (`sequential`, `fiber`).
 * - {@link define}: an app given as a module export (a Layer around `HttpRouter.serve(...)`), built once per process
 *   or thread that serves it, so one app runs under all four strategies, `fork` and `worker` included.
 *
 * Each request runs in a fiber of its own, started in the read event that completed it (see `internal/responder.ts`),
 * so an app that answers without waiting costs no step of the connection's fiber. Requests are
 * parsed by `Http1Parser`, with its limits (a body is at most 16 MiB unless `maxBodyBytes` says otherwise, on top of
 * effect's `MaxBodySize`).
 *
 * @since 0.1.0
 */
import type { NodeServices } from "@effect/platform-node"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeWS from "@effect/platform-node/NodeWS"
import { Cause, Deferred, Duration, Effect, Exit, Layer, Scope } from "effect"
import type { FileSystem, Path } from "effect"
import { Etag, FetchHttpClient, HttpServer } from "effect/http"
import type { HttpClient, HttpPlatform } from "effect/http"
import { HttpServerError } from "effect/http"
import type * as Connection from "../../core/Connection.ts"
import * as Handler from "../../core/Handler.ts"
import * as Listener from "../../core/Listener.ts"
import * as Server from "../../core/Server.ts"
import * as Strategy from "../../core/Strategy.ts"
import * as StreamListener from "../../core/StreamListener.ts"
import * as Tls from "../../core/Tls.ts"
import * as Transport from "../../core/Transport.ts"
import * as HttpServerNative from "../http/HttpServer.ts"
import type { Config } from "../http/internal/connectionState.ts"
import { serveConnection } from "../http/internal/requestLoop.ts"
import type { Supervisor } from "../http/internal/supervisor.ts"
import { AppSlot, makeHttpServer, responder } from "./internal/responder.ts"
import type { ServerContext } from "./internal/responder.ts"
import type { UpgradeContext } from "./internal/upgrade.ts"

/**
 * Options of the HTTP engine: the parser's limits and the timeouts of `HttpServer.Options`, and the WebSocket
 * server's options. Unlike Node's, the request timeout (default 300 s) runs until the response is complete, so a
 * response streamed for longer (server-sent events, say) needs `requestTimeout: 0` or more time; a connection that
 * switched protocols (`upgrade`) has no such deadline.
 * @category models
 */
export interface Options extends HttpServerNative.Options {
  /**
   * Options of the `ws` WebSocket server behind `request.upgrade`, as `NodeHttpServer` takes them, for example
   * `{ perMessageDeflate: true }`.
   */
  readonly websocket?: Omit<NodeWS.ServerOptions, "noServer" | "server" | "host" | "port" | "path"> | undefined
  /**
   * The scheme of `request.originalUrl` (an absolute URL built from `Host`): say `"https"` when the server's listener
   * serves TLS. Default `"http"`; {@link layer} with `tls` makes it `"https"`.
   */
  readonly scheme?: "http" | "https" | undefined
}

/**
 * How long a stopping server waits for requests in flight before it interrupts them: 20 s, as `NodeHttpServer`.
 * @category constants
 */
export const defaultGracefulShutdownTimeout: Duration.Input = "20 seconds"

/**
 * Options of {@link layer}.
 * @category models
 */
export interface LayerOptions extends Options {
  /** Where to listen. Default: TCP on 127.0.0.1, an ephemeral port. */
  readonly transport?: Transport.StreamTransport | undefined
  /** How connections run. Default `Strategy.layerFiber()`. Closures need an in-process strategy: see {@link define}. */
  readonly strategy?: Layer.Layer<Strategy.Strategy> | undefined
  /** Default {@link defaultGracefulShutdownTimeout}. */
  readonly gracefulShutdownTimeout?: Duration.Input | undefined
  /**
   * Serve HTTPS: the listener's TLS (see `Tls.Options`). Options that name no ALPN protocols get
   * `HttpServer.alpnProtocols` (`http/1.1`), so that an HTTP/2 client falls back instead of being misunderstood.
   * Default: plain HTTP.
   */
  readonly tls?: Tls.Options | Tls.Config | undefined
}

/**
 * The services an effect app expects beside the server: `HttpPlatform` (file responses), `Etag` and the Node
 * platform services (file system, path, ...), as `NodeHttpServer` provides them.
 * @category layers
 */
export const layerHttpServices: Layer.Layer<NodeServices.NodeServices | HttpPlatform.HttpPlatform | Etag.Generator> =
  NodeHttpServer.layerHttpServices

// ServeError carries only a cause: the message rides on it
const serveError = (message: string, cause?: unknown) =>
  new HttpServerError.ServeError({ cause: new Error(message, cause === undefined ? undefined : { cause }) })

/** The WebSocket server of `request.upgrade`, made on first use and closed with `scope` (when there is one). */
const webSocketServerIn = (
  options: Options | undefined,
  scope: Scope.Scope | undefined
): Effect.Effect<UpgradeContext> => {
  const make = Effect.sync(() => new NodeWS.WebSocketServer({ ...options?.websocket, noServer: true }))
  const acquire = scope === undefined
    ? make
    : Scope.provide(
      Effect.acquireRelease(make, (server) => Effect.callback<void>((resume) => server.close(() => resume(Effect.void)))),
      scope
    )
  return Effect.map(Effect.cached(acquire), (webSocketServer) => ({ webSocketServer }))
}

/** Serves one connection with the apps of `server`. */
const serveEffectConnection = (
  connection: Connection.Connection,
  server: ServerContext,
  config: Config,
  supervisor: Supervisor
): Effect.Effect<void, Connection.ConnectionError> => serveConnection(connection, config, supervisor, responder(server))

/**
 * effect's `HttpServer` over the current netkit `Server`, which must run connections in this process (`sequential`
 * or `fiber`): it serves from now until the scope closes, answering 503 while no app is installed. Each `serve`
 * installs an app until its scope closes; the newest answers.
 * @category constructors
 */
export const make = (
  options?: Options
): Effect.Effect<HttpServer.HttpServer["Service"], HttpServerError.ServeError, Server.Server | Scope.Scope> =>
  Effect.gen(function*() {
    const server = yield* Server.Server
    if (server.strategy === "fork" || server.strategy === "worker") {
      return yield* serveError(
        `the ${server.strategy} strategy cannot run an app given as a closure: export it and use EffectHttpServer.define`
      )
    }
    const scope = yield* Effect.scope
    const config = HttpServerNative.configOf(options)
    const supervisor = HttpServerNative.supervisorFor(config)
    const context: ServerContext = {
      slot: new AppSlot(),
      upgrades: yield* webSocketServerIn(options, scope),
      scheme: options?.scheme ?? "http"
    }
    const handler = Handler.stream((connection) => serveEffectConnection(connection, context, config, supervisor), {
      name: options?.name ?? "effect-http"
    })
    // Server.serve: interrupted when the scope closes, it stops accepting first, then drains
    yield* Effect.forkScoped(
      Server.serve(handler).pipe(
        Effect.provideService(Server.Server, server),
        Effect.catchCause((cause) => Effect.logError("HTTP server stopped", cause))
      ),
      { startImmediately: true }
    )
    return makeHttpServer(context.slot, server.address)
  })

/**
 * {@link make} as a layer over a netkit `Server`.
 * @category layers
 */
export const layerServer = (
  options?: Options
): Layer.Layer<HttpServer.HttpServer, HttpServerError.ServeError, Server.Server> =>
  Layer.effect(HttpServer.HttpServer, make(options))

/**
 * effect's `HttpServer` listening on `options.transport` with `options.strategy`, plus {@link layerHttpServices}: the
 * netkit counterpart of `NodeHttpServer.layer`. Bound when the layer is built (port 0 works: read `address`); a
 * failure to bind is a `ServeError`. Released, it stops accepting, lets requests in flight finish within
 * `gracefulShutdownTimeout`, then interrupts them.
 * @category layers
 */
export const layer = (
  options: LayerOptions = {}
): Layer.Layer<
  HttpServer.HttpServer | NodeServices.NodeServices | HttpPlatform.HttpPlatform | Etag.Generator,
  HttpServerError.ServeError
> => {
  const transport = options.transport ?? Transport.tcp({ host: Transport.defaultHost, port: 0 })
  const tls = options.tls
  const listener = Layer.effect(
    Listener.Listener,
    Effect.mapError(
      StreamListener.make(transport, tls === undefined ? {} : { tls: Tls.isConfig(tls) ? tls : withHttpAlpn(tls) }),
      (error) => serveError(error.message, error)
    )
  )
  const server = Server.layer({ drainTimeout: options.gracefulShutdownTimeout ?? defaultGracefulShutdownTimeout }).pipe(
    Layer.provide([listener, options.strategy ?? Strategy.layerFiber()])
  )
  const serverOptions = tls === undefined || options.scheme !== undefined ? options : { ...options, scheme: "https" as const }
  return Layer.mergeAll(layerServer(serverOptions).pipe(Layer.provide(server)), layerHttpServices)
}

const withHttpAlpn = (tls: Tls.Options): Tls.Options =>
  tls.alpn === undefined ? { ...tls, alpn: HttpServerNative.alpnProtocols } : tls

/**
 * {@link layer} for tests, in the shape of `NodeHttpServer.layerTest`: the server on 127.0.0.1, an ephemeral port,
 * and an `HttpClient` whose relative URLs go to it. `options` as for {@link layer} (the strategy, say).
 * @category layers
 */
export const layerTestWith = (
  options: LayerOptions = {}
): Layer.Layer<
  | HttpServer.HttpServer
  | FileSystem.FileSystem
  | Path.Path
  | HttpPlatform.HttpPlatform
  | Etag.Generator
  | HttpClient.HttpClient,
  HttpServerError.ServeError
> =>
  HttpServer.layerTestClient.pipe(
    Layer.provide(
      Layer.fresh(FetchHttpClient.layer).pipe(
        Layer.provide(Layer.succeed(FetchHttpClient.RequestInit)({ keepalive: false }))
      )
    ),
    Layer.provideMerge(layer(options))
  )

/**
 * {@link layerTestWith} with the defaults (the fiber strategy).
 * @category layers
 */
export const layerTest = layerTestWith()

/**
 * What an app given to {@link define} may require: the server and {@link layerHttpServices}.
 * @category models
 */
export type AppServices =
  | HttpServer.HttpServer
  | NodeServices.NodeServices
  | HttpPlatform.HttpPlatform
  | Etag.Generator

/**
 * An app as a module export that every strategy can run: the handler builds `app` (typically
 * `HttpRouter.serve(routes)`, a Layer that calls `HttpServer.serve` when built) once per process or thread that
 * serves connections, on the first connection there, and keeps it until the serve that built it shuts down and its
 * last connection is done. State in the app exists once per process or thread.
 *
 * ```ts
 * export const App = HttpRouter.serve(Routes, { disableLogger: true })
 * export const app = EffectHttpServer.define(App, { module: import.meta.url, export: "app" })
 * // main: server.serve(app), with any strategy
 * ```
 *
 * A build failure fails every connection of that serve (each is logged by the server) and is not retried.
 * @category constructors
 */
export const define = <E>(
  app: Layer.Layer<never, E, AppServices>,
  options: Options & { readonly module: string; readonly export: string }
): Handler.StreamHandler<Connection.ConnectionError | HttpServerError.ServeError> => {
  const config = HttpServerNative.configOf(options)
  const supervisor = HttpServerNative.supervisorFor(config)
  const context: ServerContext = {
    slot: new AppSlot(),
    // one per process or thread, for as long as it lives
    upgrades: Effect.runSync(webSocketServerIn(options, undefined)),
    scheme: options.scheme ?? "http"
  }
  let built: Deferred.Deferred<void, HttpServerError.ServeError> | undefined
  let release: Effect.Effect<void> = Effect.void
  let active = 0
  let stopping = false
  const releaseIfDone = Effect.suspend(() => {
    if (!stopping || active > 0) return Effect.void
    const done = release
    built = undefined
    release = Effect.void
    stopping = false
    return done
  })
  const build = (connection: Connection.Connection, signal: Server.ShutdownSignal) =>
    Effect.suspend(() => {
      if (built !== undefined) return Deferred.await(built)
      const deferred = built = Deferred.makeUnsafe<void, HttpServerError.ServeError>()
      const scope = Scope.makeUnsafe()
      release = Scope.close(scope, Exit.void)
      const server = Layer.succeed(HttpServer.HttpServer, makeHttpServer(context.slot, connection.localAddress))
      const layers = app.pipe(Layer.provide(server), Layer.provide(layerHttpServices))
      return Effect.exit(Layer.buildWithScope(layers, scope)).pipe(
        Effect.flatMap((exit) => {
          if (Exit.isFailure(exit)) {
            const error = serveError(`the app failed to build: ${Cause.pretty(exit.cause)}`, Cause.squash(exit.cause))
            Deferred.doneUnsafe(deferred, Exit.fail(error))
            return Effect.fail(error)
          }
          Deferred.doneUnsafe(deferred, Exit.void)
          // released once the serve that built it shuts down and its connections are done
          const watch = Effect.andThen(signal.requested, Effect.suspend(() => {
            stopping = true
            return releaseIfDone
          }))
          return Effect.asVoid(Effect.forkDetach(watch))
        })
      )
    })
  return Handler.stream(
    (connection) =>
      Effect.gen(function*() {
        yield* build(connection, yield* Server.Shutdown)
        active++
        yield* serveEffectConnection(connection, context, config, supervisor).pipe(
          Effect.ensuring(Effect.suspend(() => {
            active--
            return releaseIfDone
          }))
        )
      }),
    { name: options.name ?? options.export, module: options.module, export: options.export }
  )
}

/**
 * The HTTP/1.1 server: a stream handler that runs an application `(request) => Effect<HttpResponse>` over each
 * connection, with keep-alive, pipelining, `Expect: 100-continue`, streamed bodies both ways, timeouts and a
 * graceful close on server shutdown. Parsing is `Http1Parser`'s; the connection's request loop is
 * `internal/requestLoop.ts` (shared with `EffectHttpServer`, which runs effect's `HttpApp`s on it); the bytes of a
 * response are `internal/wire.ts`'s.
 *
 *   read ──> parser.push ──> [Head, End, Head, Body.., End, ...] ──> app(request) per Head, in order
 *                                                                  └─> responses appended to one batch
 *   batch ──> one write when the events of the read are used up (or before waiting on anything)
 *
 * Design:
 * - Pipelining: the parser runs ahead over whatever one read delivered; requests are served one after another, so
 *   responses leave in request order. All the responses a read produced go out in one write (one syscall).
 * - The loop is plain code between waits and runs in the socket's read event (`Connection.readWhile`): a request
 *   whose application answers with a ready value (an `Exit`) is parsed, answered and written there, with
 *   `tryWriteAll`. The fiber runs only what must wait: an effectful application (in a fiber of its own, which the
 *   request timeout interrupts), a full send buffer, a body. An idle connection keeps no fiber but its handler's.
 * - A request without a body builds no Stream: its body source is empty. A fixed response is one buffer, cached
 *   per second when the application returns the same response object.
 * - The request body is pulled from the parser's events as the application consumes it; `100 Continue` is sent on
 *   the first pull. What is left unread is discarded (bounded by the parser's body limit) before the next request,
 *   except when the client still waits for `100 Continue`: then the connection closes after the response.
 * - Timeouts are deadlines on the connection, checked by one ticker per handler (as Node's http server does, but on
 *   effect's `Clock`), so a read costs no timer of its own. Headers timeout -> 408 and close; keep-alive timeout -> close; request timeout
 *   -> 408 (if nothing was sent yet) and close.
 * - Graceful shutdown (`Server.Shutdown`): idle keep-alive connections close at once, busy ones after their
 *   current response (`Connection: close`).
 *
 * HTTPS is the same handler over a TLS listener: `StreamListener.layerTcp({ port: 8443, tls: { key, cert, alpn:
 * HttpServer.alpnProtocols } })`. Nothing here depends on the transport.
 */
import { Cause, Duration, Effect, Exit, Option } from "effect"
import type * as Connection from "../../core/Connection.ts"
import * as Handler from "../../core/Handler.ts"
import * as Http1Parser from "../../protocol/http/Http1Parser.ts"
import type { HttpRequestHead } from "../../protocol/http/RequestHead.ts"
import { HttpRequest, HttpRequestError } from "./HttpRequest.ts"
import type { HttpResponse } from "./HttpResponse.ts"
import { BodyState, drain, finishAfterBody, finishRequest, writeStream } from "./internal/connectionState.ts"
import type { Config, ConnectionState } from "./internal/connectionState.ts"
import { answerInFiber, serveConnection } from "./internal/requestLoop.ts"
import type { ServeRequest } from "./internal/requestLoop.ts"
import { Supervisor } from "./internal/supervisor.ts"
import { encodeFixed, encodeStreamHead, errorResponse, modeOf, streamFraming } from "./internal/wire.ts"

/**
 * The ALPN protocols this server speaks, for a TLS listener's `alpn`: HTTP/1.1 only, so a client that offers only
 * HTTP/2 is refused in the handshake rather than misunderstood.
 * @category constants
 */
export const alpnProtocols: ReadonlyArray<string> = ["http/1.1"]

/**
 * An HTTP application: one response per request. A failure or defect is answered with 500 (or the `status` of an
 * `HttpRequestError`), without any of its text; the connection goes on.
 * @category models
 */
export type App<E = never, R = never> = (request: HttpRequest) => Effect.Effect<HttpResponse, E, R>

/**
 * Headers timeout: 60 s, as Node's http server.
 * @category constants
 */
export const defaultHeadersTimeout: Duration.Input = "60 seconds"

/**
 * Keep-alive timeout: 5 s, as Node's http server.
 * @category constants
 */
export const defaultKeepAliveTimeout: Duration.Input = "5 seconds"

/**
 * Request timeout: 300 s, as Node's http server.
 * @category constants
 */
export const defaultRequestTimeout: Duration.Input = "300 seconds"

/**
 * Server options: the parser's limits plus timeouts. A timeout of zero or `Infinity` disables it.
 * @category models
 */
export interface Options extends Http1Parser.Options {
  /** Longest time from the first byte of a request head to its end; then 408 and close. Default 60 s. */
  readonly headersTimeout?: Duration.Input | undefined
  /** Longest idle time between requests on a persistent connection; then close. Default 5 s. */
  readonly keepAliveTimeout?: Duration.Input | undefined
  /** Longest time from a complete head to the end of its response; then 408 (if nothing was sent) and close. Default 300 s. */
  readonly requestTimeout?: Duration.Input | undefined
  /** Shown in logs and metrics. Default `"http"`. */
  readonly name?: string | undefined
}

const millisOf = (input: Duration.Input | undefined, fallback: Duration.Input): number => {
  const millis = Duration.toMillis(Duration.fromInputUnsafe(input ?? fallback))
  return millis > 0 && Number.isFinite(millis) ? millis : 0
}

const failureResponse = (cause: Cause.Cause<unknown>): HttpResponse => {
  const error = Option.getOrUndefined(Cause.findErrorOption(cause))
  return errorResponse(error instanceof HttpRequestError ? error.status : 500)
}

/** Queues the response; `undefined` when it is complete already, else the effect that completes it. */
const respond = (
  state: ConnectionState,
  head: HttpRequestHead,
  response: HttpResponse
): Effect.Effect<void, Connection.ConnectionError> | undefined => {
  const headOnly = head.method === "HEAD"
  const persistent = state.persists(head) && !response.close
  const body = response.body
  if (body._tag !== "Stream") {
    state.out.push(encodeFixed(response, modeOf(persistent, head.version), headOnly))
    // the fast path: a fixed response and nothing left of the request
    return finishAfterBody(state, persistent)
  }
  const framing = streamFraming(body.contentLength, head.version)
  const keepHead = persistent && framing._tag !== "Close"
  const encodedHead = encodeStreamHead(response, modeOf(keepHead, head.version), framing)
  if (headOnly) {
    // HEAD: the head a GET would get, framing included, and no body
    state.out.push(encodedHead)
    finishRequest(state, keepHead && state.body !== BodyState.Open)
    return undefined
  }
  return Effect.gen(function*() {
    let keep = yield* writeStream(state, encodedHead, body.stream, framing, persistent)
    if (keep && state.body === BodyState.Open) keep = yield* drain(state)
    finishRequest(state, keep)
  })
}

/**
 * Starts serving one request; `undefined` when it was served without waiting (the application answered with a
 * ready value, an `Exit`, and the response is queued), else the effect that serves it.
 */
const serveRequest = <E, R>(
  state: ConnectionState,
  head: HttpRequestHead,
  app: App<E, R>
): Effect.Effect<void, Connection.ConnectionError, R> | undefined => {
  const withBody = state.beginRequest(head)
  const request = new HttpRequest(head, state.connection.peer, withBody ? state : undefined)
  let handled: Effect.Effect<HttpResponse, E, R>
  try {
    handled = app(request)
  } catch (defect) {
    handled = Effect.die(defect)
  }
  // `Effect.succeed(response)` is an Exit: answer it here instead of running it through a fiber step
  if (Exit.isExit(handled) && Exit.isSuccess(handled)) {
    return respond(state, head, (handled as Exit.Success<HttpResponse>).value)
  }
  return Effect.matchCauseEffect(handled, {
    onSuccess: (response) => respond(state, head, response) ?? Effect.void,
    onFailure: (cause) => {
      if (Cause.hasInterruptsOnly(cause)) return Effect.interrupt
      const response = failureResponse(cause)
      // a bad body is the client's doing; anything else deserves attention
      return Effect.andThen(
        (response.status < 500 ? Effect.logDebug : Effect.logWarning)("HTTP handler failed", cause).pipe(
          Effect.annotateLogs({ peer: state.connection.peer, method: head.method, target: head.target })
        ),
        Effect.suspend(() => respond(state, head, response) ?? Effect.void)
      )
    }
  })
}

/**
 * The loop's settings from the options: parser limits and timeouts in milliseconds (0 = none).
 * @internal
 */
export const configOf = (options: Options | undefined): Config => ({
  parser: options ?? {},
  headersTimeout: millisOf(options?.headersTimeout, defaultHeadersTimeout),
  keepAliveTimeout: millisOf(options?.keepAliveTimeout, defaultKeepAliveTimeout),
  requestTimeout: millisOf(options?.requestTimeout, defaultRequestTimeout)
})

/**
 * A supervisor for the connections of one handler, and the check that the parser limits are valid (so that a bad
 * limit fails when the handler is made, not per connection).
 * @internal
 */
export const supervisorFor = (config: Config): Supervisor => {
  Http1Parser.makeRequestParser(config.parser)
  return new Supervisor([config.headersTimeout, config.keepAliveTimeout, config.requestTimeout])
}

/**
 * Serves `app` over each connection. Give `module` and `export` (this handler's own export) so that the fork and
 * worker strategies can load it; or use {@link define}.
 * @category constructors
 */
export const handler = <E, R>(
  app: App<E, R>,
  options?: Options & { readonly module?: string | undefined; readonly export?: string | undefined }
): Handler.StreamHandler<Connection.ConnectionError, R> => {
  const config = configOf(options)
  const supervisor = supervisorFor(config)
  // one function for every connection (the loop passes the state): nothing to make per connection
  const serve: ServeRequest<R> = (head, state) => {
    const serving = serveRequest(state, head, app)
    return serving === undefined ? undefined : answerInFiber(state, serving)
  }
  const responder = () => serve
  return Handler.stream((connection) => serveConnection(connection, config, supervisor, responder), {
    name: options?.name ?? "http",
    module: options?.module,
    export: options?.export
  })
}

/**
 * An application as a module export that every strategy can run: `export const app = HttpServer.define(fn,
 * { module: import.meta.url, export: "app" })`.
 * @category constructors
 */
export const define = <E, R>(
  app: App<E, R>,
  options: Options & { readonly module: string; readonly export: string }
): Handler.StreamHandler<Connection.ConnectionError, R> => handler(app, options)

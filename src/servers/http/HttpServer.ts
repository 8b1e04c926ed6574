/**
 * The HTTP/1.1 server: a stream handler that runs an application `(request) => Effect<HttpResponse>` over each
 * connection, with keep-alive, pipelining, `Expect: 100-continue`, streamed bodies both ways, timeouts and a
 * graceful close on server shutdown. Parsing is `Http1Parser`'s; the bytes of a response are `internal/wire.ts`'s.
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
 *   `tryWriteAll`. The fiber runs only what must wait: an effectful application, a full send buffer, a body.
 * - A request without a body builds no Stream: its body source is empty. A fixed response is one buffer, cached
 *   per second when the application returns the same response object.
 * - The request body is pulled from the parser's events as the application consumes it; `100 Continue` is sent on
 *   the first pull. What is left unread is discarded (bounded by the parser's body limit) before the next request,
 *   except when the client still waits for `100 Continue`: then the connection closes after the response.
 * - Timeouts are deadlines on the connection, checked by one timer per handler (as Node's http server does), so a
 *   read costs no timer of its own. Headers timeout -> 408 and close; keep-alive timeout -> close; request timeout
 *   -> 408 (if nothing was sent yet) and close.
 * - Graceful shutdown (`Server.Shutdown`): idle keep-alive connections close at once, busy ones after their
 *   current response (`Connection: close`).
 */
import { Cause, Deferred, Duration, Effect, Exit, Fiber, Option, Stream } from "effect"
import type { Pull } from "effect"
import type { NonEmptyReadonlyArray } from "effect/Array"
import type * as Connection from "../../core/Connection.ts"
import * as Handler from "../../core/Handler.ts"
import * as Server from "../../core/Server.ts"
import * as Http1Parser from "../../protocol/http/Http1Parser.ts"
import type { HttpRequestHead } from "../../protocol/http/RequestHead.ts"
import { crlf, encodeChunkHeader, lastChunk } from "../../protocol/http/ResponseHead.ts"
import { HttpRequest, HttpRequestError } from "./HttpRequest.ts"
import type { BodySource } from "./HttpRequest.ts"
import type { HttpResponse } from "./HttpResponse.ts"
import { continueBytes, encodeFixed, encodeStreamHead, errorResponse, Mode } from "./internal/wire.ts"
import type { Mode as ModeType } from "./internal/wire.ts"
import type { StreamFraming } from "./internal/wire.ts"

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

const StopReason = { Idle: 0, Headers: 1, Request: 2, Shutdown: 3 } as const
type StopReason = (typeof StopReason)[keyof typeof StopReason]

const Phase = { Idle: 0, Head: 1, Busy: 2 } as const
type Phase = (typeof Phase)[keyof typeof Phase]

type Batch = NonEmptyReadonlyArray<Uint8Array>

const millisOf = (input: Duration.Input | undefined, fallback: Duration.Input): number => {
  const millis = Duration.toMillis(Duration.fromInputUnsafe(input ?? fallback))
  return millis > 0 && Number.isFinite(millis) ? millis : 0
}

/** One per handler: the connections it serves, the deadline timer and the shutdown watchers. */
class Group {
  readonly conns = new Set<Conn>()
  readonly watchers = new Map<Server.ShutdownSignal, { count: number; fiber: Fiber.Fiber<void> }>()
  readonly tickMillis: number
  timer: ReturnType<typeof setInterval> | undefined = undefined
  now = Date.now()

  constructor(timeouts: ReadonlyArray<number>) {
    const shortest = Math.min(...timeouts.filter((t) => t > 0), 4000)
    // A deadline fires at most a quarter of its timeout late.
    this.tickMillis = Math.max(10, Math.floor(shortest / 4))
  }

  add(conn: Conn): void {
    this.conns.add(conn)
    if (this.timer === undefined) {
      this.now = Date.now()
      this.timer = setInterval(() => this.tick(), this.tickMillis)
      this.timer.unref?.()
    }
    const watcher = this.watchers.get(conn.signal)
    if (watcher !== undefined) watcher.count++
    else {
      const signal = conn.signal
      const fiber = Effect.runFork(Effect.andThen(signal.requested, Effect.sync(() => this.shutdown(signal))))
      this.watchers.set(signal, { count: 1, fiber })
    }
  }

  remove(conn: Conn): void {
    this.conns.delete(conn)
    if (this.conns.size === 0 && this.timer !== undefined) {
      clearInterval(this.timer)
      this.timer = undefined
    }
    const watcher = this.watchers.get(conn.signal)
    if (watcher !== undefined && --watcher.count === 0) {
      this.watchers.delete(conn.signal)
      Effect.runFork(Fiber.interrupt(watcher.fiber))
    }
  }

  tick(): void {
    const now = this.now = Date.now()
    for (const conn of this.conns) {
      if (conn.deadline === 0 || now < conn.deadline) continue
      // an idle deadline only cuts a connection that waits for a request, never one still writing
      if (conn.deadlineReason === StopReason.Idle && !conn.reading) continue
      conn.deadline = 0
      conn.stopWith(conn.deadlineReason)
    }
  }

  shutdown(signal: Server.ShutdownSignal): void {
    for (const conn of this.conns) {
      if (conn.signal !== signal) continue
      conn.shuttingDown = true
      if (conn.phase === Phase.Idle && conn.reading) conn.stopWith(StopReason.Shutdown)
    }
  }
}

interface Config {
  readonly parser: Http1Parser.Options
  readonly headersTimeout: number
  readonly keepAliveTimeout: number
  readonly requestTimeout: number
}

const bodyErrorOf = (error: Http1Parser.HttpParseError): HttpRequestError =>
  new HttpRequestError({
    reason: error.status === 413 ? "BodyTooLarge" : "MalformedBody",
    status: error.status,
    message: error.message
  })

const connectionClosed = new HttpRequestError({
  reason: "ConnectionClosed",
  status: 400,
  message: "the connection ended before the body was complete"
})

/** The state of one connection; also the body source of its current request. */
class Conn implements BodySource {
  readonly connection: Connection.Connection
  readonly group: Group
  readonly config: Config
  readonly signal: Server.ShutdownSignal
  readonly parser: Http1Parser.RequestParser
  readonly stop = Deferred.makeUnsafe<StopReason>()

  events: Array<Http1Parser.ParseEvent> = []
  index = 0
  out: Array<Uint8Array> = []
  phase: Phase = Phase.Idle
  deadline = 0
  deadlineReason: StopReason = StopReason.Idle
  /** Parked in a read. */
  reading = false
  eof = false
  /** No further request on this connection: flush and return. */
  closing = false
  shuttingDown = false
  /** Bytes of the current response were written already (a timeout can no longer answer 408). */
  responseStarted = false

  bodyOpen = false
  expectContinue = false
  continueSent = false
  bodyError: HttpRequestError | undefined = undefined
  /** The current request asked to switch protocols: the parser holds what follows until `resume`. */
  switchAsked = false

  readonly flush: Effect.Effect<void, Connection.ConnectionError>
  readonly fill: Effect.Effect<boolean, Connection.ConnectionError>
  readonly pull: Pull.Pull<Batch, HttpRequestError>

  constructor(connection: Connection.Connection, group: Group, config: Config, signal: Server.ShutdownSignal) {
    this.connection = connection
    this.group = group
    this.config = config
    this.signal = signal
    this.parser = Http1Parser.makeRequestParser(config.parser)
    this.flush = Effect.suspend(() => {
      const out = this.out
      this.out = []
      return connection.writeAll(out)
    })
    // built once: a read is the hot path of every keep-alive request
    const readOrEnd = Effect.catchIf(
      Effect.map(connection.read, (batch) => this.pushAll(batch)),
      Cause.isDone,
      () => Effect.sync(() => this.endOfInput())
    ) as Effect.Effect<boolean, Connection.ConnectionError>
    this.fill = Effect.suspend(() => {
      this.reading = true
      return readOrEnd
    })
    this.pull = Effect.suspend(() => this.nextBody())
  }

  stopWith(reason: StopReason): void {
    Deferred.doneUnsafe(this.stop, Effect.succeed(reason))
  }

  arm(millis: number, reason: StopReason): void {
    this.deadline = millis === 0 ? 0 : this.group.now + millis
    this.deadlineReason = reason
  }

  pushAll(batch: Batch): boolean {
    this.reading = false
    if (this.phase === Phase.Idle) {
      // the first bytes of a request head: from now on the headers timeout runs
      this.phase = Phase.Head
      this.arm(this.config.headersTimeout, StopReason.Headers)
    }
    const events = this.parser.push(batch[0])
    for (let i = 1; i < batch.length; i++) {
      const more = this.parser.push(batch[i])
      for (let j = 0; j < more.length; j++) events.push(more[j])
    }
    this.events = events
    this.index = 0
    return true
  }

  endOfInput(): boolean {
    this.reading = false
    this.eof = true
    this.events = this.parser.end()
    this.index = 0
    return this.events.length > 0
  }

  take(): Http1Parser.ParseEvent | undefined {
    return this.index < this.events.length ? this.events[this.index++] : undefined
  }

  nextBody(): Effect.Effect<Batch, HttpRequestError | Cause.Done> {
    if (this.bodyError !== undefined) return Effect.fail(this.bodyError)
    if (!this.bodyOpen) return Cause.done()
    if (this.expectContinue && !this.continueSent) {
      this.continueSent = true
      this.out.push(continueBytes)
    }
    let batch: Array<Uint8Array> | undefined
    for (;;) {
      const event = this.take()
      if (event === undefined) break
      if (event._tag === "Body") {
        if (event.chunk.length > 0) (batch ??= []).push(event.chunk)
        continue
      }
      this.bodyOpen = false
      if (event._tag === "Error") {
        this.closing = true
        this.bodyError = bodyErrorOf(event.error)
        return batch === undefined ? Effect.fail(this.bodyError) : Effect.succeed(batch as unknown as Batch)
      }
      // End (trailers are dropped: nothing in the request API exposes them yet)
      return batch === undefined ? Cause.done() : Effect.succeed(batch as unknown as Batch)
    }
    if (batch !== undefined) return Effect.succeed(batch as unknown as Batch)
    if (this.eof) {
      this.bodyOpen = false
      this.closing = true
      return Effect.fail(connectionClosed)
    }
    const more = this.out.length > 0 ? Effect.andThen(this.flush, this.fill) : this.fill
    return Effect.flatMap(Effect.mapError(more, () => connectionClosed), () => this.nextBody())
  }
}

const hasBody = (head: HttpRequestHead): boolean =>
  head.framing._tag === "Chunked" || (head.framing._tag === "Length" && head.framing.length > 0)

const failureResponse = (cause: Cause.Cause<unknown>): HttpResponse => {
  const error = Option.getOrUndefined(Cause.findErrorOption(cause))
  return errorResponse(error instanceof HttpRequestError ? error.status : 500)
}

/** Discards what is left of the current request body; false when the connection cannot carry another request. */
const drain = (conn: Conn): Effect.Effect<boolean, Connection.ConnectionError> =>
  Effect.suspend(function loop(): Effect.Effect<boolean, Connection.ConnectionError> {
    for (;;) {
      const event = conn.take()
      if (event === undefined) break
      if (event._tag === "End") {
        conn.bodyOpen = false
        return Effect.succeed(true)
      }
      if (event._tag === "Error") {
        conn.bodyOpen = false
        return Effect.succeed(false)
      }
    }
    if (conn.eof) return Effect.succeed(false)
    const more = conn.out.length > 0 ? Effect.andThen(conn.flush, conn.fill) : conn.fill
    return Effect.flatMap(more, (filled) => filled ? loop() : Effect.succeed(false))
  })

const modeOf = (persistent: boolean, version: HttpRequestHead["version"]): ModeType =>
  !persistent ? Mode.Close : version === "HTTP/1.1" ? Mode.Persistent11 : Mode.Persistent10

// without a length an HTTP/1.0 body ends with the connection
const streamFraming = (contentLength: number | undefined, version: HttpRequestHead["version"]): StreamFraming =>
  contentLength !== undefined
    ? { _tag: "Length", length: contentLength }
    : version === "HTTP/1.1"
    ? { _tag: "Chunked" }
    : { _tag: "Close" }

const writeStream = (
  conn: Conn,
  response: HttpResponse,
  body: Stream.Stream<Uint8Array, unknown>,
  contentLength: number | undefined,
  version: HttpRequestHead["version"],
  persistent: boolean
): Effect.Effect<boolean, Connection.ConnectionError> =>
  Effect.suspend(() => {
    const framing = streamFraming(contentLength, version)
    const keep = persistent && framing._tag !== "Close"
    conn.out.push(encodeStreamHead(response, modeOf(keep, version), framing))
    let sent = 0
    const chunked = framing._tag === "Chunked"
    const run = Stream.runForEachArray(body, (chunks) => {
      const parts = conn.out
      conn.out = []
      for (const chunk of chunks) {
        if (chunk.length === 0) continue
        sent += chunk.length
        if (chunked) parts.push(encodeChunkHeader(chunk.length), chunk, crlf)
        else parts.push(chunk)
      }
      if (parts.length === 0) return Effect.void
      conn.responseStarted = true
      return conn.connection.writeAll(parts)
    })
    return Effect.flatMap(Effect.exit(run), (exit) => {
      if (Exit.isFailure(exit)) {
        const write = Cause.findErrorOption(exit.cause)
        if (Option.isSome(write) && (write.value as { _tag?: string })._tag === "ConnectionError") {
          return Effect.failCause(exit.cause as Cause.Cause<Connection.ConnectionError>)
        }
        // the head may be out already: the only honest way to signal a broken body is to close
        return Effect.as(Effect.logWarning("HTTP response stream failed", exit.cause), false)
      }
      if (contentLength !== undefined && sent !== contentLength) {
        return Effect.as(Effect.logWarning(`HTTP response stream sent ${sent} of ${contentLength} bytes`), false)
      }
      if (chunked) conn.out.push(lastChunk)
      return Effect.succeed(keep)
    })
  })

const finishRequest = (conn: Conn, persistent: boolean): void => {
  conn.bodyOpen = false
  if (!persistent) conn.closing = true
  conn.phase = Phase.Idle
  conn.arm(conn.config.keepAliveTimeout, StopReason.Idle)
}

/** Queues the response; `undefined` when it is complete already, else the effect that completes it. */
const respond = (
  conn: Conn,
  head: HttpRequestHead,
  response: HttpResponse
): Effect.Effect<void, Connection.ConnectionError> | undefined => {
  const headOnly = head.method === "HEAD"
  let persistent = head.keepAlive && !response.close && !conn.shuttingDown && !conn.closing
  // the client still waits for 100 Continue and may never send the body: it cannot be drained
  if (conn.bodyOpen && conn.expectContinue && !conn.continueSent) persistent = false
  const body = response.body
  if (body._tag !== "Stream") {
    conn.out.push(encodeFixed(response, modeOf(persistent, head.version), headOnly))
    // the fast path: a fixed response and nothing left of the request
    if (!conn.bodyOpen || !persistent) {
      finishRequest(conn, persistent)
      return undefined
    }
    return Effect.map(drain(conn), (drained) => finishRequest(conn, drained))
  }
  if (headOnly) {
    // HEAD: the head a GET would get, framing included, and no body
    const framing = streamFraming(body.contentLength, head.version)
    if (framing._tag === "Close") persistent = false
    conn.out.push(encodeStreamHead(response, modeOf(persistent, head.version), framing))
    finishRequest(conn, persistent && !conn.bodyOpen)
    return undefined
  }
  return Effect.gen(function*() {
    let keep = yield* writeStream(conn, response, body.stream, body.contentLength, head.version, persistent)
    if (keep && conn.bodyOpen) keep = yield* drain(conn)
    finishRequest(conn, keep)
  })
}

/**
 * Starts serving one request; `undefined` when it was served without waiting (the application answered with a
 * ready value, an `Exit`, and the response is queued), else the effect that serves it.
 */
const serveRequest = <E, R>(
  conn: Conn,
  head: HttpRequestHead,
  app: App<E, R>
): Effect.Effect<void, Connection.ConnectionError, R> | undefined => {
  conn.phase = Phase.Busy
  conn.arm(conn.config.requestTimeout, StopReason.Request)
  conn.responseStarted = false
  const withBody = hasBody(head)
  conn.bodyOpen = withBody
  conn.bodyError = undefined
  conn.expectContinue = head.expectContinue
  conn.continueSent = false
  conn.switchAsked = head.upgrade
  // a request without a body is followed by its End event at once
  if (!withBody) conn.take()
  const request = new HttpRequest(head, conn.connection.peer, withBody ? conn : undefined)
  let handled: Effect.Effect<HttpResponse, E, R>
  try {
    handled = app(request)
  } catch (defect) {
    handled = Effect.die(defect)
  }
  // `Effect.succeed(response)` is an Exit: answer it here instead of running it through a fiber step
  if (Exit.isExit(handled) && Exit.isSuccess(handled)) return respond(conn, head, (handled as Exit.Success<HttpResponse>).value)
  return Effect.matchCauseEffect(handled, {
    onSuccess: (response) => respond(conn, head, response) ?? Effect.void,
    onFailure: (cause) => {
      if (Cause.hasInterruptsOnly(cause)) return Effect.interrupt
      const response = failureResponse(cause)
      // a bad body is the client's doing; anything else deserves attention
      return Effect.andThen(
        (response.status < 500 ? Effect.logDebug : Effect.logWarning)("HTTP handler failed", cause).pipe(
          Effect.annotateLogs({ peer: conn.connection.peer, method: head.method, target: head.target })
        ),
        Effect.suspend(() => respond(conn, head, response) ?? Effect.void)
      )
    }
  })
}

const idleStop: Effect.Effect<StopReason> = Effect.succeed(StopReason.Idle)

/**
 * The request loop of one connection. Between waits it is plain code: it serves every event one read produced, and
 * it runs as the bytes arrive (`Connection.readWhile`), so a keep-alive request whose application answers with a
 * ready value costs no fiber step at all. The effects it waits on are built once per connection.
 */
const requestLoop = <E, R>(conn: Conn, app: App<E, R>): Effect.Effect<StopReason, Connection.ConnectionError, R> => {
  // What comes next: an effect for the fiber to run, or `undefined` to wait for more bytes.
  const advance = (): Effect.Effect<StopReason, Connection.ConnectionError, R> | undefined => {
    for (;;) {
      const event = conn.closing ? undefined : conn.take()
      if (event === undefined && conn.switchAsked && conn.phase === Phase.Idle) {
        // applications here never switch protocols (RFC 9110 §7.8 lets a server ignore Upgrade): go on with HTTP
        conn.switchAsked = false
        conn.events = conn.parser.resume()
        conn.index = 0
        continue
      }
      if (event === undefined) {
        if (conn.out.length > 0) {
          if (!conn.connection.tryWriteAll(conn.out)) return flushThenStep
          // the socket took the chunks; the list itself is ours to reuse
          conn.out.length = 0
        }
        if (conn.closing || conn.eof || (conn.shuttingDown && conn.phase === Phase.Idle)) return idleStop
        conn.reading = true
        return undefined
      }
      if (event._tag === "Head") {
        const serving = serveRequest(conn, event.head, app)
        if (serving !== undefined) return Effect.flatMap(serving, step)
      } else if (event._tag === "Error") {
        // RFC 9112 §9.6 (and every parse error): answer if possible, then close
        conn.out.push(encodeFixed(errorResponse(event.error.status), Mode.Close, false))
        conn.closing = true
      }
    }
  }
  const step = (): Effect.Effect<StopReason, Connection.ConnectionError, R> => advance() ?? readThenStep
  const onBatch = (batch: Batch) => {
    conn.pushAll(batch)
    return advance()
  }
  const readThenStep = Effect.matchEffect(conn.connection.readWhile(onBatch), {
    onSuccess: (next) => next,
    onFailure: (error) => {
      if (!Cause.isDone(error)) return Effect.fail(error)
      conn.endOfInput()
      return step()
    }
  })
  const flushThenStep = Effect.flatMap(conn.flush, step)
  return Effect.suspend(step)
}

const serveConnection = <E, R>(
  connection: Connection.Connection,
  app: App<E, R>,
  config: Config,
  group: Group
): Effect.Effect<void, Connection.ConnectionError, R> =>
  Effect.gen(function*() {
    const signal = yield* Server.Shutdown
    const conn = new Conn(connection, group, config, signal)
    conn.arm(config.keepAliveTimeout, StopReason.Idle)
    group.add(conn)
    const reason = yield* Effect.raceFirst(requestLoop(conn, app), Deferred.await(conn.stop)).pipe(
      Effect.ensuring(Effect.sync(() => group.remove(conn)))
    )
    if ((reason === StopReason.Headers || reason === StopReason.Request) && !conn.responseStarted) {
      const out = conn.out
      out.push(encodeFixed(errorResponse(408), Mode.Close, false))
      yield* Effect.ignore(connection.writeAll(out))
    }
  })

const configOf = (options: Options | undefined): Config => ({
  parser: options ?? {},
  headersTimeout: millisOf(options?.headersTimeout, defaultHeadersTimeout),
  keepAliveTimeout: millisOf(options?.keepAliveTimeout, defaultKeepAliveTimeout),
  requestTimeout: millisOf(options?.requestTimeout, defaultRequestTimeout)
})

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
  // built before any connection so that a bad limit fails here, not per connection
  Http1Parser.makeRequestParser(config.parser)
  const group = new Group([config.headersTimeout, config.keepAliveTimeout, config.requestTimeout])
  return Handler.stream((connection) => serveConnection(connection, app, config, group), {
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

/**
 * The state of one HTTP/1.1 connection between the request loop (`requestLoop.ts`) and whoever answers its requests:
 * the parser and the events of the last read, the batch of response bytes not yet written, where the connection is
 * in its request cycle, the current request's body (pulled from the parser's events as the application reads it)
 * and its deadline. Also the writers every responder shares: streamed bodies, discarding an unread body, and the
 * end of a request.
 */
import { Cause, Effect, Exit, Option, Stream } from "effect"
import type { Pull } from "effect"
import type { NonEmptyReadonlyArray } from "effect/Array"
import * as Connection from "../../../core/Connection.ts"
import type * as Server from "../../../core/Server.ts"
import * as Http1Parser from "../../../protocol/http/Http1Parser.ts"
import type { HttpRequestHead } from "../../../protocol/http/RequestHead.ts"
import { crlf, encodeChunkHeader, lastChunk } from "../../../protocol/http/ResponseHead.ts"
import { HttpRequestError } from "../HttpRequest.ts"
import type { BodySource } from "../HttpRequest.ts"
import { StopReason } from "./supervisor.ts"
import type { Member, Supervisor } from "./supervisor.ts"
import { continueBytes } from "./wire.ts"
import type { StreamFraming } from "./wire.ts"

/** Timeouts in milliseconds (0 = none) and the parser's limits. */
export interface Config {
  readonly parser: Http1Parser.Options
  readonly headersTimeout: number
  readonly keepAliveTimeout: number
  readonly requestTimeout: number
}

/** Where a connection is in its request cycle. */
export const Phase = {
  /** Between requests. */
  Idle: 0,
  /** The first bytes of a head arrived: the headers timeout runs. */
  Head: 1,
  /** A request is being answered: the request timeout runs. */
  Busy: 2
} as const
export type Phase = (typeof Phase)[keyof typeof Phase]

/** The current request's body. */
export const BodyState = {
  /** None, or read (or discarded) to its end. */
  Done: 0,
  /** Bytes of it may still come. */
  Open: 1,
  /** Malformed or cut short: `bodyError` says how; the connection closes after the response. */
  Failed: 2
} as const
export type BodyState = (typeof BodyState)[keyof typeof BodyState]

/** `Expect: 100-continue` of the current request. */
export const Continue = {
  /** Not asked for (or answered). */
  None: 0,
  /** The client waits for `100 Continue`, sent with the first pull of the body. */
  Awaited: 1,
  Sent: 2
} as const
export type Continue = (typeof Continue)[keyof typeof Continue]

type Batch = NonEmptyReadonlyArray<Uint8Array>

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

const noEvents = Object.freeze([]) as unknown as Array<Http1Parser.ParseEvent>

/** The state of one connection; also the body source of its current request. */
export class ConnectionState implements BodySource, Member {
  readonly connection: Connection.Connection
  readonly supervisor: Supervisor
  readonly config: Config
  readonly signal: Server.ShutdownSignal
  readonly parser: Http1Parser.RequestParser
  /** Why the loop was stopped from outside (the first reason wins); `undefined` while it runs on. */
  stopReason: StopReason | undefined = undefined
  /** Interrupts the request being answered in a fiber of its own (set by its responder while it runs), for a stop. */
  cancelRequest: (() => void) | undefined = undefined

  events: Array<Http1Parser.ParseEvent> = noEvents
  index = 0
  /** Response bytes not written yet: written together when the events of a read are used up. */
  out: Array<Uint8Array> = []
  phase: Phase = Phase.Idle
  deadline = 0
  deadlineReason: StopReason = StopReason.Idle
  awaitingInput = false
  /** The peer ended its input (half-close). */
  inputEnded = false
  /** No further request on this connection: a parse error, a bad body, or a response that does not persist. */
  closing = false
  /** A graceful shutdown began: the current request (if any) is the last, answered with `Connection: close`. */
  shuttingDown = false
  /** Bytes of the current response were written already (a timeout can no longer answer 408). */
  responseStarted = false
  body: BodyState = BodyState.Done
  bodyError: HttpRequestError | undefined = undefined
  continue: Continue = Continue.None
  /** The current request asked to switch protocols: the parser holds what follows until resumed. */
  switchAsked = false

  // Built on first use, then kept: an idle connection that never needed them (one whose writes always went out at
  // once, whose requests had no body) holds none.
  #flush: Effect.Effect<void, Connection.ConnectionError> | undefined = undefined
  #readMore: Effect.Effect<boolean, Connection.ConnectionError> | undefined = undefined
  #pull: Pull.Pull<Batch, HttpRequestError> | undefined = undefined

  constructor(
    connection: Connection.Connection,
    supervisor: Supervisor,
    config: Config,
    signal: Server.ShutdownSignal
  ) {
    this.connection = connection
    this.supervisor = supervisor
    this.config = config
    this.signal = signal
    this.parser = Http1Parser.makeRequestParser(config.parser)
  }

  /** Writes `out`. */
  get flush(): Effect.Effect<void, Connection.ConnectionError> {
    return this.#flush ??= Effect.suspend(() => {
      const out = this.out
      this.out = []
      return this.connection.writeAll(out)
    })
  }

  /** Reads and parses more input; false when the input ended without events. */
  get readMore(): Effect.Effect<boolean, Connection.ConnectionError> {
    if (this.#readMore !== undefined) return this.#readMore
    // built once: a read is the hot path of every request body
    const readOrEnd = Effect.catchIf(
      Effect.map(this.connection.read, (batch) => this.pushAll(batch)),
      Cause.isDone,
      () => Effect.sync(() => this.endOfInput())
    ) as Effect.Effect<boolean, Connection.ConnectionError>
    return this.#readMore = Effect.suspend(() => {
      this.awaitingInput = true
      return readOrEnd
    })
  }

  get pull(): Pull.Pull<Batch, HttpRequestError> {
    return this.#pull ??= Effect.suspend(() => this.nextBody())
  }

  /**
   * Stops the loop from outside, without a fiber per connection to interrupt: a request being answered is
   * interrupted; a loop that waits for input sees its input end; one that waits to write (a peer that does not read)
   * sees the connection close. Either way the loop then ends with `stopReason` (see `requestLoop.ts`).
   */
  stopWith(reason: StopReason): void {
    if (this.stopReason !== undefined) return
    this.stopReason = reason
    const cancel = this.cancelRequest
    if (cancel !== undefined) cancel()
    else Effect.runFork(this.awaitingInput ? this.connection.stopReading : this.connection.close)
  }

  beginShutdown(): void {
    this.shuttingDown = true
    if (this.phase === Phase.Idle && this.awaitingInput) this.stopWith(StopReason.Shutdown)
  }

  setDeadline(millis: number, reason: StopReason): void {
    this.supervisor.setDeadline(this, millis, reason)
  }

  pushAll(batch: Batch): boolean {
    this.awaitingInput = false
    if (this.phase === Phase.Idle) {
      // the first bytes of a request head: from now on the headers timeout runs
      this.phase = Phase.Head
      this.setDeadline(this.config.headersTimeout, StopReason.Headers)
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
    this.awaitingInput = false
    this.inputEnded = true
    this.events = this.parser.end()
    this.index = 0
    return this.events.length > 0
  }

  /** After a protocol-switch request answered without switching: parse what followed it as HTTP again. */
  resumeHttp(): void {
    this.switchAsked = false
    this.events = this.parser.resume()
    this.index = 0
  }

  nextEvent(): Http1Parser.ParseEvent | undefined {
    if (this.index < this.events.length) return this.events[this.index++]
    if (this.index > 0) {
      // the events of the last read are used up: an idle connection keeps none of them, nor the head they held
      this.events = noEvents
      this.index = 0
    }
    return undefined
  }

  /** The start of a request: phase, request timeout, body and `100 Continue` state. */
  beginRequest(head: HttpRequestHead): boolean {
    this.phase = Phase.Busy
    this.setDeadline(this.config.requestTimeout, StopReason.Request)
    this.responseStarted = false
    const withBody = hasBody(head)
    this.body = withBody ? BodyState.Open : BodyState.Done
    this.bodyError = undefined
    this.continue = head.expectContinue ? Continue.Awaited : Continue.None
    this.switchAsked = head.upgrade
    // a request without a body is followed by its End event at once
    if (!withBody) this.nextEvent()
    return withBody
  }

  /** The client still waits for `100 Continue` and may never send the body: it cannot be discarded. */
  get bodyBlocked(): boolean {
    return this.body === BodyState.Open && this.continue === Continue.Awaited
  }

  /** Whether the connection may carry another request after this response, as far as the connection knows. */
  persists(head: HttpRequestHead): boolean {
    return head.keepAlive && !this.closing && !this.shuttingDown && !this.bodyBlocked
  }

  nextBody(): Effect.Effect<Batch, HttpRequestError | Cause.Done> {
    if (this.body === BodyState.Failed) return Effect.fail(this.bodyError!)
    if (this.body === BodyState.Done) return Cause.done()
    if (this.continue === Continue.Awaited) {
      this.continue = Continue.Sent
      this.out.push(continueBytes)
    }
    let batch: Array<Uint8Array> | undefined
    for (;;) {
      const event = this.nextEvent()
      if (event === undefined) break
      if (event._tag === "Body") {
        if (event.chunk.length > 0) (batch ??= []).push(event.chunk)
        continue
      }
      if (event._tag === "Error") return this.failBody(bodyErrorOf(event.error), batch)
      // End (trailers are dropped: nothing in the request API exposes them yet)
      this.body = BodyState.Done
      return batch === undefined ? Cause.done() : Effect.succeed(batch as unknown as Batch)
    }
    if (batch !== undefined) return Effect.succeed(batch as unknown as Batch)
    if (this.inputEnded) return this.failBody(connectionClosed, undefined)
    const more = this.out.length > 0 ? Effect.andThen(this.flush, this.readMore) : this.readMore
    return Effect.flatMap(Effect.mapError(more, () => connectionClosed), () => this.nextBody())
  }

  failBody(error: HttpRequestError, batch: Array<Uint8Array> | undefined): Effect.Effect<Batch, HttpRequestError> {
    this.body = BodyState.Failed
    this.bodyError = error
    this.closing = true
    return batch === undefined ? Effect.fail(error) : Effect.succeed(batch as unknown as Batch)
  }
}

const hasBody = (head: HttpRequestHead): boolean =>
  head.framing._tag === "Chunked" || (head.framing._tag === "Length" && head.framing.length > 0)

/** Discards what is left of the current request body; false when the connection cannot carry another request. */
export const drain = (state: ConnectionState): Effect.Effect<boolean, Connection.ConnectionError> =>
  Effect.suspend(function loop(): Effect.Effect<boolean, Connection.ConnectionError> {
    if (state.body !== BodyState.Open) return Effect.succeed(state.body === BodyState.Done)
    for (;;) {
      const event = state.nextEvent()
      if (event === undefined) break
      if (event._tag === "End") {
        state.body = BodyState.Done
        return Effect.succeed(true)
      }
      if (event._tag === "Error") {
        state.body = BodyState.Failed
        return Effect.succeed(false)
      }
    }
    if (state.inputEnded) return Effect.succeed(false)
    const more = state.out.length > 0 ? Effect.andThen(state.flush, state.readMore) : state.readMore
    return Effect.flatMap(more, (filled) => filled ? loop() : Effect.succeed(false))
  })

/** The end of a request: the connection waits for the next one, or closes after the output when not persistent. */
export const finishRequest = (state: ConnectionState, persistent: boolean): void => {
  if (state.body === BodyState.Open) state.body = BodyState.Done
  if (!persistent) state.closing = true
  state.phase = Phase.Idle
  state.setDeadline(state.config.keepAliveTimeout, StopReason.Idle)
}

/**
 * The end of a request whose response is queued: `undefined` when nothing is left to do, else the effect that
 * discards the rest of the request body first (the fast path is a request without a body).
 */
export const finishAfterBody = (
  state: ConnectionState,
  persistent: boolean
): Effect.Effect<void, Connection.ConnectionError> | undefined => {
  if (state.body !== BodyState.Open || !persistent) {
    finishRequest(state, persistent && state.body === BodyState.Done)
    return undefined
  }
  return Effect.map(drain(state), (drained) => finishRequest(state, drained))
}

/**
 * Writes `head` (already encoded with the headers `framing` calls for) then `body`, one write per pull of the stream.
 * True when the connection may carry another request (`keep`, a delimited body, and every byte as framed). A stream
 * failure or a length that does not match is logged and closes the connection: the head may be out already, and a
 * cut body must not look complete. Fails only when the connection itself fails.
 */
export const writeStream = (
  state: ConnectionState,
  head: Uint8Array,
  body: Stream.Stream<Uint8Array, unknown>,
  framing: StreamFraming,
  keep: boolean
): Effect.Effect<boolean, Connection.ConnectionError> =>
  Effect.suspend(() => {
    state.out.push(head)
    let sent = 0
    const chunked = framing._tag === "Chunked"
    const run = Stream.runForEachArray(body, (chunks) => {
      const parts = state.out
      state.out = []
      for (const chunk of chunks) {
        if (chunk.length === 0) continue
        sent += chunk.length
        if (chunked) parts.push(encodeChunkHeader(chunk.length), chunk, crlf)
        else parts.push(chunk)
      }
      if (parts.length === 0) return Effect.void
      state.responseStarted = true
      return state.connection.writeAll(parts)
    })
    return Effect.flatMap(Effect.exit(run), (exit) => {
      if (Exit.isFailure(exit)) {
        const error = Option.getOrUndefined(Cause.findErrorOption(exit.cause))
        if (error instanceof Connection.ConnectionError) return Effect.fail(error)
        return Effect.as(Effect.logWarning("HTTP response stream failed", exit.cause), false)
      }
      if (framing._tag === "Length" && sent !== framing.length) {
        return Effect.as(Effect.logWarning(`HTTP response stream sent ${sent} of ${framing.length} bytes`), false)
      }
      if (chunked) state.out.push(lastChunk)
      return Effect.succeed(keep && framing._tag !== "Close")
    })
  })

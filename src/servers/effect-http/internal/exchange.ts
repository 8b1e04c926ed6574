/**
 * One request/response exchange of an effect `HttpApp` on a netkit connection: the parsed head, the body pulled
 * from the connection's parser, and what became of the response (written, persistent, switched to another
 * protocol). Every `HttpServerRequest` view of the request (`modify` makes new ones) shares it, so the body is read
 * once whatever view reads it.
 */
import { Cause, Deferred, Effect, Stream } from "effect"
import type { Option } from "effect"
import type { Fiber } from "effect"
import type { NonEmptyReadonlyArray } from "effect/Array"
import { Headers, HttpIncomingMessage, HttpServerError } from "effect/http"
import type { HttpServerRequest } from "effect/http"
import type { HttpRequestHead } from "../../../protocol/http/RequestHead.ts"
import type { HttpRequestError } from "../../http/HttpRequest.ts"
import type { ConnectionState } from "../../http/internal/connectionState.ts"

// Node keeps the first of these when a request repeats them (the rest is joined with ", ", cookies with "; ")
const firstOnly = new Set([
  "age",
  "authorization",
  "content-length",
  "content-type",
  "etag",
  "expires",
  "from",
  "host",
  "if-modified-since",
  "if-unmodified-since",
  "last-modified",
  "location",
  "max-forwards",
  "proxy-authorization",
  "referer",
  "retry-after",
  "server",
  "user-agent"
])

const headersProto: object = Object.getPrototypeOf(Headers.empty)

/** effect's `Headers` of a request head: lowercase names, repeated fields combined as Node combines them. */
export const headersOf = (fields: ReadonlyArray<readonly [string, string]>, host?: string): Headers.Headers => {
  const out: Record<string, string> = Object.create(headersProto)
  for (let i = 0; i < fields.length; i++) {
    const [name, value] = fields[i]
    const previous = out[name]
    if (previous === undefined) out[name] = value
    else if (!firstOnly.has(name)) out[name] = `${previous}${name === "cookie" ? "; " : ", "}${value}`
  }
  if (host !== undefined) out.host = host
  return out as Headers.Headers
}

const absoluteTarget = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//

/** Where the request points: the path the router matches and, for an absolute-form target, its authority. */
const locate = (target: string): { readonly url: string; readonly authority: string | undefined } => {
  if (!absoluteTarget.test(target)) return { url: target, authority: undefined }
  try {
    // RFC 9112 §3.2.2: the authority of an absolute-form target replaces Host
    const url = new URL(target)
    return { url: url.pathname + url.search, authority: url.host }
  } catch {
    return { url: target, authority: undefined }
  }
}

const emptyBody = new ArrayBuffer(0)

/** One exchange. */
export class Exchange {
  readonly state: ConnectionState
  readonly head: HttpRequestHead
  readonly remoteAddress: Option.Option<string>
  /** Set when the request has a body (Content-Length > 0 or chunked). */
  readonly hasBody: boolean
  readonly scheme: "http" | "https"
  /** The fiber running the application, while it waits: for a client abort or a stop. */
  fiber: Fiber.Fiber<unknown, unknown> | undefined = undefined
  /** Watches the connection while the application waits, to interrupt it if the client goes away. */
  abortWatch: Fiber.Fiber<void> | undefined = undefined
  /** The response head was queued or written. */
  responded = false
  /** The connection may carry another request after this response. */
  persistent = false
  /** The connection now speaks another protocol; `switchedDone` completes when that conversation is over. */
  switched = false
  switchedDone: Deferred.Deferred<void> | undefined = undefined
  /** Body bytes read so far, against `MaxBodySize`. */
  bodyBytes = 0

  #method: string | undefined = undefined
  #location: { readonly url: string; readonly authority: string | undefined } | undefined = undefined
  #headers: Headers.Headers | undefined = undefined
  #body: Deferred.Deferred<ArrayBuffer, HttpServerError.HttpServerError> | undefined = undefined
  multipart: Effect.Effect<unknown, unknown, unknown> | undefined = undefined

  constructor(
    state: ConnectionState,
    head: HttpRequestHead,
    remoteAddress: Option.Option<string>,
    hasBody: boolean,
    scheme: "http" | "https"
  ) {
    this.state = state
    this.head = head
    this.remoteAddress = remoteAddress
    this.hasBody = hasBody
    this.scheme = scheme
  }

  /** The method, upper case (as Node reports it). */
  get method(): string {
    return this.#method ??= this.head.method.toUpperCase()
  }

  get location(): { readonly url: string; readonly authority: string | undefined } {
    return this.#location ??= locate(this.head.target)
  }

  get headers(): Headers.Headers {
    return this.#headers ??= headersOf(this.head.headers, this.location.authority)
  }

  /** The request as an absolute URL when its target is a path and it names a host; else the target as sent. */
  get originalUrl(): string {
    const target = this.head.target
    const host = this.headers.host
    return target.charCodeAt(0) === 0x2f && host !== undefined ? `${this.scheme}://${host}${target}` : target
  }

  /** The `MaxBodySize` in force, and a failure at once when the declared length is over it. */
  #limit(request: HttpServerRequest.HttpServerRequest, max: unknown): number | HttpServerError.HttpServerError {
    const limit = max === undefined ? Infinity : Number(max)
    const framing = this.head.framing
    return framing._tag === "Length" && framing.length > limit ? bodyTooLarge(request, limit) : limit
  }

  /** One batch of body bytes, counted against `limit`; fails with `Cause.Done` after the last. */
  #pull(
    request: HttpServerRequest.HttpServerRequest,
    limit: number
  ): Effect.Effect<NonEmptyReadonlyArray<Uint8Array>, HttpServerError.HttpServerError | Cause.Done> {
    return Effect.flatMap(
      Effect.mapError(this.state.pull, (error) => Cause.isDone(error) ? error : parseError(request, error)),
      (batch) => {
        for (const chunk of batch) this.bodyBytes += chunk.length
        return this.bodyBytes > limit ? Effect.fail(bodyTooLarge(request, limit)) : Effect.succeed(batch)
      }
    )
  }

  /** The body as a stream, pulled from the connection; `request` is named in errors. */
  stream(request: HttpServerRequest.HttpServerRequest): Stream.Stream<Uint8Array, HttpServerError.HttpServerError> {
    if (!this.hasBody) return Stream.empty
    return Stream.fromPull(Effect.withFiber((fiber) => {
      const limit = this.#limit(request, fiber.getRef(HttpIncomingMessage.MaxBodySize))
      return typeof limit === "number" ? Effect.succeed(this.#pull(request, limit)) : Effect.fail(limit)
    }))
  }

  /**
   * The whole body in one buffer, read once for every view (a second reader waits for the first). Pulled straight
   * from the connection, without a Stream: most bodies are read this way.
   */
  arrayBuffer(request: HttpServerRequest.HttpServerRequest): Effect.Effect<ArrayBuffer, HttpServerError.HttpServerError> {
    return Effect.withFiber((fiber) => {
      if (this.#body !== undefined) return Deferred.await(this.#body)
      const body = this.#body = Deferred.makeUnsafe<ArrayBuffer, HttpServerError.HttpServerError>()
      const limit = this.#limit(request, fiber.getRef(HttpIncomingMessage.MaxBodySize))
      const read = typeof limit !== "number"
        ? Effect.fail(limit)
        : !this.hasBody
        ? Effect.succeed(emptyBody)
        : Effect.suspend(() => {
          const chunks: Array<Uint8Array> = []
          const loop: Effect.Effect<ArrayBuffer, HttpServerError.HttpServerError | Cause.Done> = Effect.flatMap(
            this.#pull(request, limit),
            (batch) => {
              for (const chunk of batch) chunks.push(chunk)
              return loop
            }
          )
          return Effect.catchIf(loop, Cause.isDone, () => Effect.sync(() => concatToArrayBuffer(chunks))) as Effect.Effect<
            ArrayBuffer,
            HttpServerError.HttpServerError
          >
        })
      return Effect.onExit(read, (exit) => Effect.sync(() => Deferred.doneUnsafe(body, exit)))
    })
  }
}

const concatToArrayBuffer = (chunks: ReadonlyArray<Uint8Array>): ArrayBuffer => {
  let total = 0
  for (const chunk of chunks) total += chunk.length
  if (total === 0) return emptyBody
  // a fresh buffer of its own: chunks are views of larger read buffers
  if (chunks.length === 1) {
    const chunk = chunks[0]
    return chunk.buffer.slice(chunk.byteOffset, chunk.byteOffset + chunk.length) as ArrayBuffer
  }
  const out = new Uint8Array(total)
  let offset = 0
  for (const chunk of chunks) {
    out.set(chunk, offset)
    offset += chunk.length
  }
  return out.buffer
}

/** A body that cannot be read: `BodyTooLarge` (413) or `Parse` (400). */
export const parseError = (
  request: HttpServerRequest.HttpServerRequest,
  error: HttpRequestError
): HttpServerError.HttpServerError =>
  new HttpServerError.HttpServerError({
    reason: new HttpServerError.RequestParseError({
      request,
      reason: error.reason === "BodyTooLarge" ? "BodyTooLarge" : "Parse",
      description: error.message,
      cause: error
    })
  })

const bodyTooLarge = (request: HttpServerRequest.HttpServerRequest, limit: number): HttpServerError.HttpServerError =>
  new HttpServerError.HttpServerError({
    reason: new HttpServerError.RequestParseError({
      request,
      reason: "BodyTooLarge",
      description: `the body is larger than the maximum body size of ${limit} bytes`
    })
  })

/** Whether `cause` is an interruption by a client that left (effect's `ClientAbort`). */
export const isClientAbort = (cause: Cause.Cause<unknown>): boolean =>
  cause.reasons.some((reason) => reason._tag === "Interrupt" && reason.annotations.has(HttpServerError.ClientAbort.key))

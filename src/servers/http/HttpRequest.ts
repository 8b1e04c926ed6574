/**
 * The request an HTTP application sees: method, target (path and query), case-insensitive headers, and the body as
 * a pull-based `Stream<Uint8Array>` with `text`, `bytes` and `json(schema)` helpers. Body failures are one typed
 * error whose `status` the server answers with (400 for a body that does not decode).
 *
 * The server owns the bytes: a request is built from a parsed head (`Http1Parser`) and a body source that pulls the
 * parser's `Body` events on demand, so a request without a body costs no Stream machinery at all.
 */
import { Cause, Effect, Schema, Stream } from "effect"
import type { Pull } from "effect"
import type { NonEmptyReadonlyArray } from "effect/Array"
import type { HttpRequestHead } from "../../protocol/http/RequestHead.ts"

/**
 * Why reading or decoding a request body failed; `status` is the response the server sends when a handler lets
 * the error through (`InvalidBody` 400, `MalformedBody` the parser's status, `BodyTooLarge` 413,
 * `ConnectionClosed` 400 — the peer left, the answer is a formality).
 * @category errors
 */
export class HttpRequestError extends Schema.TaggedError<HttpRequestError>()("HttpRequestError", {
  reason: Schema.Literals(["InvalidBody", "MalformedBody", "BodyTooLarge", "ConnectionClosed"]),
  status: Schema.Number,
  message: Schema.String
}) {}

/**
 * Where a request's body comes from: pulls batches of body bytes, fails with `Cause.Done` after the last one.
 * Implemented by the server's connection loop.
 * @category models
 */
export interface BodySource {
  readonly pull: Pull.Pull<NonEmptyReadonlyArray<Uint8Array>, HttpRequestError>
}

const noBody: BodySource = { pull: Cause.done() as Pull.Pull<NonEmptyReadonlyArray<Uint8Array>, HttpRequestError> }

/**
 * Header fields with case-insensitive lookup. Names are stored lowercased (as the parser delivers them).
 * @category models
 */
export class Headers {
  /** The fields in wire order, names lowercased. */
  readonly entries: ReadonlyArray<readonly [string, string]>
  constructor(entries: ReadonlyArray<readonly [string, string]>) {
    this.entries = entries
  }
  /** The first value of `name` (any case), or `undefined`. */
  get(name: string): string | undefined {
    const lower = name.toLowerCase()
    const entries = this.entries
    for (let i = 0; i < entries.length; i++) if (entries[i][0] === lower) return entries[i][1]
    return undefined
  }
  /** Every value of `name`, in order. */
  getAll(name: string): Array<string> {
    const lower = name.toLowerCase()
    return this.entries.filter(([n]) => n === lower).map(([, v]) => v)
  }
  /** Whether a field `name` is present. */
  has(name: string): boolean {
    return this.get(name) !== undefined
  }
  /** A plain record; repeated fields are joined with ", " (RFC 9110 §5.3). */
  toRecord(): Record<string, string> {
    const out: Record<string, string> = {}
    for (const [name, value] of this.entries) out[name] = out[name] === undefined ? value : `${out[name]}, ${value}`
    return out
  }
}

const decoder = new TextDecoder()

const concat = (parts: ReadonlyArray<Uint8Array>, total: number): Uint8Array => {
  if (parts.length === 1) return parts[0]
  const out = new Uint8Array(total)
  let offset = 0
  for (const part of parts) {
    out.set(part, offset)
    offset += part.length
  }
  return out
}

const collect = (source: BodySource): Effect.Effect<Uint8Array, HttpRequestError> =>
  Effect.suspend(() => {
    const parts: Array<Uint8Array> = []
    let total = 0
    const loop: Effect.Effect<Uint8Array, HttpRequestError | Cause.Done> = Effect.flatMap(source.pull, (batch) => {
      for (const chunk of batch) {
        parts.push(chunk)
        total += chunk.length
      }
      return loop
    })
    return Effect.catchIf(loop, Cause.isDone, () => Effect.sync(() => concat(parts, total))) as Effect.Effect<
      Uint8Array,
      HttpRequestError
    >
  })

const discardAll = (source: BodySource): Effect.Effect<void, HttpRequestError> => {
  const loop: Effect.Effect<never, HttpRequestError | Cause.Done> = Effect.flatMap(source.pull, () => loop)
  return Effect.catchIf(loop, Cause.isDone, () => Effect.void) as Effect.Effect<void, HttpRequestError>
}

/**
 * One request. The body can be consumed once (as `body`, `bytes`, `text` or `json`), until the response has been
 * written; what the handler leaves unread is discarded by the server before the next request.
 * @category models
 */
export class HttpRequest {
  /** The method, case-sensitive (`GET`, `POST`, ...). */
  readonly method: string
  /** The request target as sent: `/path?query` (origin-form), or another form. */
  readonly target: string
  /** `HTTP/1.0` or `HTTP/1.1`. */
  readonly version: "HTTP/1.0" | "HTTP/1.1"
  /** The peer, as `Connection.peer` shows it. */
  readonly peer: string
  /** The parsed head, for what the fields above leave out (framing, keep-alive, Expect). */
  readonly head: HttpRequestHead
  readonly source: BodySource
  #path: string | undefined
  #query: URLSearchParams | undefined
  #headers: Headers | undefined

  constructor(head: HttpRequestHead, peer: string, source: BodySource | undefined) {
    this.method = head.method
    this.target = head.target
    this.version = head.version
    this.peer = peer
    this.head = head
    this.source = source ?? noBody
  }

  /** The header fields, case-insensitive (made on first use). */
  get headers(): Headers {
    return this.#headers ??= new Headers(this.head.headers)
  }

  /** The path of the target, without the query (`/a/b` for `/a/b?x=1`). */
  get path(): string {
    if (this.#path === undefined) {
      const q = this.target.indexOf("?")
      this.#path = q < 0 ? this.target : this.target.slice(0, q)
    }
    return this.#path
  }

  /** The query of the target, parsed (`x=1&y=2`); empty when there is none. */
  get query(): URLSearchParams {
    if (this.#query === undefined) {
      const q = this.target.indexOf("?")
      this.#query = new URLSearchParams(q < 0 ? "" : this.target.slice(q + 1))
    }
    return this.#query
  }

  /** Whether the request carries a body (Content-Length > 0 or chunked). */
  get hasBody(): boolean {
    return this.source !== noBody
  }

  /** The body as a stream of chunks, pulled from the connection as it is consumed. */
  get body(): Stream.Stream<Uint8Array, HttpRequestError> {
    return Stream.fromPull(Effect.succeed(this.source.pull))
  }

  /** The whole body in one buffer (bounded by the parser's body limit). */
  get bytes(): Effect.Effect<Uint8Array, HttpRequestError> {
    return collect(this.source)
  }

  /**
   * Reads the rest of the body and drops it, failing like `bytes` when the body is malformed or cut short: for an
   * application that answers only once the whole request has arrived, without keeping the body.
   */
  get discard(): Effect.Effect<void, HttpRequestError> {
    return discardAll(this.source)
  }

  /** The whole body decoded as UTF-8 (invalid sequences become U+FFFD). */
  get text(): Effect.Effect<string, HttpRequestError> {
    return Effect.map(collect(this.source), (bytes) => decoder.decode(bytes))
  }

  /** The body as JSON decoded with `schema`; bad JSON or a schema mismatch fail with `InvalidBody` (400). */
  json<S extends Schema.Constraint>(schema: S): Effect.Effect<S["Type"], HttpRequestError, S["DecodingServices"]> {
    return Effect.flatMap(this.text, (text) => {
      let value: unknown
      try {
        value = JSON.parse(text)
      } catch {
        return Effect.fail(invalidBody("the body is not valid JSON"))
      }
      return Effect.mapError(Schema.decodeUnknownEffect(schema)(value), (error) => invalidBody(error.message))
    })
  }
}

const invalidBody = (message: string) => new HttpRequestError({ reason: "InvalidBody", status: 400, message })

/**
 * Writing an effect `HttpServerResponse` on a netkit connection, body kind by body kind:
 *
 * - `Empty`, `Uint8Array` (text and JSON included): head and body in one buffer, queued with the other responses of
 *   the read (pipelining) and written without waiting when the socket takes it;
 * - `Stream`: chunked (or with the length the response declares), one write per pull, with the connection's
 *   backpressure;
 * - `Raw`: a Node `Readable` (file responses) streamed like `Stream`; a string or bytes as `Uint8Array`; anything
 *   else through a web `Response`; `FormData` too (which also gives the multipart boundary).
 *
 * Rules, as Node's http server keeps them: each cookie is its own `Set-Cookie` line; a HEAD response, 204, 205 and
 * 304 carry no body (and 204/205 no `Content-Length`); a status outside 200-599 becomes 500; header names and values
 * that could break the head are refused (500). A body that does not match its `Content-Length` closes the
 * connection, since the client could not tell where the response ends: before anything is sent when the body is
 * fixed, mid-body when it is streamed.
 */
import { Effect, Stream } from "effect"
import { Cookies } from "effect/http"
import type { HttpServerResponse } from "effect/http"
import * as NodeStream from "@effect/platform-node/NodeStream"
import { Buffer } from "node:buffer"
import { Readable } from "node:stream"
import { isFieldName, isHeadText, statusLine } from "../../../protocol/http/ResponseHead.ts"
import { writeStream } from "../../http/internal/connectionState.ts"
import type { ConnectionState } from "../../http/internal/connectionState.ts"
import { connectionLine, httpDate, modeOf, streamFraming } from "../../http/internal/wire.ts"
import type { Exchange } from "./exchange.ts"

const closeToken = /(?:^|[\s,])close(?:$|[\s,])/i

// Header names and most values repeat from response to response ("content-type", "text/plain"): remember the ones
// found valid, so that most heads are checked by lookups. Bounded: past the limit, strings are checked every time.
const maxKnownText = 1024
const knownNames = new Set<string>()
const knownValues = new Set<string>()

const validName = (name: string): boolean => {
  if (knownNames.has(name)) return true
  if (!isFieldName(name)) return false
  if (knownNames.size < maxKnownText) knownNames.add(name)
  return true
}

const validValue = (value: string): boolean => {
  if (knownValues.has(value)) return true
  if (!isHeadText(value)) return false
  if (knownValues.size < maxKnownText && value.length <= 256) knownValues.add(value)
  return true
}
const decimal = /^\d{1,15}$/

/** The parts of a head that do not depend on the body, and what the response's own fields say. */
interface Head {
  /** Status line, `Date` and the application's fields (cookies included), without framing or `Connection`. */
  readonly text: string
  /** The `content-length` the response declares, if any. */
  readonly contentLength: string | undefined
  readonly hasContentType: boolean
  /** The response's `Connection` asks to close. */
  readonly close: boolean
}

const encodeHead = (response: HttpServerResponse.HttpServerResponse, status: number): Head | string => {
  let fields = ""
  let contentLength: string | undefined
  let hasDate = false
  let hasContentType = false
  let close = false
  const headers = response.headers
  for (const name in headers) {
    const value = headers[name]!
    if (name === "content-length") {
      contentLength = value
      continue
    }
    // the framing and the connection's persistence are the server's to say
    if (name === "transfer-encoding") continue
    if (name === "connection") {
      if (closeToken.test(value)) close = true
      continue
    }
    if (name === "date") hasDate = true
    else if (name === "content-type") hasContentType = true
    if (!validName(name)) return `invalid header name ${JSON.stringify(name)}`
    if (!validValue(value)) return `invalid value of header ${name}`
    fields += `${name}: ${value}\r\n`
  }
  if (!Cookies.isEmpty(response.cookies)) {
    for (const cookie of Cookies.toSetCookieHeaders(response.cookies)) {
      if (!isHeadText(cookie)) return "invalid cookie"
      fields += `set-cookie: ${cookie}\r\n`
    }
  }
  const statusText = response.statusText
  const line = statusText !== undefined && isHeadText(statusText)
    ? `HTTP/1.1 ${status} ${statusText}\r\n`
    : statusLine(status)
  const text = hasDate ? line + fields : `${line}Date: ${httpDate()}\r\n${fields}`
  return { text, contentLength, hasContentType, close }
}

const cancelBody = (body: HttpServerResponse.HttpServerResponse["body"]): Effect.Effect<void> =>
  body._tag === "Raw" && body.body instanceof Readable ? Effect.sync(() => (body.body as Readable).destroy()) : Effect.void

const isReadable = (u: unknown): u is Readable =>
  typeof u === "object" && u !== null && "pipe" in u && typeof (u as Readable).pipe === "function"

/** Head and body in one buffer; a text body is encoded straight into it. */
const fixedBytes = (head: string, body: Uint8Array | string | undefined, length: number): Uint8Array => {
  const out = Buffer.allocUnsafe(head.length + length)
  out.write(head, 0, "latin1")
  if (typeof body === "string") out.write(body, head.length, "utf8")
  else if (body !== undefined) out.set(body, head.length)
  return out
}

/**
 * Writes `response` as the answer to `exchange`'s request. Done at once for fixed bodies (queued in the connection's
 * output); for streamed ones, the effect that streams the body. Never fails: a broken connection or a broken body
 * ends the connection instead.
 */
export const writeResponse = (
  exchange: Exchange,
  response: HttpServerResponse.HttpServerResponse
): Effect.Effect<void> => {
  // an upgraded connection carries another protocol now; a response is written once
  if (exchange.responded || exchange.switched) return cancelBody(response.body)
  exchange.responded = true
  const state = exchange.state
  const request = exchange.head
  const status = response.status
  if (!(Number.isInteger(status) && status >= 200 && status <= 599)) {
    return Effect.andThen(
      cancelBody(response.body),
      refuse(exchange, `HTTP response status ${status} is not a final status`)
    )
  }
  const head = encodeHead(response, status)
  if (typeof head === "string") return Effect.andThen(cancelBody(response.body), refuse(exchange, head))
  // Node hands a protocol-switch request to its upgrade handler, which closes after an HTTP answer; so does this
  const persistent = state.persists(request) && !request.upgrade && !head.close
  const version = request.version
  const body = response.body
  const noBody = exchange.method === "HEAD" || status === 204 || status === 205 || status === 304
  if (noBody) {
    // HEAD and 304 keep the length of the representation; 204 and 205 have none
    let length = ""
    if (status !== 204 && status !== 205) {
      const declared = head.contentLength ??
        (body._tag === "Uint8Array" ? String(body.contentLength) : body._tag === "Empty" ? "0" : undefined)
      if (declared !== undefined) length = `content-length: ${declared}\r\n`
    }
    queue(exchange, persistent, `${head.text}${length}${connectionLine(modeOf(persistent, version))}\r\n`)
    return cancelBody(body)
  }
  switch (body._tag) {
    case "Empty": {
      if (head.contentLength !== undefined && head.contentLength !== "0") return mismatch(exchange)
      queue(exchange, persistent, `${head.text}content-length: 0\r\n${connectionLine(modeOf(persistent, version))}\r\n`)
      return Effect.void
    }
    case "Uint8Array":
      return writeFixed(exchange, head, persistent, body.text ?? body.body, body.contentLength)
    case "Raw": {
      const raw = body.body
      if (typeof raw === "string") return writeFixed(exchange, head, persistent, raw, Buffer.byteLength(raw))
      if (raw instanceof Uint8Array) return writeFixed(exchange, head, persistent, raw, raw.length)
      if (isReadable(raw)) {
        const stream = NodeStream.fromReadable<Uint8Array, unknown>({ evaluate: () => raw, onError: (error) => error })
        return writeStreamed(exchange, head.text, head.contentLength, persistent, stream)
      }
      return writeWeb(exchange, head, persistent, new Response(raw as ConstructorParameters<typeof Response>[0]), false)
    }
    case "FormData":
      return writeWeb(exchange, head, persistent, new Response(body.formData), true)
    case "Stream":
      return writeStreamed(exchange, head.text, head.contentLength, persistent, body.stream)
  }
}

const queue = (exchange: Exchange, persistent: boolean, head: string): void => {
  exchange.persistent = persistent
  exchange.state.out.push(Buffer.from(head, "latin1"))
}

const writeFixed = (
  exchange: Exchange,
  head: Head,
  persistent: boolean,
  body: Uint8Array | string,
  length: number
): Effect.Effect<void> => {
  if (head.contentLength !== undefined && head.contentLength !== String(length)) return mismatch(exchange)
  const text = `${head.text}content-length: ${length}\r\n${connectionLine(modeOf(persistent, exchange.head.version))}\r\n`
  exchange.persistent = persistent
  exchange.state.out.push(fixedBytes(text, body, length))
  return Effect.void
}

const writeStreamed = (
  exchange: Exchange,
  headText: string,
  contentLength: string | undefined,
  persistent: boolean,
  body: Stream.Stream<Uint8Array, unknown>
): Effect.Effect<void> => {
  if (contentLength !== undefined && !decimal.test(contentLength)) return mismatch(exchange)
  const state: ConnectionState = exchange.state
  const framing = streamFraming(contentLength === undefined ? undefined : Number(contentLength), exchange.head.version)
  const keep = persistent && framing._tag !== "Close"
  const framingLine = framing._tag === "Length"
    ? `content-length: ${framing.length}\r\n`
    : framing._tag === "Chunked"
    ? "transfer-encoding: chunked\r\n"
    : ""
  const head = Buffer.from(`${headText}${framingLine}${connectionLine(modeOf(keep, exchange.head.version))}\r\n`, "latin1")
  exchange.persistent = false
  return writeStream(state, head, body, framing, keep).pipe(
    Effect.match({
      onSuccess: (kept) => {
        exchange.persistent = kept
        if (!kept) state.closing = true
      },
      onFailure: () => {
        state.closing = true
      }
    })
  )
}

/** A body a web `Response` can read: its stream, chunked; `FormData` also sets the content type (the boundary). */
const writeWeb = (
  exchange: Exchange,
  head: Head,
  persistent: boolean,
  web: Response,
  formData: boolean
): Effect.Effect<void> => {
  let text = head.text
  const contentType = web.headers.get("content-type")
  if (contentType !== null && (formData || !head.hasContentType)) {
    if (formData && head.hasContentType) text = text.replace(/^content-type: .*\r\n/m, "")
    text += `content-type: ${contentType}\r\n`
  }
  const source = web.body
  const stream = source === null
    ? Stream.empty
    : Stream.fromReadableStream({ evaluate: () => source, onError: (error) => error })
  return writeStreamed(exchange, text, head.contentLength, persistent, stream)
}

const mismatch = (exchange: Exchange): Effect.Effect<void> =>
  Effect.andThen(
    Effect.logWarning("HTTP response body does not match its content-length; the connection is closed"),
    Effect.sync(() => {
      exchange.persistent = false
      exchange.state.closing = true
    })
  )

/** A response that cannot be sent as it is: 500 instead (nothing of it was sent yet). */
const refuse = (exchange: Exchange, why: string): Effect.Effect<void> =>
  Effect.andThen(
    Effect.logWarning(`HTTP response refused: ${why}`),
    Effect.sync(() => {
      const persistent = exchange.state.persists(exchange.head) && !exchange.head.upgrade
      const text = `${statusLine(500)}Date: ${httpDate()}\r\n`
      exchange.persistent = persistent
      exchange.state.out.push(Buffer.from(
        `${text}content-length: 0\r\n${connectionLine(modeOf(persistent, exchange.head.version))}\r\n`,
        "latin1"
      ))
    })
  )

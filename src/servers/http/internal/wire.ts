/**
 * Response bytes for the HTTP server: the cached `Date` value, status lines, and the serialisation of a response
 * head (plus a fixed body) into one buffer. Header text was validated when the response was made, so nothing here
 * checks it again.
 */
import { Buffer } from "node:buffer"
import { reasonPhrase, statusLine } from "../../../protocol/http/ResponseHead.ts"
import type { HttpResponse } from "../HttpResponse.ts"
import { text } from "../HttpResponse.ts"

let dateText = ""
let dateExpires = 0

/**
 * The IMF-fixdate of now (RFC 9110 §5.6.7), formatted at most once per second.
 */
export const httpDate = (): string => {
  const now = Date.now()
  if (now >= dateExpires) {
    dateText = new Date(now).toUTCString()
    dateExpires = now - (now % 1000) + 1000
  }
  return dateText
}

/**
 * How the connection continues after a response, and the `Connection` field that says so.
 * `Persistent11`: nothing to say; `Close`: `Connection: close`; `Persistent10`: `Connection: keep-alive`.
 */
export const Mode = { Persistent11: 0, Close: 1, Persistent10: 2 } as const
export type Mode = (typeof Mode)[keyof typeof Mode]

const connectionLines = ["", "Connection: close\r\n", "Connection: keep-alive\r\n"] as const

/** The `Connection` field line that `mode` calls for (none for a persistent HTTP/1.1 response). */
export const connectionLine = (mode: Mode): string => connectionLines[mode]

/** RFC 9110 §6.4.1: 1xx, 204 and 304 responses never have content. */
export const bodyAllowed = (status: number): boolean => status >= 200 && status !== 204 && status !== 304

const toBytes = (head: string, body: Uint8Array | undefined): Uint8Array => {
  const headLength = head.length
  const out = Buffer.allocUnsafe(headLength + (body === undefined ? 0 : body.length))
  out.write(head, 0, "latin1")
  if (body !== undefined) out.set(body, headLength)
  return out
}

/**
 * A response with a fixed (or no) body, head and body in one buffer; `headOnly` for HEAD requests (the head says
 * what a GET would get). Cached on the response per variant for the current Date value.
 */
export const encodeFixed = (response: HttpResponse, mode: Mode, headOnly: boolean): Uint8Array => {
  const date = httpDate()
  const variant = mode * 2 + (headOnly ? 1 : 0)
  if (response.cacheDate === date) {
    const cached = response.cache[variant]
    if (cached !== undefined) return cached
  } else {
    response.cacheDate = date
    response.cache.fill(undefined)
  }
  const status = response.status
  const body = response.body._tag === "Bytes" ? response.body.bytes : undefined
  let head = `${statusLine(status)}Date: ${date}\r\n${response.headerText}`
  const withBody = bodyAllowed(status)
  if (withBody) head += `Content-Length: ${body === undefined ? 0 : body.length}\r\n`
  head += `${connectionLines[mode]}\r\n`
  const out = toBytes(head, withBody && !headOnly ? body : undefined)
  response.cache[variant] = out
  return out
}

/**
 * How a streamed body is delimited: by its known length, by chunks (HTTP/1.1), or (HTTP/1.0 without a length) by the
 * end of the connection.
 */
export type StreamFraming =
  | { readonly _tag: "Length"; readonly length: number }
  | { readonly _tag: "Chunked" }
  | { readonly _tag: "Close" }

/** The framing of a streamed body of `contentLength` (when known) for a client speaking `version`. */
export const streamFraming = (contentLength: number | undefined, version: "HTTP/1.0" | "HTTP/1.1"): StreamFraming =>
  contentLength !== undefined
    ? { _tag: "Length", length: contentLength }
    : version === "HTTP/1.1"
    ? { _tag: "Chunked" }
    : { _tag: "Close" }

/** The `Mode` of a response: persistent or not, and how the client's version says so. */
export const modeOf = (persistent: boolean, version: "HTTP/1.0" | "HTTP/1.1"): Mode =>
  !persistent ? Mode.Close : version === "HTTP/1.1" ? Mode.Persistent11 : Mode.Persistent10

/** The head of a streamed response. */
export const encodeStreamHead = (response: HttpResponse, mode: Mode, framing: StreamFraming): Uint8Array => {
  let head = `${statusLine(response.status)}Date: ${httpDate()}\r\n${response.headerText}`
  if (bodyAllowed(response.status)) {
    if (framing._tag === "Length") head += `Content-Length: ${framing.length}\r\n`
    else if (framing._tag === "Chunked") head += "Transfer-Encoding: chunked\r\n"
  }
  return toBytes(`${head}${connectionLines[mode]}\r\n`, undefined)
}

/** `100 Continue` (RFC 9110 §15.2.1). */
export const continueBytes: Uint8Array = Buffer.from("HTTP/1.1 100 Continue\r\n\r\n", "latin1")

const errorResponses: Array<HttpResponse | undefined> = []

/**
 * The response for a status the server decides (parse errors, failures, timeouts): its reason phrase as a short
 * text body, never anything from the request or the failure.
 */
export const errorResponse = (status: number): HttpResponse =>
  errorResponses[status] ??= text(`${reasonPhrase(status) || "Error"}\n`, { status, contentType: "text/plain" })

/**
 * Responses an HTTP application returns: fixed bodies (`text`, `json`, `bytes`, `empty`) and streamed bodies
 * (`stream`, chunked unless the length is given). Everything that does not depend on the request is validated and
 * encoded once, when the response is made: the header lines as text, a fixed body as bytes. The server adds the
 * status line, `Date`, the framing and `Connection`, and caches the whole encoded response of a fixed body per
 * second, so an application that returns one constant response costs no encoding per request.
 *
 * Framing is the server's: `Content-Length` and `Transfer-Encoding` given by the application are refused (a
 * defect, answered with 500), `Connection: close` is honoured (the server closes after this response).
 */
import { Result } from "effect"
import type { Stream } from "effect"
import { Buffer } from "node:buffer"
import { encodeResponseHead } from "../../protocol/http/ResponseHead.ts"

/**
 * A response body: none, fixed bytes, or a stream (with its length when known).
 * @category models
 */
export type Body =
  | { readonly _tag: "Empty" }
  | { readonly _tag: "Bytes"; readonly bytes: Uint8Array }
  | {
    readonly _tag: "Stream"
    readonly stream: Stream.Stream<Uint8Array, unknown>
    readonly contentLength: number | undefined
  }

/**
 * Options of the response constructors. `headers` are validated (tokens and field values: no CR/LF can be
 * injected); `contentType` replaces the constructor's default `Content-Type`.
 * @category models
 */
export interface Options {
  /** Default 200 (204 for `empty`). */
  readonly status?: number | undefined
  readonly headers?: Readonly<Record<string, string>> | ReadonlyArray<readonly [string, string]> | undefined
  readonly contentType?: string | undefined
}

/**
 * A response. Build it with the constructors below; treat it as immutable (the server may reuse it for many
 * requests and caches its encoding).
 * @category models
 */
export class HttpResponse {
  readonly status: number
  /** The application's header fields (Content-Type included), as given. */
  readonly headers: ReadonlyArray<readonly [string, string]>
  readonly body: Body
  /** `Name: value\r\n` for every header field: encoded once. */
  readonly headerText: string
  /** The application asked to close the connection after this response. */
  readonly close: boolean
  /** Encoded responses of a fixed body for the current `Date`, per variant (see the server). */
  cacheDate = ""
  readonly cache: Array<Uint8Array | undefined> = [undefined, undefined, undefined, undefined, undefined, undefined]

  constructor(status: number, headers: ReadonlyArray<readonly [string, string]>, body: Body) {
    let text = ""
    let close = false
    const kept: Array<readonly [string, string]> = []
    for (const [name, value] of headers) {
      const lower = name.toLowerCase()
      if (lower === "content-length" || lower === "transfer-encoding") {
        throw new TypeError(`HttpResponse: ${name} is set by the server from the body`)
      }
      if (lower === "connection") {
        if (/(^|[\s,])close($|[\s,])/i.test(value)) close = true
        continue
      }
      kept.push([name, value])
      text += `${name}: ${value}\r\n`
    }
    // The encoder validates status, names and values with the grammar; it throws a typed error as a defect.
    if (kept.length > 0 || status < 100 || status > 599 || !Number.isInteger(status)) {
      const checked = encodeResponseHead({ status, headers: kept })
      if (Result.isFailure(checked)) throw checked.failure
    }
    this.status = status
    this.headers = kept
    this.body = body
    this.headerText = text
    this.close = close
  }
}

const toEntries = (
  headers: Options["headers"]
): Array<readonly [string, string]> =>
  headers === undefined ? [] : Array.isArray(headers) ? [...headers] : Object.entries(headers)

const make = (options: Options | undefined, defaultStatus: number, contentType: string | undefined, body: Body) => {
  const entries = toEntries(options?.headers)
  const type = options?.contentType ?? contentType
  if (type !== undefined && !entries.some(([name]) => name.toLowerCase() === "content-type")) {
    entries.unshift(["Content-Type", type])
  }
  return new HttpResponse(options?.status ?? defaultStatus, entries, body)
}

/**
 * A UTF-8 text response (`Content-Type: text/plain; charset=utf-8` unless overridden), with `Content-Length`.
 * @category constructors
 */
export const text = (body: string, options?: Options): HttpResponse =>
  make(options, 200, "text/plain; charset=utf-8", { _tag: "Bytes", bytes: Buffer.from(body, "utf8") })

/**
 * A JSON response (`application/json`): `JSON.stringify(value)`.
 * @category constructors
 */
export const json = (value: unknown, options?: Options): HttpResponse =>
  make(options, 200, "application/json", { _tag: "Bytes", bytes: Buffer.from(JSON.stringify(value) ?? "null", "utf8") })

/**
 * A response with these bytes as its body (`application/octet-stream` unless overridden). The bytes are not
 * copied: do not change them while the response is in use.
 * @category constructors
 */
export const bytes = (body: Uint8Array, options?: Options): HttpResponse =>
  make(options, 200, "application/octet-stream", { _tag: "Bytes", bytes: body })

/**
 * A streamed body: sent with `Content-Length` when `contentLength` is given (the stream must produce exactly that
 * many bytes, else the connection is closed), chunked otherwise (HTTP/1.0 clients: unframed, then close). A
 * stream failure after the head was sent closes the connection.
 * @category constructors
 */
export const stream = (
  body: Stream.Stream<Uint8Array, unknown>,
  options?: Options & { readonly contentLength?: number | undefined }
): HttpResponse => {
  const length = options?.contentLength
  if (length !== undefined && !(Number.isSafeInteger(length) && length >= 0)) {
    throw new RangeError(`HttpResponse.stream: contentLength must be a non-negative integer, got ${length}`)
  }
  return make(options, 200, "application/octet-stream", { _tag: "Stream", stream: body, contentLength: length })
}

/**
 * A response without a body (default status 204).
 * @category constructors
 */
export const empty = (status = 204, options?: Omit<Options, "status">): HttpResponse =>
  make({ ...options, status }, status, undefined, { _tag: "Empty" })

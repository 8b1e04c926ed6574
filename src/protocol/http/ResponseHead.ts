/**
 * The HTTP/1.1 response head: the status line and header fields as Schemas, a reason-phrase table, a fast
 * serializer into one buffer, and the chunked transfer coding of a response body. The serializer validates what
 * users give it with the same grammar as the Schemas, so a header name or value can never inject CR/LF (response
 * splitting): invalid input is a typed `HttpEncodeError` (a `Result`), or a thrown one from the `Unsafe` twin.
 *
 *   status-line = HTTP-version SP status-code SP [ reason-phrase ] CRLF
 *   head        = status-line *( field-name ":" SP field-value CRLF ) CRLF
 *   chunk       = chunk-size(hex) CRLF chunk-data CRLF          last-chunk = "0" CRLF *( field-line CRLF ) CRLF
 */
import { Effect, Result, Schema, SchemaIssue, SchemaTransformation } from "effect"
import type { SchemaAST } from "effect"
import { isFieldValue, isToken } from "./internal/grammar.ts"
import { latin1Bytes, splitHeadText } from "./internal/headText.ts"
import { HeaderField, HttpVersion } from "./RequestHead.ts"

// RFC 9112 §4: reason-phrase = 1*( HTAB / SP / VCHAR / obs-text ), optional
const reasonPhrasePattern = /^[\t\x20-\x7e\x80-\xff]*$/

/**
 * A status code: three digits, 100 to 599 (RFC 9110 §15).
 * @category schemas
 */
export const StatusCode = Schema.Int.check(Schema.isBetween({ minimum: 100, maximum: 599 }))

/**
 * A reason phrase (RFC 9112 §4): text without CR, LF or other control characters but HTAB; may be empty.
 * @category schemas
 */
export const ReasonPhrase = Schema.String.check(
  Schema.isPattern(reasonPhrasePattern, { expected: "a reason phrase without control characters" })
)

/**
 * A response head: version, status, reason phrase and header fields in order, names as given.
 * @category schemas
 */
export const HttpResponseHead = Schema.Struct({
  version: HttpVersion,
  status: StatusCode,
  reason: ReasonPhrase,
  headers: Schema.Array(HeaderField)
})

/**
 * A response head.
 * @category models
 */
export type HttpResponseHead = typeof HttpResponseHead.Type

/**
 * The reason phrases of the registered status codes (RFC 9110 §15 and the IANA registry).
 * @category constants
 */
export const reasonPhrases: Readonly<Record<number, string>> = {
  100: "Continue",
  101: "Switching Protocols",
  102: "Processing",
  103: "Early Hints",
  200: "OK",
  201: "Created",
  202: "Accepted",
  203: "Non-Authoritative Information",
  204: "No Content",
  205: "Reset Content",
  206: "Partial Content",
  207: "Multi-Status",
  208: "Already Reported",
  226: "IM Used",
  300: "Multiple Choices",
  301: "Moved Permanently",
  302: "Found",
  303: "See Other",
  304: "Not Modified",
  305: "Use Proxy",
  307: "Temporary Redirect",
  308: "Permanent Redirect",
  400: "Bad Request",
  401: "Unauthorized",
  402: "Payment Required",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  406: "Not Acceptable",
  407: "Proxy Authentication Required",
  408: "Request Timeout",
  409: "Conflict",
  410: "Gone",
  411: "Length Required",
  412: "Precondition Failed",
  413: "Content Too Large",
  414: "URI Too Long",
  415: "Unsupported Media Type",
  416: "Range Not Satisfiable",
  417: "Expectation Failed",
  421: "Misdirected Request",
  422: "Unprocessable Content",
  423: "Locked",
  424: "Failed Dependency",
  425: "Too Early",
  426: "Upgrade Required",
  428: "Precondition Required",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  451: "Unavailable For Legal Reasons",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
  505: "HTTP Version Not Supported",
  506: "Variant Also Negotiates",
  507: "Insufficient Storage",
  508: "Loop Detected",
  510: "Not Extended",
  511: "Network Authentication Required"
}

/**
 * The registered reason phrase of `status`, or `""` (an empty reason phrase is valid, RFC 9112 §4).
 * @category encoding
 */
export const reasonPhrase = (status: number): string => reasonPhrases[status] ?? ""

/**
 * A response head or trailer the serializer refuses. The message names the offending header by position (and by
 * name when the name itself is valid), never by value.
 * @category errors
 */
export class HttpEncodeError extends Schema.TaggedError<HttpEncodeError>()("HttpEncodeError", {
  reason: Schema.Literals(["InvalidStatus", "InvalidReasonPhrase", "InvalidHeaderName", "InvalidHeaderValue"]),
  message: Schema.String
}) {}

/**
 * What a handler gives to the serializer: `version` defaults to HTTP/1.1, `reason` to {@link reasonPhrase}.
 * @category models
 */
export interface ResponseHeadInput {
  readonly status: number
  readonly reason?: string | undefined
  readonly version?: HttpVersion | undefined
  readonly headers?: ReadonlyArray<readonly [string, string]> | undefined
}

const statusLineCache: Array<string | undefined> = []

/**
 * The HTTP/1.1 status line of `status` with its registered reason phrase, CRLF included; made once per status.
 * `status` must be an integer from 100 to 599 (not checked here).
 * @category encoding
 */
export const statusLine = (status: number): string =>
  statusLineCache[status] ??= `HTTP/1.1 ${status} ${reasonPhrase(status)}\r\n`

const statusLineOf = (version: HttpVersion, status: number, reason: string | undefined): string =>
  reason === undefined && version === "HTTP/1.1"
    ? statusLine(status)
    : `${version} ${status} ${reason ?? reasonPhrase(status)}\r\n`

/**
 * Whether `text` can go into a response head, as a reason phrase or a field value, without breaking it: one byte per
 * character (latin1) and no control character but HTAB, so no CR or LF can inject a line. Laxer than the field-value
 * grammar, which also refuses whitespace at either end; Node's http server sends such values too.
 * @category guards
 */
export const isHeadText = (text: string): boolean => {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c > 0xff || c === 0x7f || (c < 0x20 && c !== 0x09)) return false
  }
  return true
}

/**
 * Whether `name` is a field name (RFC 9110 §5.1: a token).
 * @category guards
 */
export const isFieldName = (name: string): boolean => isToken(name)

const headerError = (reason: "InvalidHeaderName" | "InvalidHeaderValue", index: number, name: string) =>
  new HttpEncodeError({
    reason,
    message: reason === "InvalidHeaderName"
      ? `header #${index}: invalid field name`
      : `header #${index} (${name.length <= 64 ? name : `${name.slice(0, 64)}...`}): invalid field value ` +
        "(control character, leading/trailing whitespace, or a character above U+00FF)"
  })

const appendFields = (
  text: string,
  headers: ReadonlyArray<readonly [string, string]>
): Result.Result<string, HttpEncodeError> => {
  for (let i = 0; i < headers.length; i++) {
    const [name, value] = headers[i]
    if (!isToken(name)) return Result.fail(headerError("InvalidHeaderName", i, name))
    if (!isFieldValue(value)) return Result.fail(headerError("InvalidHeaderValue", i, name))
    text += `${name}: ${value}\r\n`
  }
  return Result.succeed(`${text}\r\n`)
}

/**
 * Serialises a response head into one buffer (latin1 bytes): status line, header fields in order, empty line.
 * Header names must be tokens and values field-values (RFC 9110 §5.5): anything that could inject a line, such as
 * CR or LF, fails with `HttpEncodeError`. Framing headers (Content-Length, Transfer-Encoding) are the caller's.
 * @category encoding
 */
export const encodeResponseHead = (head: ResponseHeadInput): Result.Result<Uint8Array, HttpEncodeError> => {
  const status = head.status
  if (!Number.isInteger(status) || status < 100 || status > 599) {
    return Result.fail(new HttpEncodeError({ reason: "InvalidStatus", message: "status code outside 100-599" }))
  }
  if (head.reason !== undefined && !isHeadText(head.reason)) {
    return Result.fail(
      new HttpEncodeError({ reason: "InvalidReasonPhrase", message: "control character in the reason phrase" })
    )
  }
  const line = statusLineOf(head.version ?? "HTTP/1.1", status, head.reason)
  return Result.map(appendFields(line, head.headers ?? []), latin1Bytes)
}

/**
 * {@link encodeResponseHead} that throws the `HttpEncodeError`, for callers that already validated their headers.
 * @category encoding
 */
export const encodeResponseHeadUnsafe = (head: ResponseHeadInput): Uint8Array =>
  Result.getOrThrow(encodeResponseHead(head))

/**
 * Serialises a response head as wire text, without validation (encode through {@link HttpResponseHeadFromString}
 * or {@link encodeResponseHead} to validate).
 * @category encoding
 */
export const formatResponseHead = (head: HttpResponseHead): string => {
  let out = `${head.version} ${head.status} ${head.reason}\r\n`
  for (const [name, value] of head.headers) out += `${name}: ${value}\r\n`
  return `${out}\r\n`
}

const ResponseHeadParts = Schema.Struct({
  version: Schema.String,
  status: Schema.Number,
  reason: Schema.String,
  headers: Schema.Array(Schema.Tuple([Schema.String, Schema.String]))
})
type ResponseHeadParts = typeof ResponseHeadParts.Type

const splitResponseHead = (text: string): ResponseHeadParts | string => {
  const split = splitHeadText(text)
  if (typeof split === "string") return split
  const line = split.startLine
  // RFC 9112 §4: HTTP-version SP 3DIGIT SP reason-phrase
  const space = line.indexOf(" ")
  const code = line.slice(space + 1, space + 4)
  if (space < 0 || line.charCodeAt(space + 4) !== 0x20 || !/^[0-9]{3}$/.test(code)) {
    return "the status line is not version SP 3DIGIT SP reason"
  }
  return { version: line.slice(0, space), status: Number(code), reason: line.slice(space + 5), headers: split.fields }
}

/**
 * Codec between the wire text of a response head and an {@link HttpResponseHead}; names keep their case.
 * @category schemas
 */
export const HttpResponseHeadFromString = Schema.String.pipe(
  Schema.decodeTo(
    ResponseHeadParts,
    SchemaTransformation.transformEffect<ResponseHeadParts, string>({
      decode: (text, options: SchemaAST.ParseOptions) => {
        const parts = splitResponseHead(text)
        return typeof parts === "string"
          ? Effect.fail(new SchemaIssue.InvalidValue({ message: parts }, text, options))
          : Effect.succeed(parts)
      },
      encode: (parts) => Effect.succeed(formatResponseHead(parts as HttpResponseHead))
    })
  ),
  Schema.decodeTo(HttpResponseHead)
)

/**
 * The CRLF that ends each chunk's data; write it after the data framed by {@link encodeChunkHeader}. Shared: do
 * not mutate.
 * @category constants
 */
export const crlf: Uint8Array = Uint8Array.of(0x0d, 0x0a)

/**
 * The last chunk without trailers, `0 CRLF CRLF`: ends a chunked body. Shared: do not mutate.
 * @category constants
 */
export const lastChunk: Uint8Array = Uint8Array.of(0x30, 0x0d, 0x0a, 0x0d, 0x0a)

/**
 * The line that announces a chunk of `size` bytes (`hex CRLF`), for writing header, data and {@link crlf} without
 * copying the data. `size` must be a positive safe integer (a zero size would end the body): a defect otherwise.
 * @category encoding
 */
export const encodeChunkHeader = (size: number): Uint8Array => {
  if (!Number.isSafeInteger(size) || size <= 0) throw new RangeError(`chunk size must be positive, got ${size}`)
  return latin1Bytes(`${size.toString(16)}\r\n`)
}

/**
 * One chunk of a chunked body in one buffer: `hex(size) CRLF data CRLF` (RFC 9112 §7.1). Empty data gives an empty
 * buffer, since a zero-size chunk would end the body.
 * @category encoding
 */
export const encodeChunk = (data: Uint8Array): Uint8Array => {
  if (data.length === 0) return new Uint8Array(0)
  const size = data.length.toString(16)
  const out = new Uint8Array(size.length + data.length + 4)
  for (let i = 0; i < size.length; i++) out[i] = size.charCodeAt(i)
  out[size.length] = 0x0d
  out[size.length + 1] = 0x0a
  out.set(data, size.length + 2)
  out[out.length - 2] = 0x0d
  out[out.length - 1] = 0x0a
  return out
}

/**
 * The last chunk with trailer fields (RFC 9112 §7.1.2), validated like header fields.
 * @category encoding
 */
export const encodeLastChunk = (
  trailers: ReadonlyArray<readonly [string, string]> = []
): Result.Result<Uint8Array, HttpEncodeError> => {
  if (trailers.length === 0) return Result.succeed(lastChunk)
  return Result.map(appendFields("0\r\n", trailers), latin1Bytes)
}

/**
 * The HTTP/1.1 request head as Schemas: the grammar of the request line (RFC 9112 §3) and of header fields
 * (RFC 9110 §5), the request head with its derived message semantics (body framing, persistence, Expect), and a
 * codec between a head and its wire text. The Schemas are the contract; `Http1Parser` implements the same grammar
 * as an incremental byte scanner, and the tests check that both agree.
 *
 *   request-line = method SP request-target SP HTTP-version CRLF
 *   field-line   = field-name ":" OWS field-value OWS CRLF
 *   head         = request-line *( field-line ) CRLF
 */
import { Effect, Schema, SchemaIssue, SchemaTransformation } from "effect"
import type { SchemaAST } from "effect"
import { HttpParseError } from "./HttpParseError.ts"
import { latin1Bytes, splitHeadText } from "./internal/headText.ts"
import type { Semantics } from "./internal/semantics.ts"
import { analyzeRequest, collectField, makeFramingFields } from "./internal/semantics.ts"

// RFC 9110 §5.6.2: token = 1*tchar
const tokenPattern = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
const lowercaseTokenPattern = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/
// RFC 9110 §5.5: field-value = *field-content (no leading/trailing whitespace, latin1 only, HTAB the only CTL)
const fieldValuePattern = /^(?:[\x21-\x7e\x80-\xff](?:[\t\x20-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?)?$/
// RFC 9112 §3.2.1: origin-form = absolute-path [ "?" query ], checked for the target alphabet (VCHAR)
const originFormPattern = /^\/[\x21-\x7e]*$/
// RFC 9112 §3.2.2: absolute-form = absolute-URI (RFC 3986 §3.1 scheme, then the target alphabet)
const absoluteFormPattern = /^[A-Za-z][A-Za-z0-9+.-]*:[\x21-\x7e]*$/
// RFC 9112 §3.2.3: authority-form = uri-host ":" port (RFC 3986 §3.2.2: IP-literal / IPv4address / reg-name)
const authorityFormPattern =
  /^(?:\[[A-Za-z0-9\-._~!$&'()*+,;=:]+\]|(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})+):([0-9]{1,5})$/
// RFC 9110 §7.2: Host = uri-host [ ":" port ]
const hostPattern =
  /^(?:\[[A-Za-z0-9\-._~!$&'()*+,;=:]+\]|(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*)(?::[0-9]*)?$/

/**
 * A request method: any token (RFC 9110 §9.1), case-sensitive. Unknown methods are the application's business.
 * @category schemas
 */
export const Method = Schema.String.check(Schema.isPattern(tokenPattern, { expected: "a method token" }))

/**
 * The origin-form of a request target: an absolute path with an optional query (RFC 9112 §3.2.1).
 * @category schemas
 */
export const OriginForm = Schema.String.check(
  Schema.isPattern(originFormPattern, { expected: "an origin-form target" })
)

/**
 * The absolute-form of a request target: an absolute URI, as sent to proxies (RFC 9112 §3.2.2).
 * @category schemas
 */
export const AbsoluteForm = Schema.String.check(
  Schema.isPattern(absoluteFormPattern, { expected: "an absolute-form target" })
)

/**
 * The authority-form of a request target, `host:port`, used by CONNECT only (RFC 9112 §3.2.3).
 * @category schemas
 */
export const AuthorityForm = Schema.String.check(
  Schema.makeFilter((s: string) => {
    const match = authorityFormPattern.exec(s)
    return match !== null && Number(match[1]) <= 65535
  }, { expected: "an authority-form target (host:port)" })
)

/**
 * The asterisk-form of a request target, used by a server-wide OPTIONS only (RFC 9112 §3.2.4).
 * @category schemas
 */
export const AsteriskForm = Schema.Literal("*")

/**
 * A request target in one of its four forms (RFC 9112 §3.2). Which form a method may use is checked on the head.
 * @category schemas
 */
export const RequestTarget = Schema.Union([OriginForm, AbsoluteForm, AuthorityForm, AsteriskForm])

/**
 * The protocol versions this layer speaks. Any other well-formed `HTTP/x.y` is refused with 505.
 * @category schemas
 */
export const HttpVersion = Schema.Literals(["HTTP/1.0", "HTTP/1.1"])

/**
 * A protocol version, `"HTTP/1.0"` or `"HTTP/1.1"`.
 * @category models
 */
export type HttpVersion = typeof HttpVersion.Type

/**
 * A header field name: a token (RFC 9110 §5.1), any case.
 * @category schemas
 */
export const HeaderName = Schema.String.check(Schema.isPattern(tokenPattern, { expected: "a header name token" }))

/**
 * A header field name as a parsed request carries it: lowercased once by the parser.
 * @category schemas
 */
export const LowercaseHeaderName = Schema.String.check(
  Schema.isPattern(lowercaseTokenPattern, { expected: "a lowercase header name token" })
)

/**
 * A header field value (RFC 9110 §5.5): visible characters, SP and HTAB inside, obs-text (one byte per character,
 * as latin1), no leading or trailing whitespace, never CR, LF, NUL or another control character.
 * @category schemas
 */
export const HeaderValue = Schema.String.check(
  Schema.isPattern(fieldValuePattern, { expected: "a header value without control characters" })
)

/**
 * A `Host` header value (RFC 9110 §7.2): `uri-host [ ":" port ]`, possibly empty.
 * @category schemas
 */
export const Host = Schema.String.check(Schema.isPattern(hostPattern, { expected: "a Host value (host[:port])" }))

/**
 * One header field line as `[name, value]`.
 * @category schemas
 */
export const HeaderField = Schema.Tuple([HeaderName, HeaderValue])

/**
 * How the body of a request is delimited (RFC 9112 §6.3): none (length zero), a `Content-Length`, or `chunked`.
 * @category schemas
 */
export const BodyFraming = Schema.Union([
  Schema.TaggedStruct("None", {}),
  Schema.TaggedStruct("Length", {
    length: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }))
  }),
  Schema.TaggedStruct("Chunked", {})
])

/**
 * How the body of a request is delimited.
 * @category models
 */
export type BodyFraming = typeof BodyFraming.Type

/**
 * What a request head says on the wire: request line and header fields in order, names lowercased.
 * @category schemas
 */
export const RequestHeadFields = Schema.Struct({
  method: Method,
  target: RequestTarget,
  version: HttpVersion,
  headers: Schema.Array(Schema.Tuple([LowercaseHeaderName, HeaderValue]))
})

/**
 * The wire content of a request head.
 * @category models
 */
export type RequestHeadFields = typeof RequestHeadFields.Type

const analyze = (head: RequestHeadFields, out: Semantics) => {
  const fields = makeFramingFields()
  for (const [name, value] of head.headers) collectField(fields, name, value)
  return analyzeRequest(head.method, head.target, head.version, fields, out)
}

const scratch = (): Semantics => ({ framing: { _tag: "None" }, keepAlive: false, expectContinue: false, upgrade: false })

const sameFraming = (a: BodyFraming, b: BodyFraming): boolean =>
  a._tag === b._tag && (a._tag !== "Length" || (b._tag === "Length" && a.length === b.length))

/**
 * A parsed request head: the wire content plus what it means for the message, derived once: the body framing,
 * whether the connection persists after this exchange (`keepAlive`, from the version and `Connection`), whether
 * the client waits for `100 Continue` (`expectContinue`), and whether it asks to switch protocols after this request
 * (`upgrade`: an `Upgrade` field listed in `Connection` in HTTP/1.1, or a CONNECT). The check refuses heads that
 * break a message-level rule (Host, target form, framing) or whose derived fields disagree with their header fields.
 * @category schemas
 */
export const HttpRequestHead = Schema.Struct({
  ...RequestHeadFields.fields,
  framing: BodyFraming,
  keepAlive: Schema.Boolean,
  expectContinue: Schema.Boolean,
  upgrade: Schema.Boolean
}).check(Schema.makeFilter((head) => {
  const out = scratch()
  const reason = analyze(head, out)
  if (reason !== undefined) return HttpParseError.fromReason(reason).message
  if (!sameFraming(out.framing, head.framing)) return "framing disagrees with the header fields"
  if (out.keepAlive !== head.keepAlive) return "keepAlive disagrees with the version and Connection"
  if (out.expectContinue !== head.expectContinue) return "expectContinue disagrees with Expect"
  if (out.upgrade !== head.upgrade) return "upgrade disagrees with Upgrade, Connection and the method"
  return true
}))

/**
 * A parsed request head.
 * @category models
 */
export type HttpRequestHead = typeof HttpRequestHead.Type

/**
 * Serialises the wire content of a request head as latin1 text, CRLF line endings, final empty line included.
 * Does not validate: encode through {@link HttpRequestHeadFromString} for that.
 * @category encoding
 */
export const formatRequestHead = (head: RequestHeadFields): string => {
  let out = `${head.method} ${head.target} ${head.version}\r\n`
  for (const [name, value] of head.headers) out += `${name}: ${value}\r\n`
  return `${out}\r\n`
}

/**
 * Serialises the wire content of a request head to bytes (latin1, one byte per character).
 * @category encoding
 */
export const encodeRequestHead = (head: RequestHeadFields): Uint8Array => latin1Bytes(formatRequestHead(head))

/**
 * The request head text split into its parts, nothing validated yet.
 */
const RequestHeadParts = Schema.Struct({
  method: Schema.String,
  target: Schema.String,
  version: Schema.String,
  headers: Schema.Array(Schema.Tuple([Schema.String, Schema.String]))
})
type RequestHeadParts = typeof RequestHeadParts.Type

const splitHead = (text: string): RequestHeadParts | string => {
  const split = splitHeadText(text)
  if (typeof split === "string") return split
  const requestLine = split.startLine.split(" ")
  if (requestLine.length !== 3) return "the request line is not method SP target SP version"
  return {
    method: requestLine[0],
    target: requestLine[1],
    version: requestLine[2],
    headers: split.fields.map(([name, value]) => [name.toLowerCase(), value] as const)
  }
}

const invalid = (input: unknown, message: string, options: SchemaAST.ParseOptions) =>
  Effect.fail(new SchemaIssue.InvalidValue({ message }, input, options))

/**
 * Codec between the wire text of a request head (latin1, CRLF line endings, final empty line) and an
 * {@link HttpRequestHead}. Decoding checks the grammar with the Schemas above and the message-level rules; names
 * come out lowercased. Encoding writes the wire fields only (the derived fields follow from them).
 * @category schemas
 */
export const HttpRequestHeadFromString = Schema.String.pipe(
  Schema.decodeTo(
    RequestHeadParts,
    SchemaTransformation.transformEffect<RequestHeadParts, string>({
      decode: (text, options) => {
        const parts = splitHead(text)
        return typeof parts === "string" ? invalid(text, parts, options) : Effect.succeed(parts)
      },
      encode: (parts) => Effect.succeed(formatRequestHead(parts as RequestHeadFields))
    })
  ),
  Schema.decodeTo(RequestHeadFields),
  Schema.decodeTo(
    HttpRequestHead,
    SchemaTransformation.transformEffect<HttpRequestHead, RequestHeadFields>({
      decode: (fields, options) => {
        const out = scratch()
        const reason = analyze(fields, out)
        return reason !== undefined
          ? invalid(fields, HttpParseError.fromReason(reason).message, options)
          : Effect.succeed({ ...fields, ...out })
      },
      encode: (head) =>
        Effect.succeed({ method: head.method, target: head.target, version: head.version, headers: head.headers })
    })
  )
)

/**
 * The value of the first header field named `name` (lowercase), or `undefined`.
 * @category combinators
 */
export const getHeader = (
  headers: ReadonlyArray<readonly [string, string]>,
  name: string
): string | undefined => {
  for (let i = 0; i < headers.length; i++) {
    if (headers[i][0] === name) return headers[i][1]
  }
  return undefined
}

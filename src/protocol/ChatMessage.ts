/**
 * Chat messages (chat wire protocol, version 1): the schemas of what clients and the server say, and the codecs
 * between a frame payload (a UTF-8 JSON object with a string field `type`) and a message. Framing is left to
 * `LengthPrefixedFraming`; who may say what and when is left to the chat server.
 *
 * Characters are counted as Unicode code points (what `[...s].length` counts), not UTF-16 code units, so an emoji
 * counts as one character, as the spec's "characters" reads.
 */
import { Effect, Option, Result, Schema, SchemaIssue, SchemaTransformation } from "effect"
import * as LengthPrefixedFraming from "./LengthPrefixedFraming.ts"

/**
 * Most characters (code points) in a login name.
 *
 * @category constants
 */
export const maxNameLength = 32

/**
 * Most characters (code points) in a `say` text.
 *
 * @category constants
 */
export const maxTextLength = 4096

// Counts code points; a lone surrogate counts as one, like the string iterator does.
const codePointLength = (s: string): number => {
  let n = s.length
  for (let i = 0; i < s.length - 1; i++) {
    const c = s.charCodeAt(i)
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1)
      if (d >= 0xdc00 && d <= 0xdfff) {
        n--
        i++
      }
    }
  }
  return n
}

const hasCharacterCountBetween = (s: string, min: number, max: number): boolean => {
  // A code point is 1 or 2 code units, which settles most strings without scanning them.
  const atLeast = Math.ceil(s.length / 2)
  if (atLeast >= min && s.length <= max) return true
  if (s.length < min || atLeast > max) return false
  const n = codePointLength(s)
  return n >= min && n <= max
}

const isCharacterCountBetween = (min: number, max: number) =>
  Schema.makeFilter((s: string) => hasCharacterCountBetween(s, min, max) || `Expected ${min} to ${max} characters`, {
    expected: `${min} to ${max} characters`
  })

// C0, DEL and C1.
const controlCharacter = /[\u0000-\u001f\u007f-\u009f]/

const isReservedName = (s: string): boolean =>
  // toUpperCase also catches look-alikes such as "ſerver" (U+017F uppercases to "S").
  s.length === 6 && (s.toLowerCase() === "server" || s.toUpperCase() === "SERVER")

/**
 * A login name: 1–32 characters, no control characters (C0, DEL, C1), no `@` (it separates name and address in
 * an identity), and not `server` in any letter case.
 *
 * @category schemas
 */
export const Name = Schema.String.check(
  isCharacterCountBetween(1, maxNameLength),
  Schema.makeFilter((s: string) => !controlCharacter.test(s) || "Expected no control characters"),
  Schema.makeFilter((s: string) => !s.includes("@") || "Expected no \"@\""),
  Schema.makeFilter((s: string) => !isReservedName(s) || "Expected a name other than \"server\"")
)

/**
 * A `say` text: 1–4096 characters, anything else allowed (line breaks included).
 *
 * @category schemas
 */
export const Text = Schema.String.check(isCharacterCountBetween(1, maxTextLength))

/**
 * A number of logged-in clients.
 *
 * @category schemas
 */
export const Count = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))

/**
 * Every error code of the spec's error table.
 *
 * @category schemas
 */
export const ErrorCode = Schema.Literals([
  "frame_too_large",
  "empty_frame",
  "bad_message",
  "bad_name",
  "name_taken",
  "not_logged_in",
  "login_timeout",
  "slow_consumer"
])

/**
 * @category models
 */
export type ErrorCode = typeof ErrorCode.Type

/**
 * `{"type":"login","name":…}`: the first frame a client sends.
 *
 * @category schemas
 */
export const Login = Schema.Struct({ type: Schema.Literal("login"), name: Name })

/**
 * @category models
 */
export type Login = typeof Login.Type

/**
 * `{"type":"say","text":…}`: a line for everybody else in the room.
 *
 * @category schemas
 */
export const Say = Schema.Struct({ type: Schema.Literal("say"), text: Text })

/**
 * @category models
 */
export type Say = typeof Say.Type

/**
 * Anything a client may send.
 *
 * @category schemas
 */
export const ClientMessage = Schema.Union([Login, Say])

/**
 * @category models
 */
export type ClientMessage = typeof ClientMessage.Type

/**
 * Reply to a valid login: the identity (`name@address`), the peer address and the logged-in count (this client
 * included).
 *
 * @category schemas
 */
export const Welcome = Schema.Struct({
  type: Schema.Literal("welcome"),
  name: Schema.String,
  address: Schema.String,
  count: Count
})

/**
 * @category models
 */
export type Welcome = typeof Welcome.Type

/**
 * Someone else logged in.
 *
 * @category schemas
 */
export const Joined = Schema.Struct({ type: Schema.Literal("joined"), client: Schema.String, count: Count })

/**
 * @category models
 */
export type Joined = typeof Joined.Type

/**
 * A relayed `say`, from the identity `from`.
 *
 * @category schemas
 */
export const Message = Schema.Struct({ type: Schema.Literal("message"), from: Schema.String, text: Schema.String })

/**
 * @category models
 */
export type Message = typeof Message.Type

/**
 * A logged-in client left; `count` is taken after it left.
 *
 * @category schemas
 */
export const Left = Schema.Struct({ type: Schema.Literal("left"), client: Schema.String, count: Count })

/**
 * @category models
 */
export type Left = typeof Left.Type

/**
 * An error report with an optional human-readable `detail`.
 *
 * @category schemas
 */
export const ErrorMessage = Schema.Struct({
  type: Schema.Literal("error"),
  code: ErrorCode,
  detail: Schema.optionalKey(Schema.String)
})

/**
 * @category models
 */
export type ErrorMessage = typeof ErrorMessage.Type

/**
 * The server is stopping and is about to close the connection.
 *
 * @category schemas
 */
export const Shutdown = Schema.Struct({ type: Schema.Literal("shutdown") })

/**
 * @category models
 */
export type Shutdown = typeof Shutdown.Type

/**
 * Anything the server may send.
 *
 * @category schemas
 */
export const ServerMessage = Schema.Union([Welcome, Joined, Message, Left, ErrorMessage, Shutdown])

/**
 * @category models
 */
export type ServerMessage = typeof ServerMessage.Type

const utf8Decoder = new TextDecoder("utf-8", { fatal: true })
const utf8Encoder = new TextEncoder()

/**
 * Bytes <-> text; decoding rejects invalid UTF-8 instead of replacing it with U+FFFD.
 *
 * @category schemas
 */
export const Utf8String = Schema.Uint8Array.pipe(Schema.decodeTo(
  Schema.String,
  SchemaTransformation.transformEffect<string, Uint8Array>({
    decode: (bytes, options) => {
      try {
        return Effect.succeed(utf8Decoder.decode(bytes))
      } catch {
        return Effect.fail(new SchemaIssue.InvalidValue({ message: "Expected valid UTF-8" }, bytes, options))
      }
    },
    encode: (text) => Effect.succeed(utf8Encoder.encode(text))
  })
))

/**
 * The whole client -> server contract as one schema: a frame payload <-> a {@link ClientMessage}.
 * {@link decodeClientMessage} and {@link encodeClientMessage} implement the same contract, with failures
 * classified for the server.
 *
 * @category schemas
 */
export const ClientMessageFromBytes = Utf8String.pipe(Schema.decodeTo(Schema.fromJsonString(ClientMessage)))

/**
 * The whole server -> client contract as one schema: a frame payload <-> a {@link ServerMessage}.
 *
 * @category schemas
 */
export const ServerMessageFromBytes = Utf8String.pipe(Schema.decodeTo(Schema.fromJsonString(ServerMessage)))

/**
 * Which step of decoding (or which encoding check) failed; finer than the wire code, for tests, logs and metrics.
 *
 * @category schemas
 */
export const ChatMessageErrorKind = Schema.Literals([
  "invalid_utf8",
  "invalid_json",
  "not_an_object",
  "unknown_type",
  "invalid_field"
])

/**
 * @category models
 */
export type ChatMessageErrorKind = typeof ChatMessageErrorKind.Type

/**
 * A payload is not an acceptable message. `reason` is the wire code to answer with: `bad_name` for a `login`
 * whose `name` is missing, not a string or breaks the name rule (the server then closes the connection),
 * `bad_message` for everything else (the frame is dropped). `detail` is a human-readable sentence meant for the
 * `detail` of the `error` frame.
 *
 * @category errors
 */
export class ChatMessageError extends Schema.TaggedError<ChatMessageError>()("ChatMessageError", {
  reason: Schema.Literals(["bad_message", "bad_name"]),
  kind: ChatMessageErrorKind,
  detail: Schema.String
}) {
  override get message(): string {
    return `${this.reason}: ${this.detail}`
  }
}

const badMessage = (kind: ChatMessageErrorKind, detail: string): ChatMessageError =>
  new ChatMessageError({ reason: "bad_message", kind, detail })

const formatIssue = SchemaIssue.makeFormatterStandardSchemaV1()

// First issue as "field: problem"; the reason depends on the field only for `login.name`.
const invalidField = (type: string, issue: SchemaIssue.Issue): ChatMessageError => {
  const first = formatIssue(issue).issues[0]
  const path = (first?.path ?? []).map((segment) => String(typeof segment === "object" ? segment.key : segment))
  const problem = first?.message ?? "invalid value"
  const detail = path.length > 0 ? `${path.join(".")}: ${problem}` : problem
  const reason = type === "login" && path[0] === "name" ? "bad_name" : "bad_message"
  return new ChatMessageError({ reason, kind: "invalid_field", detail })
}

// Echoed input is capped so an error frame stays small whatever the client sent.
const quote = (s: string): string => JSON.stringify(s.length > 32 ? `${s.slice(0, 32)}…` : s)

interface MemberCodec<A> {
  readonly decode: (input: unknown) => Result.Result<A, Schema.SchemaError>
  readonly encode: (message: unknown) => Result.Result<unknown, Schema.SchemaError>
}

const memberCodec = <A>(schema: Schema.Codec<A, unknown>): MemberCodec<A> => ({
  decode: Schema.decodeUnknownResult(schema),
  encode: Schema.encodeUnknownResult(schema)
})

// Members by `type`: a Map, so "constructor" or "__proto__" never resolve to an inherited property.
const clientCodecs = new Map<string, MemberCodec<ClientMessage>>([
  ["login", memberCodec(Login)],
  ["say", memberCodec(Say)]
])

const serverCodecs = new Map<string, MemberCodec<ServerMessage>>([
  ["welcome", memberCodec(Welcome)],
  ["joined", memberCodec(Joined)],
  ["message", memberCodec(Message)],
  ["left", memberCodec(Left)],
  ["error", memberCodec(ErrorMessage)],
  ["shutdown", memberCodec(Shutdown)]
])

const decodeWith = <A>(
  codecs: ReadonlyMap<string, MemberCodec<A>>,
  bytes: Uint8Array
): Result.Result<A, ChatMessageError> => {
  let text: string
  try {
    text = utf8Decoder.decode(bytes)
  } catch {
    return Result.fail(badMessage("invalid_utf8", "payload is not valid UTF-8"))
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (error) {
    return Result.fail(badMessage("invalid_json", `payload is not valid JSON (${(error as Error).message})`))
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    return Result.fail(badMessage("not_an_object", `payload is not a JSON object (got ${jsonKind(json)})`))
  }
  const type = (json as { readonly type?: unknown }).type
  if (typeof type !== "string") {
    return Result.fail(badMessage("unknown_type", "payload has no string field \"type\""))
  }
  const member = codecs.get(type)
  if (member === undefined) {
    return Result.fail(badMessage("unknown_type", `unknown message type ${quote(type)}`))
  }
  return Result.mapError(member.decode(json), (error) => invalidField(type, error.issue))
}

const jsonKind = (json: unknown): string =>
  json === null ? "null" : Array.isArray(json) ? "an array" : `a ${typeof json}`

const encodeWith = <A extends { readonly type: string }>(
  codecs: ReadonlyMap<string, MemberCodec<A>>,
  message: A
): Result.Result<string, ChatMessageError> => {
  const member = codecs.get(message.type)
  if (member === undefined) {
    return Result.fail(badMessage("unknown_type", `unknown message type ${quote(String(message.type))}`))
  }
  // The schema output holds the declared fields only, in declaration order (`type` first).
  const encoded = member.encode(message)
  return Result.isSuccess(encoded)
    ? Result.succeed(JSON.stringify(encoded.success))
    : Result.fail(invalidField(message.type, encoded.failure.issue))
}

// Bounded so that one oversized message does not pin a large buffer for the life of the process.
const maxScratchBytes = 3 * LengthPrefixedFraming.defaultMaxFrameBytes
let scratch = new Uint8Array(1024)

// Header and UTF-8 payload in one buffer of the exact size: encode into a reused scratch, then copy once.
const frameOf = (json: string): Uint8Array => {
  // UTF-8 needs at most 3 bytes per UTF-16 code unit.
  const worstCase = json.length * 3
  if (worstCase > maxScratchBytes) return LengthPrefixedFraming.encodeFrame(utf8Encoder.encode(json))
  if (scratch.length < worstCase) {
    scratch = new Uint8Array(Math.min(maxScratchBytes, Math.max(worstCase, scratch.length * 2)))
  }
  const { written } = utf8Encoder.encodeInto(json, scratch)
  const frame = new Uint8Array(LengthPrefixedFraming.headerBytes + written)
  new DataView(frame.buffer).setUint32(0, written)
  frame.set(scratch.subarray(0, written), LengthPrefixedFraming.headerBytes)
  return frame
}

/**
 * Decodes a frame payload from a client. Never throws: invalid UTF-8, invalid JSON, a non-object, a missing or
 * unknown `type` and a field breaking its rule all fail with a {@link ChatMessageError} (`bad_name` for a bad
 * login name). Unknown extra fields are dropped.
 *
 * @category decoding
 */
export const decodeClientMessage = (bytes: Uint8Array): Result.Result<ClientMessage, ChatMessageError> =>
  decodeWith(clientCodecs, bytes)

/**
 * Encodes a client message as a frame payload (what a client sends). Fails, with the same reasons the server
 * would give, when a field breaks its rule, e.g. `bad_name` for an invalid login name.
 *
 * @category encoding
 */
export const encodeClientMessage = (message: ClientMessage): Result.Result<Uint8Array, ChatMessageError> =>
  Result.map(encodeWith(clientCodecs, message), (json) => utf8Encoder.encode(json))

/**
 * Encodes a client message as a whole frame (header and payload in one buffer).
 *
 * @category encoding
 */
export const encodeClientFrame = (message: ClientMessage): Result.Result<Uint8Array, ChatMessageError> =>
  Result.map(encodeWith(clientCodecs, message), frameOf)

/**
 * Decodes a frame payload from the server (what a client receives). Never throws; failures are `bad_message`.
 *
 * @category decoding
 */
export const decodeServerMessage = (bytes: Uint8Array): Result.Result<ServerMessage, ChatMessageError> =>
  decodeWith(serverCodecs, bytes)

/**
 * Encodes a server message as a frame payload. Cheap enough for the broadcast path (a schema check and one
 * `JSON.stringify`); encode once and send the same bytes to every peer. Fails only when the message breaks its
 * schema (e.g. a negative `count`), which is a bug in the caller.
 *
 * @category encoding
 */
export const encodeServerMessage = (message: ServerMessage): Result.Result<Uint8Array, ChatMessageError> =>
  Result.map(encodeWith(serverCodecs, message), (json) => utf8Encoder.encode(json))

/**
 * Encodes a server message as a whole frame (header and payload in one buffer), ready to write. No frame limit is
 * applied: a valid chat message stays far below the default 64 KiB (at worst about 25 KB, for 4096 characters
 * that JSON escapes as `\uXXXX`).
 *
 * @category encoding
 */
export const encodeServerFrame = (message: ServerMessage): Result.Result<Uint8Array, ChatMessageError> =>
  Result.map(encodeWith(serverCodecs, message), frameOf)

/**
 * Builds an `error` message; `detail` is left out of the JSON when not given.
 *
 * @category constructors
 */
export const errorMessage = (code: ErrorCode, detail?: string | undefined): ErrorMessage =>
  detail === undefined ? { type: "error", code } : { type: "error", code, detail }

/**
 * The `error` message that answers a decoding or framing failure: the reason is the code, a decoding failure's
 * detail is the detail. Framing errors carry no detail (`{"type":"error","code":"frame_too_large"}`, as in the
 * spec); a `truncated_frame` has no answer, as the peer is gone.
 *
 * @category constructors
 */
export const errorMessageOf = (
  error: ChatMessageError | LengthPrefixedFraming.FramingError
): Option.Option<ErrorMessage> =>
  error._tag === "ChatMessageError"
    ? Option.some(errorMessage(error.reason, error.detail))
    : error.reason === "truncated_frame"
    ? Option.none()
    : Option.some(errorMessage(error.reason))

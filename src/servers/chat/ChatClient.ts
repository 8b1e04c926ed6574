/**
 * The chat client: connect over TCP or a Unix path (over TLS if asked), log in, send lines, receive the server's
 * messages as a `Stream`, close. Frames and messages are the same codecs the server uses (`LengthPrefixedFraming`,
 * `ChatMessage`); rendering for people is left to the program (see `examples/chat.ts`).
 */
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import { Cause, Effect, Option, Queue, Result, Schema, Stream } from "effect"
import type { Duration, Scope } from "effect"
import { Socket } from "effect/socket"
import * as Tls from "../../core/Tls.ts"
import * as ChatMessage from "../../protocol/ChatMessage.ts"
import * as LengthPrefixedFraming from "../../protocol/LengthPrefixedFraming.ts"

/**
 * Default time to wait for the `welcome` after sending `login`.
 *
 * @category constants
 */
export const defaultLoginTimeout: Duration.Input = "10 seconds"

/**
 * Connect over TLS: the server's certificate must chain to `ca` (default: the system's CAs) and name
 * `servername` (default: the host; give it for a Unix path or an address the certificate does not name).
 *
 * @category models
 */
export interface TlsOptions {
  readonly ca?: Tls.Pem | undefined
  readonly servername?: string | undefined
}

/**
 * Where and as whom to connect. `host` defaults to `127.0.0.1`; give `path` instead for a Unix socket.
 * `maxFrameBytes` bounds the frames accepted from the server (default 65536). `tls` connects over TLS.
 *
 * @category models
 */
export type Options =
  & ({ readonly host?: string | undefined; readonly port: number } | { readonly path: string })
  & {
    readonly name: string
    readonly loginTimeout?: Duration.Input | undefined
    readonly maxFrameBytes?: number | undefined
    readonly tls?: TlsOptions | undefined
  }

/**
 * Why the client failed.
 *
 * - `ConnectFailed`: no connection (refused, unreachable, timed out).
 * - `Rejected`: the server answered the login with an `error` frame; `code` is the wire code.
 * - `LoginTimeout`: no `welcome` within the login timeout.
 * - `ConnectionLost`: the connection broke or closed before the operation finished.
 * - `ProtocolError`: the server sent bytes that are not valid frames or messages.
 * - `InvalidInput`: what the caller asked to send breaks a rule (e.g. an empty text); nothing was sent.
 *
 * @category errors
 */
export class ChatClientError extends Schema.TaggedError<ChatClientError>()("ChatClientError", {
  reason: Schema.Literals(["ConnectFailed", "Rejected", "LoginTimeout", "ConnectionLost", "ProtocolError", "InvalidInput"]),
  code: Schema.optionalKey(ChatMessage.ErrorCode),
  message: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {}

/**
 * A logged-in chat session.
 *
 * - `identity`, `address`, `count`: from the `welcome` (`count` as it was then).
 * - `messages`: every server message after the `welcome`, in order; it ends when the server closes the
 *   connection (after a `shutdown`, or after an `error` that closes) and fails with `ConnectionLost` when the
 *   connection breaks. Consume it once.
 * - `say`: sends one line; fails with `InvalidInput` for an empty or over-long text.
 * - `close`: closes the connection (also done when the scope closes).
 *
 * @category models
 */
export interface ChatClient {
  readonly identity: string
  readonly address: string
  readonly count: number
  readonly messages: Stream.Stream<ChatMessage.ServerMessage, ChatClientError>
  readonly say: (text: string) => Effect.Effect<void, ChatClientError>
  readonly close: Effect.Effect<void>
}

const lost = (cause: unknown) =>
  new ChatClientError({ reason: "ConnectionLost", message: "the connection to the chat server was lost", cause })

const fromSocketError = (error: Socket.SocketError): ChatClientError => {
  if (error.reason._tag !== "SocketOpenError") return lost(error)
  // Node's own words say what went wrong (refused, or which certificate check failed); effect's only that it did.
  const cause = error.reason.cause
  const detail = cause instanceof Error ? cause.message : error.message
  return new ChatClientError({ reason: "ConnectFailed", message: `cannot connect: ${detail}`, cause: error })
}

const readCa = (ca: Tls.Pem) =>
  Effect.mapError(
    Tls.readPem(ca, "CA certificate"),
    (error) => new ChatClientError({ reason: "ConnectFailed", message: error.message, cause: error })
  )

const invalid = (error: ChatMessage.ChatMessageError) =>
  new ChatClientError({ reason: "InvalidInput", message: error.detail, cause: error })

/**
 * Connects, logs in and waits for the `welcome`. The connection belongs to the current scope.
 *
 * @category constructors
 */
export const connect = (options: Options): Effect.Effect<ChatClient, ChatClientError, Scope.Scope> =>
  Effect.gen(function*() {
    const login = yield* Effect.fromResult(ChatMessage.encodeClientFrame({ type: "login", name: options.name })).pipe(
      Effect.mapError(invalid)
    )
    const endpoint = "path" in options ? { path: options.path } : { host: options.host ?? "127.0.0.1", port: options.port }
    const socket = options.tls === undefined
      ? yield* NodeSocket.makeNet(endpoint)
      : yield* NodeSocket.makeTls({
        ...endpoint,
        ...(options.tls.ca === undefined ? {} : { ca: yield* readCa(options.tls.ca) }),
        ...(options.tls.servername === undefined ? {} : { servername: options.tls.servername })
      })
    const pull = yield* Socket.readerBytes(socket).pipe(Effect.mapError(fromSocketError))
    const writer = yield* socket.writer
    const write = (frame: Uint8Array) => Effect.mapError(writer.write(frame), fromSocketError)

    // Incoming frames, decoded as they arrive; the queue ends when the server closes the connection.
    const incoming = yield* Queue.unbounded<ChatMessage.ServerMessage, ChatClientError | Cause.Done>()
    const decoder = LengthPrefixedFraming.makeDecoder({ maxFrameBytes: options.maxFrameBytes })
    const frames: Array<Uint8Array> = []
    yield* Effect.gen(function*() {
      while (true) {
        const chunks = yield* pull
        for (const chunk of chunks) {
          frames.length = 0
          const error = decoder.pushInto(chunk, frames)
          for (const frame of frames) {
            const message = ChatMessage.decodeServerMessage(frame)
            if (Result.isFailure(message)) {
              return yield* new ChatClientError({
                reason: "ProtocolError",
                message: `the server sent an invalid message: ${message.failure.detail}`
              })
            }
            Queue.offerUnsafe(incoming, message.success)
          }
          if (error !== undefined) {
            return yield* new ChatClientError({ reason: "ProtocolError", message: error.message })
          }
        }
      }
    }).pipe(
      Effect.catch((error) =>
        error instanceof ChatClientError
          ? Queue.fail(incoming, error)
          // End of file is the server closing normally; anything else broke the connection.
          : error.reason._tag === "SocketCloseError" && error.reason.code === 1000
          ? Queue.end(incoming)
          : Queue.fail(incoming, fromSocketError(error))
      ),
      Effect.forkScoped({ startImmediately: true })
    )

    yield* write(login)
    const first = yield* Queue.take(incoming).pipe(
      Effect.timeoutOption(options.loginTimeout ?? defaultLoginTimeout),
      Effect.catch((error) => Effect.fail(Cause.isDone(error) ? lost(error) : error))
    )
    if (Option.isNone(first)) {
      return yield* new ChatClientError({ reason: "LoginTimeout", message: "no welcome from the chat server in time" })
    }
    const welcome = first.value
    if (welcome.type !== "welcome") {
      return yield* welcome.type === "error"
        ? new ChatClientError({
          reason: "Rejected",
          code: welcome.code,
          message: `login refused: ${welcome.code}${welcome.detail === undefined ? "" : ` (${welcome.detail})`}`
        })
        : new ChatClientError({ reason: "ProtocolError", message: `expected welcome, got ${welcome.type}` })
    }

    return {
      identity: welcome.name,
      address: welcome.address,
      count: welcome.count,
      messages: Stream.fromQueue(incoming),
      say: (text) =>
        Effect.fromResult(ChatMessage.encodeClientFrame({ type: "say", text })).pipe(
          Effect.mapError(invalid),
          Effect.flatMap(write)
        ),
      close: Effect.ignore(writer.write(new Socket.CloseEvent()))
    } satisfies ChatClient
  })

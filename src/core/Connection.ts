/**
 * A stream handler's view of one accepted connection: incoming bytes, writes with backpressure,
 * half-close, close and the two addresses.
 *
 * The same interface is implemented over a Node socket, in this process or in the child process or
 * worker thread the socket was passed to (and over a message channel for a Unix-stream connection
 * that a worker cannot own), so a handler runs unchanged under every strategy. This file is only
 * the contract.
 *
 * @since 0.1.0
 */
import type { Cause, Pull, Stream } from "effect"
import { Effect, Schema } from "effect"
import type { NonEmptyReadonlyArray } from "effect/Array"
import type { NetAddress } from "effect/net"

/**
 * Why a connection operation failed.
 *
 * - `ReadFailed` / `WriteFailed`: the peer reset the connection or the socket broke.
 * - `IdleTimeout`: nothing was read or written for the server's idle timeout; the connection was closed.
 * - `Closed`: the connection was already closed (by `close`, the server, or a shutdown).
 *
 * @category errors
 */
export class ConnectionError extends Schema.TaggedError<ConnectionError>()("ConnectionError", {
  reason: Schema.Literals(["ReadFailed", "WriteFailed", "IdleTimeout", "Closed"]),
  message: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {}

/**
 * One accepted stream connection (TCP or Unix).
 *
 * Reading is pull-based: bytes are read from the kernel only when the handler asks, so a slow
 * handler slows its peer down (TCP flow control) instead of buffering without bound.
 *
 * @category models
 */
export interface Connection {
  /** Server-unique number, for logs. */
  readonly id: number
  /** `"tcp"` or `"unix"`. */
  readonly transport: "tcp" | "unix"
  /** The address the server listens on. */
  readonly localAddress: NetAddress.SocketAddress
  /** The peer's address; `undefined` for Unix-socket peers, which are unnamed. */
  readonly remoteAddress: NetAddress.InetAddress | undefined
  /** The peer as people read it: `"127.0.0.1:51234"`, or `"local"` for a Unix-socket peer. */
  readonly peer: string
  /**
   * The next batch of received chunks. Fails with `Cause.Done` once the peer has half-closed
   * (end of stream) and with `ConnectionError` when the connection breaks.
   */
  readonly read: Pull.Pull<NonEmptyReadonlyArray<Uint8Array>, ConnectionError>
  /**
   * Reads batches and gives each to `step` until `step` returns a value (not `undefined`), which the effect then
   * succeeds with; fails like `read`. The same as `read` in a loop, except that where the implementation can, `step`
   * runs as the bytes arrive, without waking the handler's fiber for batches it handles entirely. For engines that
   * answer most messages in plain code (an HTTP keep-alive request, say): they save a fiber resume per message.
   * `step` must not wait on anything; it returns what the fiber should do next.
   */
  readonly readWhile: <A>(step: (batch: NonEmptyReadonlyArray<Uint8Array>) => A | undefined) => Pull.Pull<A, ConnectionError>
  /**
   * `readWhile` with lent bytes: the batch `step` gets is valid only while `step` runs (and, when
   * `step` returns a value, until the next read), so the connection can read into buffers it reuses
   * and allocate nothing per read. Bytes `step` passes to this connection's `tryWriteAll` stay
   * valid until written. Copy whatever else you keep. For relays and echoes that pass bytes on as
   * they come: on a bulk stream this removes the garbage collections that fresh read buffers cost.
   * Decided by the first read of a connection; an implementation may lend owned bytes.
   */
  readonly readWhileLent: <A>(step: (batch: NonEmptyReadonlyArray<Uint8Array>) => A | undefined) => Pull.Pull<A, ConnectionError>
  /**
   * Received bytes as a stream that ends when the peer half-closes. Built on `read`: consume one
   * or the other, once.
   */
  readonly bytes: Stream.Stream<Uint8Array, ConnectionError>
  /** Writes one chunk; waits while the socket's send buffer is full. */
  readonly write: (chunk: Uint8Array | string) => Effect.Effect<void, ConnectionError>
  /** Writes several chunks as one batch (one syscall where possible); waits while the send buffer is full. */
  readonly writeAll: (chunks: ReadonlyArray<Uint8Array | string>) => Effect.Effect<void, ConnectionError>
  /**
   * Writes a batch now, without an effect, if the connection can take it: `true` when the chunks were handed to the
   * socket as `writeAll` would, `false` when nothing was written because the connection is closed or its send
   * buffer is already full. On `false`, use `writeAll`, which waits (and reports the error). A write may overshoot
   * the send buffer by one batch, as with `writeAll`. For engines that answer many small messages in a loop; an
   * implementation may always return `false`.
   */
  readonly tryWriteAll: (chunks: ReadonlyArray<Uint8Array | string>) => boolean
  /**
   * Completes once the connection is gone in both directions: the peer reset it, the socket broke, or it was closed
   * (here or by the server). A half-close by the peer (the end of `read`) does not complete it, since that peer may
   * still read what is written. For engines that stop work nobody will receive, such as an HTTP server interrupting
   * the request of a client that left.
   */
  readonly closed: Effect.Effect<void>
  /**
   * Ends the input here, as if the peer had half-closed: a read that waits for bytes ends at once with `Cause.Done`,
   * and so does every later read once the bytes already received are read. The socket stops reading from the kernel.
   * For a handler that stops at a graceful shutdown without a fiber of its own watching for it (the echo does).
   */
  readonly stopReading: Effect.Effect<void>
  /** Half-close: flush what was written, send end-of-stream, keep reading. */
  readonly end: Effect.Effect<void>
  /** Closes both directions now; unsent data is discarded. */
  readonly close: Effect.Effect<void>
}

/**
 * `readWhile` for an implementation that can only `read`: the loop runs in the fiber.
 * @category constructors
 */
export const readWhileOf = (read: Connection["read"]): Connection["readWhile"] =>
<A>(step: (batch: NonEmptyReadonlyArray<Uint8Array>) => A | undefined) => {
  const loop: Pull.Pull<A, ConnectionError> = Effect.flatMap(read, (batch) => {
    const result = step(batch)
    return result === undefined ? loop : Effect.succeed(result)
  })
  return loop
}

/**
 * Whether a failure from `read` means the peer ended the stream normally.
 * @category guards
 */
export const isEndOfStream = (error: ConnectionError | Cause.Done): error is Cause.Done =>
  !(error instanceof ConnectionError)

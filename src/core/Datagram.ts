/**
 * A datagram handler's view: one received datagram and a way to reply to its sender.
 *
 * Implemented over UDP and Unix-datagram sockets in this process and over IPC in a fork child
 * or worker thread; this file is only the contract.
 *
 * @since 0.1.0
 */
import type { Effect } from "effect"
import { Schema } from "effect"
import type { NetAddress } from "effect/net"

/**
 * Why a reply could not be sent.
 *
 * - `NoReplyAddress`: the sender is an unbound Unix-datagram socket, which has no address to answer.
 * - `SendFailed`: the kernel refused the datagram (too large, peer gone, socket closed).
 *
 * @category errors
 */
export class DatagramError extends Schema.TaggedError<DatagramError>()("DatagramError", {
  reason: Schema.Literals(["NoReplyAddress", "SendFailed"]),
  message: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {}

/**
 * One received datagram.
 * @category models
 */
export interface Datagram {
  /** `"udp"` or `"unix-dgram"`. */
  readonly transport: "udp" | "unix-dgram"
  /** The payload exactly as received. */
  readonly payload: Uint8Array
  /** The sender: an internet address, a Unix path, or `undefined` for an unbound Unix sender. */
  readonly sender: NetAddress.SocketAddress | undefined
  /** The sender as people read it: `"127.0.0.1:51234"`, a Unix path, or `"anonymous"`. */
  readonly peer: string
  /** Sends one datagram back to the sender. */
  readonly reply: (payload: Uint8Array | string) => Effect.Effect<void, DatagramError>
}

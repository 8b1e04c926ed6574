/**
 * The messages between the server and its members: fork children (Node IPC, `advanced`
 * serialization) and worker threads (`postMessage`). Both kinds speak the same protocol; only
 * how a connection travels differs (a fork child gets the socket handle as the second argument
 * of `send`, a worker gets it transferred in the message's `attached` field, see `remote.ts`).
 * Both sides decode what they receive with these schemas, so a message from another version or
 * a bug is a logged protocol error, not a crash.
 *
 * Only plain data crosses: addresses travel as `WireAddress` and are rebuilt on the other side,
 * payloads as `Uint8Array`, failures as a tag and a message.
 */
import { Cause, Result, Schema } from "effect"
import { NetAddress } from "effect/net"
import * as Connection from "../Connection.ts"
import * as Tls from "../Tls.ts"

/** A socket address as plain data. */
export const WireAddress = Schema.Union([
  Schema.TaggedStruct("Unix", { path: Schema.String }),
  Schema.TaggedStruct("Inet", { text: Schema.String })
])
export type WireAddress = typeof WireAddress.Type

/** Address -> wire form. */
export const toWireAddress = (address: NetAddress.SocketAddress): WireAddress =>
  address._tag === "UnixPathAddress"
    ? { _tag: "Unix", path: address.path }
    : { _tag: "Inet", text: NetAddress.formatSocketAddress(address) }

/** Wire form -> address (`undefined` when it does not parse, which only a bug produces). */
export const fromWireAddress = (wire: WireAddress): NetAddress.SocketAddress | undefined => {
  if (wire._tag === "Unix") return NetAddress.unixPathAddress(wire.path)
  const parsed = NetAddress.inetAddressFromString(wire.text)
  return Result.isSuccess(parsed) ? parsed.success : undefined
}

/** Only inet addresses can be a stream peer's or a datagram sender's address on the remote side. */
export const fromWireInet = (wire: WireAddress | undefined): NetAddress.InetAddress | undefined => {
  if (wire === undefined) return undefined
  const address = fromWireAddress(wire)
  return address !== undefined && NetAddress.isInetAddress(address) ? address : undefined
}

/** A reference to a handler module and export. */
export const Reference = Schema.Struct({ module: Schema.String, export: Schema.String })

/** How a handler failed, as plain data; `tag` lets the server tell routine connection errors apart. */
export const WireFailure = Schema.Struct({ tag: Schema.String, message: Schema.String })
export type WireFailure = typeof WireFailure.Type

/** How a job ended in the member. */
export const WireOutcome = Schema.Union([
  Schema.TaggedStruct("Completed", {}),
  Schema.TaggedStruct("Failed", { failure: WireFailure }),
  Schema.TaggedStruct("Aborted", { reason: Schema.String })
])
export type WireOutcome = typeof WireOutcome.Type

/** Metadata of a stream connection, sent with its socket (or, for a bridged connection, its port). */
export const ConnectionMeta = Schema.Struct({
  id: Schema.Number,
  transport: Schema.Literals(["tcp", "unix"]),
  localAddress: WireAddress,
  remoteAddress: Schema.optionalKey(WireAddress),
  peer: Schema.String,
  /** Whether our side stays writable after the peer's FIN, as the listener accepted it. */
  allowHalfOpen: Schema.Boolean,
  /** The server's idle timeout in milliseconds, applied where the connection is opened. */
  idleTimeoutMillis: Schema.optionalKey(Schema.Number),
  /**
   * Secure the socket with TLS first, with the settings of this `version`. They come along the first time a
   * member is sent a version (it keeps them), so a reload reaches every member with its next connection.
   */
  tls: Schema.optionalKey(Schema.Struct({ version: Schema.Number, settings: Schema.optionalKey(Tls.Settings) }))
})
export type ConnectionMeta = typeof ConnectionMeta.Type

/** Metadata and payload of a datagram. */
export const DatagramMeta = Schema.Struct({
  transport: Schema.Literals(["udp", "unix-dgram"]),
  payload: Schema.Uint8Array,
  sender: Schema.optionalKey(WireAddress),
  peer: Schema.String
})
export type DatagramMeta = typeof DatagramMeta.Type

/** A log line from a member, re-logged by the server with the member's pid or thread id. */
export const LogRecord = Schema.TaggedStruct("Log", {
  level: Schema.Literals(["Fatal", "Error", "Warn", "Info", "Debug", "Trace"]),
  message: Schema.String,
  annotations: Schema.Record(Schema.String, Schema.String)
})
export type LogRecord = typeof LogRecord.Type

/** Server -> member: serve this connection; its socket (or bridge port) travels alongside. */
export const ConnectionJob = Schema.TaggedStruct("Connection", { job: Schema.Number, meta: ConnectionMeta })
export type ConnectionJob = typeof ConnectionJob.Type

/**
 * Server -> member.
 * - `Connection`, `Datagram`: a job.
 * - `Replied`: the server sent (or failed to send) the datagram reply with this `seq`.
 * - `Shutdown`: the server stopped accepting (graceful shutdown began), for the handlers' `Server.Shutdown`.
 * - `Stop`: no job is left for this member; finish and exit.
 */
export const ToMember = Schema.Union([
  ConnectionJob,
  Schema.TaggedStruct("Datagram", { job: Schema.Number, meta: DatagramMeta }),
  Schema.TaggedStruct("Replied", { seq: Schema.Number, error: Schema.optionalKey(Schema.String) }),
  Schema.TaggedStruct("Shutdown", {}),
  Schema.TaggedStruct("Stop", {})
])
export type ToMember = typeof ToMember.Type

/**
 * Member -> server.
 * - `Ready` / `LoadFailed`: the handshake, once the handler module was (or could not be) loaded.
 * - `Done`: how a job ended.
 * - `Reply`: send this datagram reply from the server's socket, then answer `Replied`.
 * - `Log`: a log line.
 */
export const FromMember = Schema.Union([
  Schema.TaggedStruct("Ready", {}),
  Schema.TaggedStruct("LoadFailed", { message: Schema.String }),
  Schema.TaggedStruct("Done", { job: Schema.Number, outcome: WireOutcome }),
  Schema.TaggedStruct("Reply", { job: Schema.Number, seq: Schema.Number, payload: Schema.Uint8Array }),
  LogRecord
])
export type FromMember = typeof FromMember.Type

// ---------------------------------------------------------------------------------------------
// The byte bridge (a connection whose socket cannot move to a worker): one MessagePort per job
// ---------------------------------------------------------------------------------------------

/** Why a read or write failed on the server's socket. */
export const WireConnectionError = Schema.Struct({
  reason: Schema.Literals(["ReadFailed", "WriteFailed", "IdleTimeout", "Closed"]),
  message: Schema.String
})

/**
 * Member -> server on a bridged job's port. `Read` is one unit of read credit: the server reads
 * from the socket only while the member has asked for data. The others are acknowledged by `seq`.
 */
export const BridgeRequest = Schema.Union([
  Schema.TaggedStruct("Read", {}),
  Schema.TaggedStruct("Write", { seq: Schema.Number, chunks: Schema.Array(Schema.Uint8Array) }),
  Schema.TaggedStruct("End", { seq: Schema.Number }),
  Schema.TaggedStruct("Close", { seq: Schema.Number })
])
export type BridgeRequest = typeof BridgeRequest.Type

/** Server -> member on a bridged job's port: answers to `Read`, acknowledgements of the rest. */
export const BridgeAnswer = Schema.Union([
  Schema.TaggedStruct("Data", { chunks: Schema.Array(Schema.Uint8Array) }),
  Schema.TaggedStruct("Eof", {}),
  Schema.TaggedStruct("ReadError", { error: WireConnectionError }),
  Schema.TaggedStruct("Ack", { seq: Schema.Number, error: Schema.optionalKey(Schema.String) }),
  // the connection is gone in both directions (its `closed`); a half-close is `Eof`, not this
  Schema.TaggedStruct("Closed", {})
])
export type BridgeAnswer = typeof BridgeAnswer.Type

// ---------------------------------------------------------------------------------------------
// helpers shared by both sides
// ---------------------------------------------------------------------------------------------

/** An `Exit`'s cause -> wire outcome. Interruption is an abort, not a failure. */
export const outcomeOfCause = (cause: Cause.Cause<unknown>): WireOutcome => {
  if (Cause.hasInterruptsOnly(cause)) return { _tag: "Aborted", reason: "interrupted" }
  const error = Cause.squash(cause)
  const tag = typeof error === "object" && error !== null && "_tag" in error && typeof error._tag === "string"
    ? error._tag
    : error instanceof Error
    ? error.name
    : "Defect"
  const message = error instanceof Error ? error.message || String(error) : String(error)
  return { _tag: "Failed", failure: { tag, message } }
}

/**
 * A failure that happened in a fork child or worker thread, as the server reports it. A
 * `ConnectionError` (peer reset, idle) is rebuilt as one so the server logs it as routine.
 * @category errors
 */
export class RemoteHandlerError extends Schema.TaggedError<RemoteHandlerError>()("RemoteHandlerError", {
  where: Schema.String,
  tag: Schema.String,
  message: Schema.String
}) {}

/** A wire failure -> the cause handed to `job.complete`. */
export const causeOfFailure = (where: string, failure: WireFailure): Cause.Cause<unknown> =>
  failure.tag === "ConnectionError"
    ? Cause.fail(new Connection.ConnectionError({ reason: "ReadFailed", message: `${where}: ${failure.message}` }))
    : Cause.fail(new RemoteHandlerError({ where, tag: failure.tag, message: `${where}: ${failure.message}` }))

/** Copies a chunk into an exact-size buffer of its own, safe to transfer (detach) afterwards. */
export const ownedCopy = (chunk: Uint8Array): Uint8Array<ArrayBuffer> => {
  const copy = new Uint8Array(chunk.byteLength)
  copy.set(chunk)
  return copy
}

/**
 * `Connection` over a Node `net.Socket`, built on effect's `NodeSocket` reader and writer.
 * Used by the in-process strategies and by fork children that received a socket handle.
 */
import { NodeSocket } from "@effect/platform-node"
import { Cause, Duration, Effect, Scope, Stream } from "effect"
import type { NonEmptyReadonlyArray } from "effect/Array"
import { NetAddress } from "effect/net"
import type { Pull } from "effect"
import { Socket } from "effect/socket"
import type * as Net from "node:net"
import * as Connection from "../Connection.ts"
import * as Metrics from "../Metrics.ts"

/** Peer details read once from the raw socket at accept time. */
export interface Peer {
  readonly remoteAddress: NetAddress.InetAddress | undefined
  readonly peer: string
}

/** Reads the peer's address from a raw socket; Unix peers are unnamed. */
export const peerOf = (raw: Net.Socket, transport: "tcp" | "unix"): Peer => {
  if (transport === "unix" || raw.remoteAddress === undefined || raw.remotePort === undefined) {
    return { remoteAddress: undefined, peer: "local" }
  }
  const address = NetAddress.inetAddressFromIpString(raw.remoteAddress, raw.remotePort)
  return address._tag === "Success"
    ? { remoteAddress: address.success, peer: NetAddress.formatSocketAddress(address.success) }
    : { remoteAddress: undefined, peer: `${raw.remoteAddress}:${raw.remotePort}` }
}

const closedError = new Connection.ConnectionError({ reason: "Closed", message: "connection is closed" })

const fromSocketError = (error: Socket.SocketError, direction: "ReadFailed" | "WriteFailed"): Connection.ConnectionError =>
  error.reason._tag === "SocketCloseError"
    ? closedError
    : new Connection.ConnectionError({ reason: direction, message: error.message, cause: error.reason })

/**
 * Opens `raw` as a `Connection` owned by the current scope. The reader is acquired first: until a
 * reader exists effect's socket would never close the connection (see `NodeSocket`).
 */
export const open = (
  raw: Net.Socket,
  meta: {
    readonly id: number
    readonly transport: "tcp" | "unix"
    readonly localAddress: NetAddress.SocketAddress
    readonly peer: Peer
    readonly idleTimeout?: Duration.Input | undefined
  }
): Effect.Effect<Connection.Connection, Connection.ConnectionError, Scope.Scope> =>
  Effect.gen(function*() {
    const socket = yield* NodeSocket.fromDuplex(
      Effect.acquireRelease(Effect.succeed(raw), (conn) =>
        Effect.sync(() => {
          if (!conn.destroyed) conn.destroySoon()
        }))
    )
    let idle = false
    const reader = yield* socket.reader.pipe(Effect.mapError((e) => fromSocketError(e, "ReadFailed")))
    const writer = yield* socket.writer
    yield* Metrics.connectionOpened(meta.transport)
    yield* Effect.addFinalizer(() => Metrics.connectionClosed(meta.transport, raw.bytesRead, raw.bytesWritten))
    if (meta.idleTimeout !== undefined) {
      const millis = Duration.toMillis(Duration.fromInputUnsafe(meta.idleTimeout))
      if (millis > 0 && Number.isFinite(millis)) {
        // Node's socket timer resets on every read and write, which is exactly "idle".
        raw.setTimeout(millis, () => {
          idle = true
          raw.destroy()
        })
      }
    }
    const idleError = () =>
      new Connection.ConnectionError({ reason: "IdleTimeout", message: `connection idle for longer than the idle timeout` })

    const read: Pull.Pull<NonEmptyReadonlyArray<Uint8Array>, Connection.ConnectionError> = Effect.catch(
      reader.pull,
      (error): Effect.Effect<never, Connection.ConnectionError | Cause.Done> => {
        if (idle) return Effect.fail(idleError())
        // Socket end-of-file arrives as close code 1000: here it is the normal end of the stream.
        if (error.reason._tag === "SocketCloseError" && error.reason.code === 1000) return Cause.done()
        return Effect.fail(fromSocketError(error, "ReadFailed"))
      }
    ) as Pull.Pull<NonEmptyReadonlyArray<Uint8Array>, Connection.ConnectionError>

    const mapWrite = (e: Socket.SocketError) => idle ? idleError() : fromSocketError(e, "WriteFailed")
    return {
      id: meta.id,
      transport: meta.transport,
      localAddress: meta.localAddress,
      remoteAddress: meta.peer.remoteAddress,
      peer: meta.peer.peer,
      read,
      bytes: Stream.fromPull(Effect.succeed(read)),
      write: (chunk) => Effect.mapError(writer.write(chunk), mapWrite),
      writeAll: (chunks) =>
        chunks.length === 0
          ? Effect.void
          : Effect.mapError(writer.writeAll(chunks as NonEmptyReadonlyArray<Uint8Array | string>), mapWrite),
      end: Effect.sync(() => {
        if (!raw.writableEnded) raw.end()
      }),
      close: Effect.sync(() => {
        raw.destroy()
      })
    } satisfies Connection.Connection
  })

/** `open` on a connection whose peer went away while it waited to be served. */
export const closedBeforeOpen = new Connection.ConnectionError({
  reason: "Closed",
  message: "the peer closed the connection before it was served"
})

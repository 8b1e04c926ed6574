/**
 * UDP and Unix-datagram listeners as scoped Layers providing `Listener`.
 *
 * UDP is effect's `NodeDatagramSocket`. Node has no Unix-datagram sockets, so those come from the
 * `node-unix-socket` addon, wrapped here the same way. Datagrams that arrive faster than they are
 * handled wait in a bounded queue; past it they are dropped (and counted), as the kernel would.
 *
 * @since 0.1.0
 */
// Subpath imports: the package index loads every Node module (HTTP, workers, ...), ~20 MB of heap
// that every major collection would have to mark.
import * as NodeDatagramSocket from "@effect/platform-node/NodeDatagramSocket"
import { Cause, Effect, Exit, Layer, Queue, Scope, Stream } from "effect"
import { NetAddress } from "effect/net"
import type { DatagramSocket } from "effect/socket"
import { DgramSocket } from "node-unix-socket"
import { Buffer } from "node:buffer"
import * as Datagram from "./Datagram.ts"
import * as Listener from "./Listener.ts"
import * as Transport from "./Transport.ts"
import * as BindErrors from "./internal/bindError.ts"
import * as UnixPath from "./internal/unixPath.ts"

/**
 * Listener options beyond the transport's.
 * @category models
 */
export interface Options {
  /** Received datagrams that may wait to be handled; past this they are dropped. Default `4096`. */
  readonly maxPending?: number | undefined
}

/** @category constants */
export const defaultMaxPending = 4096

const sendFailed = (cause: unknown) =>
  new Datagram.DatagramError({ reason: "SendFailed", message: `reply not sent: ${String(cause)}`, cause })

const makeUdp = Effect.fnUntraced(function*(transport: Transport.Udp, options?: Options) {
  const host = transport.host ?? Transport.defaultHost
  const socket = yield* NodeDatagramSocket.make({
    bind: { address: host, port: transport.port ?? 0 },
    family: host.includes(":") ? "ipv6" : "ipv4",
    reusePort: transport.reusePort ?? false,
    ...(transport.receiveBufferBytes !== undefined ? { kernelReceiveBufferSize: transport.receiveBufferBytes } : {})
  })
  const reader = yield* socket.reader.pipe(
    Effect.mapError((error) => BindErrors.fromNodeError(`${host}:${transport.port ?? 0}`, nodeCause(error)))
  )
  const writer = yield* socket.writer
  const queue = yield* Queue.bounded<Listener.IncomingDatagram, Cause.Done>(options?.maxPending ?? defaultMaxPending)
  let nextId = 0

  const reply = (received: DatagramSocket.Datagram, payload: Uint8Array | string) =>
    Effect.mapError(writer.write({ payload, address: received }), sendFailed)
  const toIncoming = (received: DatagramSocket.Datagram): Listener.IncomingDatagram => ({
    _tag: "IncomingDatagram",
    id: ++nextId,
    datagram: {
      transport: "udp",
      payload: received.payload,
      sender: received.address,
      // Formatted on first use: most handlers only reply, and formatting per datagram is measurable.
      get peer() {
        return NetAddress.formatSocketAddress(received.address)
      },
      reply: (payload) => reply(received, payload)
    }
  })
  // The pump hands whole batches to the queue; when the queue is full it stops pulling and the
  // socket's own receive buffer drops, which `dropped` reports.
  const pumpScope = yield* Scope.make()
  yield* Effect.addFinalizer(() => Scope.close(pumpScope, Exit.void))
  yield* reader.pull.pipe(
    Effect.flatMap((batch) => Queue.offerAll(queue, batch.map(toIncoming))),
    Effect.forever,
    Effect.catchCause(() => Queue.end(queue)),
    Effect.forkIn(pumpScope, { startImmediately: true })
  )
  const stop = Effect.andThen(Scope.close(pumpScope, Exit.void), Effect.andThen(Queue.clear(queue), Queue.end(queue)))
  yield* Effect.addFinalizer(() => stop)
  return Listener.Listener.of({
    transport,
    kind: "udp",
    address: reader.address,
    accept: Queue.take(queue),
    incoming: Stream.fromQueue(queue),
    stop: Effect.asVoid(stop),
    dropped: Effect.sync(() => reader.dropped())
  })
})

const nodeCause = (error: DatagramSocket.DatagramSocketError): unknown =>
  "cause" in error.reason ? error.reason.cause : error

const makeUnixDatagram = Effect.fnUntraced(function*(transport: Transport.UnixDatagram, options?: Options) {
  yield* UnixPath.prepare(transport.path, "datagram")
  const queue = yield* Queue.bounded<Listener.IncomingDatagram, Cause.Done>(options?.maxPending ?? defaultMaxPending)
  let nextId = 0
  let dropped = 0
  let stopped = false

  const socket = yield* Effect.acquireRelease(
    Effect.try({
      try: () => {
        const socket = new DgramSocket()
        try {
          socket.bind(transport.path)
        } catch (error) {
          socket.close()
          throw error
        }
        return socket
      },
      catch: (cause) => BindErrors.fromNodeError(transport.path, cause)
    }),
    (socket) => Effect.sync(() => socket.close())
  )
  const inode = UnixPath.inodeOf(transport.path)
  yield* Effect.addFinalizer(() => Effect.sync(() => UnixPath.removeIfOurs(transport.path, inode)))
  // The addon reports receive errors by closing the socket; nothing more will arrive.
  socket.on("error", () => Queue.endUnsafe(queue))

  const reply = (to: string) => (payload: Uint8Array | string) =>
    to === ""
      ? Effect.fail(
        new Datagram.DatagramError({
          reason: "NoReplyAddress",
          message: "the sender's socket is not bound to a path, so it cannot be answered"
        })
      )
      : Effect.callback<void, Datagram.DatagramError>((resume) => {
        const buffer = typeof payload === "string"
          ? Buffer.from(payload)
          : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength)
        try {
          socket.sendTo(buffer, 0, buffer.length, to, (error) => resume(error ? Effect.fail(sendFailed(error)) : Effect.void))
        } catch (error) {
          resume(Effect.fail(sendFailed(error)))
        }
      })

  socket.on("data", (payload: Buffer, from: string) => {
    if (stopped) return
    const incoming: Listener.IncomingDatagram = {
      _tag: "IncomingDatagram",
      id: ++nextId,
      datagram: {
        transport: "unix-dgram",
        payload,
        sender: from === "" ? undefined : NetAddress.unixPathAddress(from),
        peer: from === "" ? "anonymous" : from,
        reply: reply(from)
      }
    }
    if (!Queue.offerUnsafe(queue, incoming)) dropped++
  })
  const stop = Effect.suspend(() => {
    if (stopped) return Effect.void
    stopped = true
    return Effect.andThen(Queue.clear(queue), Queue.end(queue))
  })
  yield* Effect.addFinalizer(() => stop)
  return Listener.Listener.of({
    transport,
    kind: "unix-dgram",
    address: NetAddress.unixPathAddress(transport.path),
    accept: Queue.take(queue),
    incoming: Stream.fromQueue(queue),
    stop: Effect.asVoid(stop),
    dropped: Effect.sync(() => dropped)
  })
})

/**
 * Binds a datagram listener in the current scope.
 * @category constructors
 */
export const make = (
  transport: Transport.DatagramTransport,
  options?: Options
): Effect.Effect<Listener.Listener["Service"], Listener.BindError, Scope.Scope> =>
  transport._tag === "Udp" ? makeUdp(transport, options) : makeUnixDatagram(transport, options)

/**
 * A datagram listener as a Layer.
 * @category layers
 */
export const layer = (transport: Transport.DatagramTransport, options?: Options): Layer.Layer<Listener.Listener, Listener.BindError> =>
  Layer.effect(Listener.Listener, make(transport, options))

/**
 * A UDP listener. Defaults: host `127.0.0.1`, port `0` (ephemeral).
 * @category layers
 */
export const layerUdp = (options: Omit<Transport.Udp, "_tag"> & Options = {}) => layer(Transport.udp(options), options)

/**
 * A Unix-datagram listener on `path`.
 * @category layers
 */
export const layerUnixDatagram = (options: Omit<Transport.UnixDatagram, "_tag"> & Options) =>
  layer(Transport.unixDatagram(options), options)

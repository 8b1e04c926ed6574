/**
 * UDP and Unix-datagram listeners as scoped Layers providing `Listener`.
 *
 * UDP is plain `node:dgram` (not effect's `NodeDatagramSocket`: see `makeUdp` for why). Node has
 * no Unix-datagram sockets, so those come from the `node-unix-socket` addon, wrapped the same way.
 * Datagrams that arrive faster than they are handled wait in a bounded queue; past it they are
 * dropped (and counted), as the kernel would.
 *
 * @since 0.1.0
 */
import { Cause, Effect, Layer, Queue, Stream } from "effect"
import type { Scope } from "effect"
import { NetAddress } from "effect/net"
import { DgramSocket } from "node-unix-socket"
import { Buffer } from "node:buffer"
import * as Dgram from "node:dgram"
import * as Datagram from "./Datagram.ts"
import * as Listener from "./Listener.ts"
import * as Metrics from "./Metrics.ts"
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

/** Settles a reply from the socket's send callback: counted as bytes out, or a `SendFailed`. */
const settleReply = (
  kind: Transport.Kind,
  bytes: number,
  resume: (effect: Effect.Effect<void, Datagram.DatagramError>) => void
) =>
(error: Error | null | undefined): void => resume(error ? Effect.fail(sendFailed(error)) : Metrics.sent(kind, bytes))

/**
 * The part both datagram listeners share: a bounded queue that socket callbacks feed, counting
 * what it drops, and an idempotent stop that discards what is still queued.
 */
const makeInbox = Effect.fnUntraced(function*(options: Options | undefined) {
  const queue = yield* Queue.bounded<Listener.IncomingDatagram, Cause.Done>(options?.maxPending ?? defaultMaxPending)
  let nextId = 0
  let dropped = 0
  let stopped = false
  const stop = Effect.suspend(() => {
    if (stopped) return Effect.void
    stopped = true
    return Effect.asVoid(Effect.andThen(Queue.clear(queue), Queue.end(queue)))
  })
  yield* Effect.addFinalizer(() => stop)
  return {
    /** Queues one datagram from a socket callback; ignored after `stop`, counted when the queue is full. */
    offer: (datagram: Datagram.Datagram): void => {
      if (stopped) return
      if (!Queue.offerUnsafe(queue, { _tag: "IncomingDatagram", id: ++nextId, datagram })) dropped++
    },
    /** The socket can deliver nothing more: consumers see the end once the queue is empty. */
    end: (): void => {
      Queue.endUnsafe(queue)
    },
    /** The `Listener` service over this inbox. */
    listener: (transport: Transport.DatagramTransport, kind: Transport.Kind, address: NetAddress.SocketAddress) =>
      Listener.Listener.of({
        transport,
        kind,
        address,
        accept: Queue.take(queue),
        incoming: Stream.fromQueue(queue),
        stop,
        dropped: Effect.sync(() => dropped)
      })
  }
})

/**
 * One received UDP datagram. The sender's address and its printed form are computed on first
 * use: most handlers only `reply`, and parsing an address per datagram is measurable at UDP rates.
 */
class UdpDatagram implements Datagram.Datagram {
  readonly transport = "udp" as const
  readonly payload: Uint8Array
  readonly #socket: Dgram.Socket
  readonly #host: string
  readonly #port: number
  #sender: NetAddress.InetAddress | undefined
  constructor(payload: Uint8Array, socket: Dgram.Socket, host: string, port: number) {
    this.payload = payload
    this.#socket = socket
    this.#host = host
    this.#port = port
  }
  get sender(): NetAddress.InetAddress {
    return this.#sender ??= NetAddress.inetAddressFromIpStringUnsafe(this.#host, this.#port)
  }
  get peer(): string {
    return this.#host.includes(":") ? `[${this.#host}]:${this.#port}` : `${this.#host}:${this.#port}`
  }
  reply(payload: Uint8Array | string): Effect.Effect<void, Datagram.DatagramError> {
    return Effect.callback<void, Datagram.DatagramError>((resume) => {
      try {
        const bytes = typeof payload === "string" ? Buffer.byteLength(payload) : payload.byteLength
        this.#socket.send(payload, this.#port, this.#host, settleReply("udp", bytes, resume))
      } catch (error) {
        resume(Effect.fail(sendFailed(error)))
      }
    })
  }
}

// UDP is plain `node:dgram` rather than effect's `NodeDatagramSocket`: that one buffers received
// datagrams in its own queue behind a pull and converts every sender address before a handler
// sees it, so each datagram crossed two queues. Measured in the same run (64-byte echo, Node 24,
// pinned): 122k packets/s through NodeDatagramSocket, 152k through this, 181k for a raw dgram echo.
const makeUdp = Effect.fnUntraced(function*(transport: Transport.Udp, options?: Options) {
  const host = transport.host ?? Transport.defaultHost
  const inbox = yield* makeInbox(options)
  const socket = yield* Effect.acquireRelease(
    Effect.callback<Dgram.Socket, Listener.BindError>((resume) => {
      const socket = Dgram.createSocket({
        type: host.includes(":") ? "udp6" : "udp4",
        reuseAddr: transport.reusePort ?? false,
        ...(transport.reusePort ? { reusePort: true } : {}),
        ...(transport.receiveBufferBytes !== undefined ? { recvBufferSize: transport.receiveBufferBytes } : {})
      })
      const onError = (error: Error) => {
        socket.close()
        resume(Effect.fail(BindErrors.fromNodeError(`${host}:${transport.port ?? 0}`, error)))
      }
      socket.once("error", onError)
      socket.bind({ address: host, port: transport.port ?? 0 }, () => {
        socket.off("error", onError)
        resume(Effect.succeed(socket))
      })
    }),
    (socket) => Effect.sync(() => socket.close())
  )
  // Receive errors (ICMP port unreachable from a previous reply, say) do not end a UDP socket.
  socket.on("error", () => {})
  socket.on("message", (payload: Buffer, remote: Dgram.RemoteInfo) =>
    inbox.offer(new UdpDatagram(payload, socket, remote.address, remote.port)))
  const info = socket.address()
  return inbox.listener(transport, "udp", NetAddress.inetAddressFromIpStringUnsafe(info.address, info.port))
})

const makeUnixDatagram = Effect.fnUntraced(function*(transport: Transport.UnixDatagram, options?: Options) {
  yield* UnixPath.prepare(transport.path, "datagram")
  const inbox = yield* makeInbox(options)

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
  socket.on("error", inbox.end)

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
          socket.sendTo(buffer, 0, buffer.length, to, settleReply("unix-dgram", buffer.length, resume))
        } catch (error) {
          resume(Effect.fail(sendFailed(error)))
        }
      })

  socket.on("data", (payload: Buffer, from: string) =>
    inbox.offer({
      transport: "unix-dgram",
      payload,
      sender: from === "" ? undefined : NetAddress.unixPathAddress(from),
      peer: from === "" ? "anonymous" : from,
      reply: reply(from)
    }))
  return inbox.listener(transport, "unix-dgram", NetAddress.unixPathAddress(transport.path))
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

/**
 * The bound, accepting side of a server: a queue of incoming connections or datagrams.
 *
 * `StreamListener` (TCP, Unix stream) and `DatagramListener` (UDP, Unix datagram) provide this
 * service as scoped Layers: building the layer binds the socket, releasing it closes the socket
 * and everything still waiting in the queue. `Server` consumes it. This file is only the contract.
 *
 * @since 0.1.0
 */
import type { Cause, Duration, Effect, Scope, Stream } from "effect"
import { Context, Schema } from "effect"
import type { NetAddress } from "effect/net"
import type * as Connection from "./Connection.ts"
import type * as Datagram from "./Datagram.ts"
import type * as Transport from "./Transport.ts"

/**
 * How a server opens an accepted connection in this process.
 * @category models
 */
export interface OpenOptions {
  /** Close the connection when nothing was read or written for this long. Default: never. */
  readonly idleTimeout?: Duration.Input | undefined
}

/**
 * A connection that was accepted and is waiting to be served. Nothing has been read from it yet.
 * Exactly one of `open` or `reject` must be used (a strategy that runs it in another process or
 * thread takes it over instead): until then the server owns it.
 * @category models
 */
export interface IncomingConnection {
  readonly _tag: "IncomingConnection"
  readonly id: number
  readonly transport: "tcp" | "unix"
  readonly localAddress: NetAddress.SocketAddress
  readonly remoteAddress: NetAddress.InetAddress | undefined
  /** `"127.0.0.1:51234"`, or `"local"` for a Unix-socket peer. */
  readonly peer: string
  /** Opens the connection for reading and writing here; closing the scope closes the connection. */
  readonly open: (options?: OpenOptions) => Effect.Effect<Connection.Connection, Connection.ConnectionError, Scope.Scope>
  /**
   * What must finish before the connection can be opened here (a TLS handshake), or `undefined`
   * when nothing must. It starts at most once and `open` waits for it, starting it if need be.
   * Strategies that serve connections in this process start it early, for many connections at
   * once (`Strategy.prepared`), so that a peer that stalls it holds up no other; one that serves
   * the connection in another process leaves it to that process. A failure has been logged and
   * has closed the connection.
   */
  readonly prepare?: Effect.Effect<void, Connection.ConnectionError> | undefined
  /** Closes the connection without serving it (verification failed, shutdown). */
  readonly reject: Effect.Effect<void>
}

/**
 * A datagram waiting to be handled.
 * @category models
 */
export interface IncomingDatagram {
  readonly _tag: "IncomingDatagram"
  readonly id: number
  readonly datagram: Datagram.Datagram
}

/**
 * Anything a listener yields.
 * @category models
 */
export type Incoming = IncomingConnection | IncomingDatagram

/**
 * Why a listener could not be bound.
 * @category errors
 */
export class BindError extends Schema.TaggedError<BindError>()("BindError", {
  kind: Schema.Literals(["AddressInUse", "PathInUse", "PermissionDenied", "AddressNotAvailable", "Unknown"]),
  address: Schema.String,
  message: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {}

/**
 * A bound listener.
 * @category services
 */
export class Listener extends Context.Service<Listener, {
  readonly transport: Transport.Transport
  readonly kind: Transport.Kind
  /** The bound address (with the real port when port 0 was asked for). */
  readonly address: NetAddress.SocketAddress
  /** Waits for the next incoming item; fails with `Cause.Done` once the listener has stopped. */
  readonly accept: Effect.Effect<Incoming, Cause.Done>
  /** Incoming items as a stream that ends when the listener stops. Several consumers share the items. */
  readonly incoming: Stream.Stream<Incoming>
  /**
   * Stops accepting: the listening socket is closed (new peers are refused by the kernel) and
   * items still queued are rejected. Accepted connections already handed out are not touched.
   */
  readonly stop: Effect.Effect<void>
  /** Items dropped because the queue was full (datagrams) or over `maxPending` (connections). */
  readonly dropped: Effect.Effect<number>
}>()("effect-netkit/core/Listener") {}

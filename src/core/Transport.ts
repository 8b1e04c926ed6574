/**
 * Where a server listens: TCP, Unix stream, UDP or Unix datagram, as a tagged union of plain options.
 *
 * A `Transport` only describes an endpoint; `StreamListener` and `DatagramListener` turn it into a
 * bound socket. Keeping the description separate lets a CLI, a test or another process (a fork
 * child) build the same endpoint from data.
 *
 * @since 0.1.0
 */
/**
 * TCP listener options.
 * @category models
 */
export interface Tcp {
  readonly _tag: "Tcp"
  /** Interface to bind. Default `"127.0.0.1"`; `"::"` binds every IPv6 (and usually IPv4) interface. */
  readonly host?: string | undefined
  /** Port to bind. Default `0`: the kernel picks a free port, read it back from the bound address. */
  readonly port?: number | undefined
  /** Length of the kernel's pending-connection queue. Default `511` (Node's default). */
  readonly backlog?: number | undefined
  /** Lets several sockets (processes or threads) bind the same port; the kernel spreads connections. Default `false`. */
  readonly reusePort?: boolean | undefined
  /** Disables Nagle's algorithm on accepted connections. Default `true`: small writes go out at once. */
  readonly noDelay?: boolean | undefined
  /** With an IPv6 host, refuse IPv4-mapped connections. Default `false`. */
  readonly ipv6Only?: boolean | undefined
}

/**
 * Unix-domain stream listener options.
 * @category models
 */
export interface Unix {
  readonly _tag: "Unix"
  /** Filesystem path of the socket. A stale file nobody listens on is replaced; a live one is a `BindError`. */
  readonly path: string
  /** Length of the kernel's pending-connection queue. Default `511`. */
  readonly backlog?: number | undefined
}

/**
 * UDP listener options.
 * @category models
 */
export interface Udp {
  readonly _tag: "Udp"
  /** Interface to bind. Default `"127.0.0.1"`; an IPv6 literal (`"::1"`) selects an IPv6 socket. */
  readonly host?: string | undefined
  /** Port to bind. Default `0` (kernel picks). */
  readonly port?: number | undefined
  /** Lets several sockets bind the same port. Default `false`. */
  readonly reusePort?: boolean | undefined
  /** Kernel receive buffer in bytes (`SO_RCVBUF`). Default: the kernel's. */
  readonly receiveBufferBytes?: number | undefined
}

/**
 * Unix-domain datagram listener options.
 *
 * Linux queues few datagrams per Unix-datagram socket (`net.unix.max_dgram_qlen`, 10 by default):
 * senders that burst more than that get `EAGAIN` or block, whatever the server's speed. Raise the
 * sysctl for bursty traffic.
 * @category models
 */
export interface UnixDatagram {
  readonly _tag: "UnixDatagram"
  /** Filesystem path of the socket. A stale file nobody listens on is replaced; a live one is a `BindError`. */
  readonly path: string
}

/**
 * Any endpoint a server can listen on.
 * @category models
 */
export type Transport = Tcp | Unix | Udp | UnixDatagram

/**
 * Transports that carry byte streams over connections.
 * @category models
 */
export type StreamTransport = Tcp | Unix

/**
 * Transports that carry individual datagrams.
 * @category models
 */
export type DatagramTransport = Udp | UnixDatagram

/**
 * The short lower-case name used in logs, metrics and CLIs.
 * @category models
 */
export type Kind = "tcp" | "unix" | "udp" | "unix-dgram"

/** @category constructors */
export const tcp = (options: Omit<Tcp, "_tag"> = {}): Tcp => ({ _tag: "Tcp", ...options })
/** @category constructors */
export const unix = (options: Omit<Unix, "_tag">): Unix => ({ _tag: "Unix", ...options })
/** @category constructors */
export const udp = (options: Omit<Udp, "_tag"> = {}): Udp => ({ _tag: "Udp", ...options })
/** @category constructors */
export const unixDatagram = (options: Omit<UnixDatagram, "_tag">): UnixDatagram => ({ _tag: "UnixDatagram", ...options })

/**
 * Default interface for IP transports: loopback, so nothing is exposed unless asked for.
 * @category constants
 */
export const defaultHost = "127.0.0.1"

/**
 * Whether the transport carries connections (as opposed to datagrams).
 * @category guards
 */
export const isStream = (transport: Transport): transport is StreamTransport =>
  transport._tag === "Tcp" || transport._tag === "Unix"

/**
 * TCP and Unix-stream listeners as scoped Layers providing `Listener`.
 *
 * Building the layer binds and listens; releasing it stops accepting, closes the connections still
 * waiting in the queue and, for Unix paths, removes the socket file. Connections that were handed
 * out belong to whoever opened them.
 *
 * The accept side is a plain `node:net` server rather than effect's `NodeSocketServer`: that one
 * can only stop accepting by releasing its scope, which waits for every connection to end and
 * forks a fiber per connection with no bound, while graceful shutdown must close the listening
 * socket first and let connections drain, and the server must be able to pause serving at a
 * connection limit. Accepted connections are not effect's `NodeSocket` either: `Connection` is
 * implemented over the raw socket (see `internal/nodeConnection.ts` for why).
 *
 * With `tls`, a connection is handed out before its handshake, which runs when the connection is
 * prepared or opened in this process, or in the fork child or worker thread that receives the
 * socket (see `Tls` for why).
 *
 * @since 0.1.0
 */
import { Cause, Effect, Layer, Queue, Stream } from "effect"
import type { Scope } from "effect"
import { NetAddress } from "effect/net"
import * as Net from "node:net"
import type * as Connection from "./Connection.ts"
import * as Listener from "./Listener.ts"
import * as Tls from "./Tls.ts"
import * as Transport from "./Transport.ts"
import * as AcceptWatch from "./internal/acceptWatch.ts"
import * as BindErrors from "./internal/bindError.ts"
import * as Handoff from "./internal/handoff.ts"
import * as NodeConnection from "./internal/nodeConnection.ts"
import * as TlsHandshake from "./internal/tlsHandshake.ts"
import * as UnixPath from "./internal/unixPath.ts"

/**
 * Listener options beyond the transport's.
 * @category models
 */
export interface Options {
  /**
   * Accepted connections that may wait to be served (while the server is at its connection limit
   * or busy). Past this, new connections are closed at once and counted as dropped. Default `1024`.
   */
  readonly maxPending?: number | undefined
  /**
   * Serve TLS: a key and certificate (or certificates by host name), ALPN, minimum version and
   * handshake timeout, or a `Tls.Config` made with `Tls.make`, to be able to `reload` it later.
   * Default: plain connections.
   */
  readonly tls?: Tls.Options | Tls.Config | undefined
}

/** @category constants */
export const defaultMaxPending = 1024

const describe = (transport: Transport.StreamTransport): string =>
  transport._tag === "Unix"
    ? transport.path
    : `${transport.host ?? Transport.defaultHost}:${transport.port ?? 0}`

// Where `server.listen` binds: the transport's address, or (when listening again) the port it was given.
const listenOptions = (transport: Transport.StreamTransport, port?: number): Net.ListenOptions =>
  transport._tag === "Unix"
    ? { path: transport.path, backlog: transport.backlog ?? 511 }
    : {
      host: transport.host ?? Transport.defaultHost,
      port: port ?? transport.port ?? 0,
      backlog: transport.backlog ?? 511,
      reusePort: transport.reusePort ?? false,
      ipv6Only: transport.ipv6Only ?? false
    }

const listen = (transport: Transport.StreamTransport) =>
  Effect.callback<Net.Server, Listener.BindError>((resume) => {
    const server = Net.createServer({
      // Half-close: a peer's FIN must not end our write side before the handler has answered.
      allowHalfOpen: true,
      // Nothing is read before a strategy decides where the connection runs (possibly another process).
      pauseOnConnect: true,
      noDelay: transport._tag === "Tcp" ? transport.noDelay ?? true : false
    })
    const onError = (error: Error) => {
      server.close()
      resume(Effect.fail(BindErrors.fromNodeError(describe(transport), error)))
    }
    server.once("error", onError)
    const onListening = () => {
      server.off("error", onError)
      resume(Effect.succeed(server))
    }
    server.listen(listenOptions(transport), onListening)
    return Effect.sync(() => server.close())
  })

const boundAddress = (server: Net.Server, transport: Transport.StreamTransport): NetAddress.SocketAddress => {
  const info = server.address()
  if (info === null || typeof info === "string") {
    return NetAddress.unixPathAddress(transport._tag === "Unix" ? transport.path : String(info))
  }
  return NetAddress.inetAddressFromIpStringUnsafe(info.address, info.port)
}

const reportEffect = (report: AcceptWatch.Report): Effect.Effect<void> => {
  switch (report._tag) {
    case "LimitReached":
      return Effect.logWarning(
        `out of file descriptors (${report.code}): new connections are closed at once until some are free; ` +
          "connections already open are served. " +
          (report.code === "ENFILE"
            ? "The system's open-file table is full (fs.file-max)"
            : "Raise the process's limit with `ulimit -n` before starting the server")
      ).pipe(Effect.annotateLogs({ limit: report.limit ?? "unknown", times: report.suppressed + 1 }))
    case "LimitCleared":
      return Effect.logInfo("file descriptors available again: accepting new connections").pipe(
        Effect.annotateLogs({ afterMillis: report.afterMillis })
      )
    case "AcceptFailed":
      return Effect.logWarning(
        `accept failed (${report.code})${report.paused ? ": listening pauses for a second" : ""}`
      ).pipe(Effect.annotateLogs({ times: report.suppressed + 1 }))
    case "ListenFailed":
      return Effect.logWarning(`listening again failed (${report.code}): retrying in a second`)
  }
}

function ignore(): void {}

/**
 * An accepted connection waiting to be served. One object per connection, and a server may hold many: its effects
 * are built when asked for, and it lets go of the socket once a connection owns it.
 */
class Accepted implements Listener.IncomingConnection {
  readonly _tag = "IncomingConnection"
  readonly id: number
  readonly transport: "tcp" | "unix"
  readonly localAddress: NetAddress.SocketAddress
  readonly remoteAddress: NetAddress.InetAddress | undefined
  readonly peer: string
  /** Until opened (then the connection owns it), or until its TLS handshake starts (then the handshake does). */
  socket: Net.Socket | undefined
  /** The listener's TLS config, when it serves TLS. */
  readonly tls: Tls.Config | undefined
  /** Made by the first `prepare` or `open` in this process; a member that receives the socket makes its own. */
  handshake: TlsHandshake.Handshake | undefined = undefined

  constructor(
    socket: Net.Socket,
    id: number,
    transport: "tcp" | "unix",
    localAddress: NetAddress.SocketAddress,
    tls: Tls.Config | undefined
  ) {
    const peer = NodeConnection.peerOf(socket, transport)
    this.socket = socket
    this.id = id
    this.transport = transport
    this.localAddress = localAddress
    this.remoteAddress = peer.remoteAddress
    this.peer = peer.peer
    this.tls = tls
  }

  // A getter, so that `open` taken off the object still works; what it returns is made when asked for.
  get open(): Listener.IncomingConnection["open"] {
    return (options) => this.openWith(options)
  }

  get prepare(): Listener.IncomingConnection["prepare"] {
    return this.tls === undefined ? undefined : Effect.asVoid(this.secure)
  }

  /** The TLS socket once the handshake is done, starting it if need be. */
  get secure(): Effect.Effect<Net.Socket, Connection.ConnectionError> {
    return Effect.suspend(() => {
      if (this.handshake === undefined) {
        const socket = this.socket
        if (socket === undefined) return Effect.fail(NodeConnection.closedBeforeOpen)
        const tls = this.tls!
        this.socket = undefined
        this.handshake = TlsHandshake.make(socket, {
          transport: this.transport,
          peer: this.peer,
          settings: () => tls.current,
          sniCallback: tls.sniCallback
        })
      }
      return this.handshake.secure
    })
  }

  openWith(options?: Listener.OpenOptions): Effect.Effect<Connection.Connection, Connection.ConnectionError, Scope.Scope> {
    if (this.tls !== undefined) return Effect.flatMap(this.secure, (socket) => this.openSocket(socket, options))
    return Effect.suspend(() => {
      const socket = this.socket
      if (socket === undefined || socket.destroyed) return Effect.fail(NodeConnection.closedBeforeOpen)
      this.socket = undefined
      return this.openSocket(socket, options)
    })
  }

  openSocket(
    socket: Net.Socket,
    options: Listener.OpenOptions | undefined
  ): Effect.Effect<Connection.Connection, Connection.ConnectionError, Scope.Scope> {
    const opened = NodeConnection.open(socket, {
      id: this.id,
      transport: this.transport,
      localAddress: this.localAddress,
      peer: this,
      idleTimeout: options?.idleTimeout
    })
    // the connection listens for errors now: one listener less on every open socket
    return Effect.map(opened, (connection) => {
      socket.off("error", ignore)
      return connection
    })
  }

  // The socket travels with it, for the fork and worker strategies to hand over (see internal/handoff.ts),
  // with the TLS config the member secures it with.
  get [Handoff.socketKey](): Net.Socket | undefined {
    return this.socket
  }

  get [Handoff.tlsKey](): Tls.Config | undefined {
    return this.tls
  }

  get reject(): Effect.Effect<void> {
    return Effect.sync(() => {
      if (this.handshake !== undefined) this.handshake.destroy()
      else this.socket?.destroy()
    })
  }
}

/**
 * How building a listener with options `O` can fail: `BindError`, and `Tls.TlsError` when `O` has
 * TLS options that are still to be read and checked (a `Tls.Config` has been checked already).
 * @category models
 */
export type ErrorOf<O> = Listener.BindError | (
  "tls" extends keyof O ? [Exclude<O["tls" & keyof O], Tls.Config | undefined>] extends [never] ? never : Tls.TlsError
    : never
)

const makeListener = Effect.fnUntraced(function*(
  transport: Transport.StreamTransport,
  options?: Options
) {
  const kind = transport._tag === "Unix" ? "unix" : "tcp"
  const tls = options?.tls === undefined ? undefined : yield* Tls.configOf(options.tls)
  if (transport._tag === "Unix") yield* UnixPath.prepare(transport.path, "stream")
  const queue = yield* Queue.bounded<Listener.IncomingConnection, Cause.Done>(options?.maxPending ?? defaultMaxPending)
  let dropped = 0
  let stopped = false
  let inode: number | undefined

  const server = yield* Effect.acquireRelease(listen(transport), (server) => stop(server))
  if (transport._tag === "Unix") inode = UnixPath.inodeOf(transport.path)
  const address = boundAddress(server, transport)
  let nextId = 0

  // Accept errors and descriptor exhaustion are logged, never fatal (see `acceptWatch`).
  const runFork = Effect.runForkWith(yield* Effect.context<never>())
  const listenerName = NetAddress.formatSocketAddress(address)
  const stopWatch = AcceptWatch.watch(
    server,
    () =>
      server.listen(listenOptions(transport, address._tag === "UnixPathAddress" ? undefined : address.port), () => {
        if (transport._tag === "Unix") inode = UnixPath.inodeOf(transport.path)
        runFork(Effect.logInfo("listening again").pipe(Effect.annotateLogs({ listener: listenerName })))
      }),
    (report) => runFork(reportEffect(report).pipe(Effect.annotateLogs({ listener: listenerName })))
  )

  function stop(server: Net.Server) {
    return Effect.suspend(() => {
      if (stopped) return Effect.void
      stopped = true
      stopWatch()
      server.close()
      if (transport._tag === "Unix") UnixPath.removeIfOurs(transport.path, inode)
      return Queue.clear(queue).pipe(
        Effect.flatMap((pending) => Effect.forEach(pending, (incoming) => incoming.reject, { discard: true })),
        Effect.andThen(Queue.end(queue)),
        Effect.asVoid
      )
    })
  }

  server.on("connection", (raw: Net.Socket) => {
    // A peer may reset while it waits in the queue; without a listener that error would crash the process.
    raw.on("error", ignore)
    if (stopped) return raw.destroy()
    const incoming = new Accepted(raw, ++nextId, kind, address, tls)
    if (!Queue.offerUnsafe(queue, incoming)) {
      dropped++
      raw.destroy()
    }
  })

  return Listener.Listener.of({
    transport,
    kind,
    address,
    accept: Queue.take(queue),
    incoming: Stream.fromQueue(queue),
    stop: stop(server),
    dropped: Effect.sync(() => dropped)
  })
})

/**
 * Binds a stream listener in the current scope.
 * @category constructors
 */
export const make: <const O extends Options = {}>(
  transport: Transport.StreamTransport,
  options?: O
) => Effect.Effect<Listener.Listener["Service"], ErrorOf<O>, Scope.Scope> =
  // the same function; only its error type narrows with the options (see ErrorOf)
  makeListener as any


/**
 * A stream listener as a Layer.
 * @category layers
 */
export const layer = <const O extends Options = {}>(
  transport: Transport.StreamTransport,
  options?: O
): Layer.Layer<Listener.Listener, ErrorOf<O>> => Layer.effect(Listener.Listener, make(transport, options))

/**
 * A TCP listener. Defaults: host `127.0.0.1`, port `0` (ephemeral), backlog 511, no-delay on.
 * @category layers
 */
export const layerTcp = <const O extends Omit<Transport.Tcp, "_tag"> & Options = {}>(
  options: O = {} as O
): Layer.Layer<Listener.Listener, ErrorOf<O>> => layer(Transport.tcp(options), options)

/**
 * A Unix-stream listener on `path`.
 * @category layers
 */
export const layerUnix = <const O extends Omit<Transport.Unix, "_tag"> & Options>(
  options: O
): Layer.Layer<Listener.Listener, ErrorOf<O>> => layer(Transport.unix(options), options)

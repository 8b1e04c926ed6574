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
 * @since 0.1.0
 */
import { Cause, Effect, Layer, Queue, Stream } from "effect"
import type { Scope } from "effect"
import { NetAddress } from "effect/net"
import * as Net from "node:net"
import type * as Connection from "./Connection.ts"
import * as Listener from "./Listener.ts"
import * as Transport from "./Transport.ts"
import * as AcceptWatch from "./internal/acceptWatch.ts"
import * as BindErrors from "./internal/bindError.ts"
import * as Handoff from "./internal/handoff.ts"
import * as NodeConnection from "./internal/nodeConnection.ts"
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
  /** Until opened (then the connection owns it). */
  socket: Net.Socket | undefined

  constructor(socket: Net.Socket, id: number, transport: "tcp" | "unix", localAddress: NetAddress.SocketAddress) {
    const peer = NodeConnection.peerOf(socket, transport)
    this.socket = socket
    this.id = id
    this.transport = transport
    this.localAddress = localAddress
    this.remoteAddress = peer.remoteAddress
    this.peer = peer.peer
  }

  // A getter, so that `open` taken off the object still works; what it returns is made when asked for.
  get open(): Listener.IncomingConnection["open"] {
    return (options) => this.openWith(options)
  }

  openWith(options?: Listener.OpenOptions): Effect.Effect<Connection.Connection, Connection.ConnectionError, Scope.Scope> {
    return Effect.suspend(() => {
      const socket = this.socket
      if (socket === undefined || socket.destroyed) return Effect.fail(NodeConnection.closedBeforeOpen)
      this.socket = undefined
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
    })
  }

  // The socket travels with it, for the fork and worker strategies to hand over (see internal/handoff.ts).
  get [Handoff.socketKey](): Net.Socket | undefined {
    return this.socket
  }

  get reject(): Effect.Effect<void> {
    return Effect.sync(() => this.socket?.destroy())
  }
}

/**
 * Binds a stream listener in the current scope.
 * @category constructors
 */
export const make = Effect.fnUntraced(function*(transport: Transport.StreamTransport, options?: Options) {
  const kind = transport._tag === "Unix" ? "unix" : "tcp"
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
    const incoming = new Accepted(raw, ++nextId, kind, address)
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
 * A stream listener as a Layer.
 * @category layers
 */
export const layer = (transport: Transport.StreamTransport, options?: Options): Layer.Layer<Listener.Listener, Listener.BindError> =>
  Layer.effect(Listener.Listener, make(transport, options))

/**
 * A TCP listener. Defaults: host `127.0.0.1`, port `0` (ephemeral), backlog 511, no-delay on.
 * @category layers
 */
export const layerTcp = (options: Omit<Transport.Tcp, "_tag"> & Options = {}) => layer(Transport.tcp(options), options)

/**
 * A Unix-stream listener on `path`.
 * @category layers
 */
export const layerUnix = (options: Omit<Transport.Unix, "_tag"> & Options) => layer(Transport.unix(options), options)

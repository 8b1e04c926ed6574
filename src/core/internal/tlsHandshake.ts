/**
 * The server side of one TLS handshake over an accepted socket, shared by the listener (in this
 * process) and by remote members (over the socket they received): Node's `SecureContext` for the
 * settings' version, certificates by host name, the handshake timeout, and one log line and one
 * metric per handshake.
 *
 * `node:tls` rather than effect: effect's TLS (`NodeSocketServer.layerTls`, `Reader.upgrade`) is a
 * listener of its own or an upgrade of a socket already being read, while here the handshake must
 * start on a raw socket that has not been read yet (it may still go to another process) and must
 * end, one way or the other, within a timeout.
 */
import { Context, Deferred, Effect, Exit } from "effect"
import type * as Net from "node:net"
import * as NodeTls from "node:tls"
import * as Connection from "../Connection.ts"
import * as Metrics from "../Metrics.ts"
import * as Tls from "../Tls.ts"

/** The contexts of one settings version. */
interface Contexts {
  readonly fallback: NodeTls.SecureContext | undefined
  /** By lower-case host name, and `*.suffix` for wildcards. */
  readonly byName: ReadonlyMap<string, NodeTls.SecureContext>
}

// Building a context parses keys and certificates (~1 ms): once per version, not per connection.
// Connections already past their handshake keep what they use; a few versions are plenty.
const maxCachedVersions = 4
const cache = new Map<number, Contexts>()

/** The contexts of `settings`, built on first use of its version. Throws on bad credentials (checked at `Tls.make`). */
export const contextsOf = (settings: Tls.Settings): Contexts => {
  const cached = cache.get(settings.version)
  if (cached !== undefined) return cached
  const byName = new Map<string, NodeTls.SecureContext>()
  for (const [name, pair] of Object.entries(settings.sni)) {
    byName.set(name.toLowerCase(), Tls.secureContextUnsafe(pair, settings.minVersion))
  }
  const contexts: Contexts = {
    fallback: settings.key !== undefined && settings.cert !== undefined
      ? Tls.secureContextUnsafe({ key: settings.key, cert: settings.cert }, settings.minVersion)
      : undefined,
    byName
  }
  cache.set(settings.version, contexts)
  if (cache.size > maxCachedVersions) cache.delete(cache.keys().next().value!)
  return contexts
}

const lookup = (contexts: Contexts, servername: string): NodeTls.SecureContext | undefined => {
  const name = servername.toLowerCase()
  const exact = contexts.byName.get(name)
  if (exact !== undefined) return exact
  const dot = name.indexOf(".")
  return dot > 0 ? contexts.byName.get(`*${name.slice(dot)}`) : undefined
}

// Contexts of key pairs an SNI callback returned, per pair object.
const callbackContexts = new WeakMap<Tls.KeyPair, NodeTls.SecureContext>()

const contextOfPair = (pair: Tls.KeyPair, minVersion: Tls.MinVersion): Effect.Effect<NodeTls.SecureContext, Tls.TlsError> => {
  const cached = callbackContexts.get(pair)
  if (cached !== undefined) return Effect.succeed(cached)
  return Effect.flatMap(Tls.readKeyPair(pair, "the SNI callback's certificate"), (pem) =>
    Effect.try({
      try: () => {
        const context = Tls.secureContextUnsafe(pem, minVersion)
        callbackContexts.set(pair, context)
        return context
      },
      catch: (cause) =>
        new Tls.TlsError({ reason: "InvalidCredentials", message: "the SNI callback's certificate cannot be used", cause })
    }))
}

const notTlsCodes = new Set([
  "ERR_SSL_HTTP_REQUEST",
  "ERR_SSL_HTTPS_PROXY_REQUEST",
  "ERR_SSL_WRONG_VERSION_NUMBER",
  "ERR_SSL_PACKET_LENGTH_TOO_LONG",
  "ERR_SSL_UNKNOWN_PROTOCOL",
  "ERR_SSL_RECORD_LENGTH_MISMATCH",
  "ERR_SSL_UNEXPECTED_RECORD",
  "ERR_SSL_UNEXPECTED_MESSAGE"
])
const unsupportedCodes = new Set([
  "ERR_SSL_NO_APPLICATION_PROTOCOL",
  "ERR_SSL_NO_SHARED_CIPHER",
  "ERR_SSL_UNSUPPORTED_PROTOCOL",
  "ERR_SSL_VERSION_TOO_LOW",
  "ERR_SSL_NO_SUITABLE_SIGNATURE_ALGORITHM",
  "ERR_SSL_NO_SHARED_GROUPS",
  "ERR_SSL_NO_PROTOCOLS_AVAILABLE",
  "ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION",
  "ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL",
  "ERR_SSL_TLSV1_ALERT_INSUFFICIENT_SECURITY"
])
const peerClosedCodes = new Set(["ECONNRESET", "EPIPE", "ECONNABORTED", "ERR_STREAM_PREMATURE_CLOSE"])

/** Sorts a handshake error from Node into the reasons a user acts on. */
export const classify = (error: Error): Tls.HandshakeFailure => {
  const code = (error as { code?: unknown }).code
  if (typeof code !== "string") return "Failed"
  if (notTlsCodes.has(code)) return "NotTls"
  if (unsupportedCodes.has(code)) return "Unsupported"
  if (peerClosedCodes.has(code)) return "PeerClosed"
  // The client sent an alert about our certificate: unknown CA, bad or expired certificate, wrong name.
  if (/^ERR_SSL_(SSLV3|TLSV1|TLSV13)_ALERT_/.test(code) && /CA|CERTIFICATE/.test(code)) return "PeerRefused"
  return "Failed"
}

// A client that probes the port with something else, or leaves, is routine; the rest says something about
// clients or our certificate and is worth a line at the default level.
const logLevelOf = {
  NotTls: "Debug",
  PeerClosed: "Debug",
  Timeout: "Info",
  PeerRefused: "Info",
  Unsupported: "Info",
  Failed: "Info"
} as const satisfies Record<Tls.HandshakeFailure, "Debug" | "Info">

const messageOf: Record<Tls.HandshakeFailure, string> = {
  NotTls: "the client does not speak TLS",
  PeerClosed: "the client closed the connection during the handshake",
  Timeout: "the client did not complete the handshake in time",
  PeerRefused: "the client refused the server's certificate",
  Unsupported: "the client and the server have no TLS version, cipher or application protocol in common",
  Failed: "the handshake failed"
}

const noop = () => {}

/**
 * One connection's handshake: started at most once, by the first `secure`.
 */
export interface Handshake {
  /**
   * Starts the handshake if it has not started, and completes with the secured socket. A failure
   * is logged and counted once (whoever awaits it), the socket is closed, and the connection fails
   * with `Closed` (the peer did not become a connection: nothing more to report).
   */
  readonly secure: Effect.Effect<NodeTls.TLSSocket, Connection.ConnectionError>
  /** Whether the handshake has started: the raw socket then belongs to TLS and cannot be passed on. */
  readonly started: () => boolean
  /** Closes the connection, secured or not. */
  readonly destroy: () => void
}

/**
 * The handshake of `raw`, an accepted socket nothing has read yet. `settings` is read when the
 * handshake starts, so that a connection accepted before a reload and secured after it gets the
 * new credentials.
 */
export const make = (raw: Net.Socket, options: {
  readonly transport: "tcp" | "unix"
  readonly peer: string
  readonly settings: () => Tls.Settings
  readonly sniCallback?: ((servername: string) => Effect.Effect<Tls.KeyPair | undefined>) | undefined
}): Handshake => {
  let socket: NodeTls.TLSSocket | undefined
  let outcome: Deferred.Deferred<NodeTls.TLSSocket, Tls.TlsHandshakeError> | undefined
  let reported = false

  const start = (context: Context.Context<never>): Deferred.Deferred<NodeTls.TLSSocket, Tls.TlsHandshakeError> => {
    const done = Deferred.makeUnsafe<NodeTls.TLSSocket, Tls.TlsHandshakeError>()
    outcome = done
    const settings = options.settings()
    let timer: ReturnType<typeof setTimeout> | undefined
    const settle = (exit: Exit.Exit<NodeTls.TLSSocket, Tls.TlsHandshakeError>) => {
      clearTimeout(timer)
      if (socket !== undefined) {
        socket.off("secure", onSecure)
        socket.off("error", onError)
        socket.off("end", onGone)
        socket.off("close", onGone)
      }
      Deferred.doneUnsafe(done, exit)
    }
    const fail = (reason: Tls.HandshakeFailure, cause?: unknown) => {
      ;(socket ?? raw).destroy()
      settle(Exit.fail(new Tls.TlsHandshakeError({ reason, message: messageOf[reason], cause })))
    }
    const onSecure = () => settle(Exit.succeed(socket!))
    const onError = (error: Error) => fail(classify(error), error)
    // The listener allows half-open connections: a client that leaves mid-handshake may only end its side.
    const onGone = () => fail("PeerClosed")
    if (raw.destroyed) {
      fail("PeerClosed")
      return done
    }
    const contexts = contextsOf(settings)
    const callback = options.sniCallback
    const sni = contexts.byName.size > 0 || callback !== undefined
    socket = new NodeTls.TLSSocket(raw, {
      isServer: true,
      ...(contexts.fallback === undefined ? {} : { secureContext: contexts.fallback }),
      ...(settings.alpn.length > 0 ? { ALPNProtocols: [...settings.alpn] } : {}),
      ...(sni
        ? {
          SNICallback: (servername: string, reply: (error: Error | null, context?: NodeTls.SecureContext) => void) => {
            const found = lookup(contexts, servername)
            if (found !== undefined || callback === undefined) return reply(null, found)
            Effect.runForkWith(context)(
              Effect.flatMap(callback(servername), (pair) =>
                pair === undefined ? Effect.undefined : contextOfPair(pair, settings.minVersion))
            ).addObserver((exit) =>
              Exit.isSuccess(exit) ? reply(null, exit.value) : reply(new Error("the SNI callback failed"))
            )
          }
        }
        : {})
    })
    // A reset between the handshake and the first read must not crash the process.
    socket.on("error", noop)
    socket.once("secure", onSecure)
    socket.once("error", onError)
    socket.once("end", onGone)
    socket.once("close", onGone)
    timer = setTimeout(() => fail("Timeout"), settings.handshakeTimeoutMillis)
    return done
  }

  const reportSuccess = Effect.suspend(() => {
    if (reported) return Effect.void
    reported = true
    return Metrics.tlsHandshakeCompleted(options.transport)
  })
  const reportFailure = (error: Tls.TlsHandshakeError) =>
    Effect.suspend(() => {
      if (reported) return Effect.void
      reported = true
      return Effect.andThen(
        Metrics.tlsHandshakeFailed(options.transport, error.reason),
        Effect.logWithLevel(logLevelOf[error.reason])("TLS handshake failed", error.message).pipe(
          Effect.annotateLogs({ transport: options.transport, peer: options.peer, reason: error.reason })
        )
      )
    })

  const secure: Effect.Effect<NodeTls.TLSSocket, Connection.ConnectionError> = Effect.contextWith(
    (context: Context.Context<never>) =>
      Deferred.await(outcome ?? start(context)).pipe(
        Effect.tap(() => reportSuccess),
        Effect.tapError(reportFailure),
        Effect.mapError((error) =>
          new Connection.ConnectionError({ reason: "Closed", message: `TLS handshake failed: ${error.message}`, cause: error })
        )
      )
  )

  return {
    secure,
    started: () => outcome !== undefined,
    destroy: () => (socket ?? raw).destroy()
  }
}

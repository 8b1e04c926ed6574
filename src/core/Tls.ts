/**
 * TLS for the stream listeners (TCP and Unix stream): the options, the credentials as a value that
 * can be reloaded while the server runs, and the typed failures of configuration and handshakes.
 *
 * TLS is a transport option, not a kind of server: `StreamListener.layerTcp({ port, tls: { key, cert } })`
 * serves any handler (echo, chat, HTTP) over TLS, under every strategy.
 *
 * Where the handshake runs. An accepted connection is handed out before its handshake, which starts
 * at most once, when something first needs the secured socket:
 * - In this process (`sequential`, `fiber`) the strategy starts it ahead of running the job, for many
 *   connections at once (`Strategy.prepared`), so a peer that stalls its handshake holds up only
 *   itself: `sequential` goes on serving whichever connection is secured first. Doing it inside the
 *   job would let one silent client hold every other for the whole handshake timeout.
 * - A fork child or worker thread receives the raw socket and does the handshake itself (the TLS
 *   session then lives where the connection is served); the settings travel to it as data (below).
 * Either way a handshake that fails or stalls closes that connection only, logs one line and counts
 * it (`Metrics.tlsHandshakeFailures`); the server goes on.
 *
 * Credentials as data. Keys and certificates are PEM, given as text, bytes or a file path; files
 * are read when the config is made and on every `reload`. What a handshake needs is `Settings`:
 * plain data with a `version` that changes on every reload, so a fork child or worker thread can
 * receive it, build its `SecureContext` once per version and give new connections the newest.
 * Certificates per host name (SNI) are data too (`sni`, a host name to key and certificate map) and
 * so work under every strategy; a function choosing them (`sniCallback`) cannot cross a process and
 * works in this process only: the remote strategies refuse it with a clear error.
 *
 * @since 0.1.0
 */
import { Duration, Effect, Predicate, Schema } from "effect"
import { Buffer } from "node:buffer"
import * as Fs from "node:fs"
import * as NodeTls from "node:tls"

/**
 * PEM text, its bytes, or the path of a PEM file (read at `make` and on every `reload`).
 * @category models
 */
export type Pem = string | Uint8Array | { readonly path: string }

/**
 * A private key and its certificate (chain), both PEM.
 * @category models
 */
export interface KeyPair {
  readonly key: Pem
  readonly cert: Pem
}

/**
 * The lowest TLS version accepted.
 * @category models
 */
export type MinVersion = "TLSv1.2" | "TLSv1.3"

/**
 * TLS options of a stream listener. A default `key` and `cert`, or `sni`, or `sniCallback` is required.
 * @category models
 */
export interface Options {
  /** The private key of the default certificate. */
  readonly key?: Pem | undefined
  /** The default certificate (with its chain), for clients that send no host name or one `sni` does not cover. */
  readonly cert?: Pem | undefined
  /**
   * Certificates by host name (Server Name Indication): an exact name (`"api.example.com"`) or a
   * wildcard of one label (`"*.example.com"`); matched without regard to case. Works under every strategy.
   */
  readonly sni?: Readonly<Record<string, KeyPair>> | undefined
  /**
   * Chooses the certificate for a host name that `sni` does not cover; `undefined` falls back to
   * the default. Runs in this process only (`sequential`, `fiber`): the remote strategies refuse a
   * listener that has one. Return the same `KeyPair` object for the same name to reuse its context.
   */
  readonly sniCallback?: ((servername: string) => Effect.Effect<KeyPair | undefined>) | undefined
  /**
   * Application protocols offered in ALPN, most preferred first (`HttpServer.alpnProtocols` for HTTPS). A client that
   * offers none of them is refused. Default: no ALPN (any client is accepted, none is told a protocol).
   */
  readonly alpn?: ReadonlyArray<string> | undefined
  /** The lowest TLS version accepted. Default `"TLSv1.2"`. */
  readonly minVersion?: MinVersion | undefined
  /** How long a client may take to complete its handshake before it is cut off. Default 10 seconds. */
  readonly handshakeTimeout?: Duration.Input | undefined
}

/** @category constants */
export const defaultHandshakeTimeout: Duration.Input = "10 seconds"

/** @category constants */
export const defaultMinVersion: MinVersion = "TLSv1.2"

/**
 * A key and certificate as PEM text.
 * @category schemas
 */
export const KeyPairPem = Schema.Struct({ key: Schema.String, cert: Schema.String })

/**
 * What a handshake needs, as plain data that can be sent to a fork child or a worker thread.
 * `version` is unique in this process and changes on every reload.
 * @category schemas
 */
export const Settings = Schema.Struct({
  version: Schema.Number,
  key: Schema.optionalKey(Schema.String),
  cert: Schema.optionalKey(Schema.String),
  sni: Schema.Record(Schema.String, KeyPairPem),
  alpn: Schema.Array(Schema.String),
  minVersion: Schema.Literals(["TLSv1.2", "TLSv1.3"]),
  handshakeTimeoutMillis: Schema.Number
})

/** @category models */
export type Settings = typeof Settings.Type

/**
 * The TLS options cannot be used.
 *
 * - `MissingCredentials`: neither a default key and certificate, nor `sni`, nor `sniCallback`.
 * - `UnreadableFile`: a PEM path could not be read.
 * - `InvalidCredentials`: a key or certificate is not valid PEM, or the key does not match the certificate.
 *
 * @category errors
 */
export class TlsError extends Schema.TaggedError<TlsError>()("TlsError", {
  reason: Schema.Literals(["MissingCredentials", "UnreadableFile", "InvalidCredentials"]),
  message: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {}

/**
 * Why a client's handshake failed. The connection is closed; the server goes on.
 *
 * - `NotTls`: the client spoke something else (plain HTTP, a port scanner).
 * - `PeerClosed`: the client went away (or reset) before finishing.
 * - `Timeout`: the client did not finish within the handshake timeout (a slow or stalled client).
 * - `PeerRefused`: the client refused our certificate (it sent an alert: unknown CA, expired, wrong name).
 * - `Unsupported`: nothing in common (TLS version, cipher suites, ALPN protocol).
 * - `Failed`: anything else.
 *
 * @category errors
 */
export class TlsHandshakeError extends Schema.TaggedError<TlsHandshakeError>()("TlsHandshakeError", {
  reason: Schema.Literals(["NotTls", "PeerClosed", "Timeout", "PeerRefused", "Unsupported", "Failed"]),
  message: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {}

/** @category models */
export type HandshakeFailure = TlsHandshakeError["reason"]

const TypeId = "~effect-netkit/core/Tls/Config" as const

/**
 * What `reload` replaces; what is left out is read again from the original options (files are
 * re-read, text stays as it was).
 * @category models
 */
export interface Reload {
  readonly key?: Pem | undefined
  readonly cert?: Pem | undefined
  readonly sni?: Readonly<Record<string, KeyPair>> | undefined
}

/**
 * TLS credentials and options that a listener serves with. Made by `make`; pass it as a listener's
 * `tls` option and keep it to `reload` later.
 * @category models
 */
export interface Config {
  readonly [TypeId]: typeof TypeId
  /** The settings that new handshakes use now. */
  readonly current: Settings
  /** The in-process SNI callback, if any. */
  readonly sniCallback: ((servername: string) => Effect.Effect<KeyPair | undefined>) | undefined
  /**
   * Reads the credentials again (or takes the ones given) and checks them; from then on new
   * connections get them, under every strategy, while connections already secured go on with the
   * old ones. On failure nothing changes.
   */
  readonly reload: (update?: Reload) => Effect.Effect<Settings, TlsError>
}

/**
 * Whether `u` is a `Config` (as opposed to plain `Options`).
 * @category guards
 */
export const isConfig = (u: unknown): u is Config => Predicate.hasProperty(u, TypeId)

// Unique across configs in this process, so that a remote member can key its cache by it alone.
let lastVersion = 0

const describePem = (pem: Pem): string => typeof pem === "object" && "path" in pem ? pem.path : "inline PEM"

/**
 * Reads PEM as text (a file is read now); `what` names it in errors.
 * @category constructors
 */
export const readPem = (pem: Pem, what: string): Effect.Effect<string, TlsError> => {
  if (typeof pem === "string") return Effect.succeed(pem)
  if (pem instanceof Uint8Array) return Effect.succeed(Buffer.from(pem.buffer, pem.byteOffset, pem.byteLength).toString("latin1"))
  return Effect.try({
    try: () => Fs.readFileSync(pem.path, "latin1"),
    catch: (cause) =>
      new TlsError({
        reason: "UnreadableFile",
        message: `cannot read the TLS ${what} ${pem.path}: ${(cause as Error).message}`,
        cause
      })
  })
}

/**
 * Reads a key pair as PEM text (files are read now); `label` names it in errors.
 * @category constructors
 */
export const readKeyPair = (
  pair: KeyPair,
  label: string
): Effect.Effect<{ readonly key: string; readonly cert: string }, TlsError> =>
  Effect.all({ key: readPem(pair.key, `key of ${label}`), cert: readPem(pair.cert, `certificate of ${label}`) })

/**
 * Builds Node's `SecureContext` for one key pair; throws on a bad key or certificate.
 * @category constructors
 */
export const secureContextUnsafe = (pair: { readonly key: string; readonly cert: string }, minVersion: MinVersion) =>
  NodeTls.createSecureContext({ key: pair.key, cert: pair.cert, minVersion })

const check = (pair: { readonly key: string; readonly cert: string }, minVersion: MinVersion, label: string) =>
  Effect.try({
    try: () => void secureContextUnsafe(pair, minVersion),
    catch: (cause) =>
      new TlsError({
        reason: "InvalidCredentials",
        message: `the TLS key or certificate of ${label} cannot be used: ${(cause as Error).message}`,
        cause
      })
  })

const settingsOf = (options: Options, update: Reload | undefined): Effect.Effect<Settings, TlsError> =>
  Effect.gen(function*() {
    const key = update?.key ?? options.key
    const cert = update?.cert ?? options.cert
    const sniOptions = update?.sni ?? options.sni ?? {}
    const minVersion = options.minVersion ?? defaultMinVersion
    if ((key === undefined) !== (cert === undefined)) {
      return yield* new TlsError({
        reason: "MissingCredentials",
        message: key === undefined ? "a TLS certificate was given without its key" : "a TLS key was given without its certificate"
      })
    }
    if (key === undefined && Object.keys(sniOptions).length === 0 && options.sniCallback === undefined) {
      return yield* new TlsError({
        reason: "MissingCredentials",
        message: "TLS needs a key and certificate (key, cert), certificates by host name (sni) or an sniCallback"
      })
    }
    const pair = key !== undefined && cert !== undefined
      ? yield* readKeyPair({ key, cert }, `the default certificate (${describePem(cert)})`)
      : undefined
    if (pair !== undefined) yield* check(pair, minVersion, `the default certificate (${describePem(cert!)})`)
    const sni: Record<string, { key: string; cert: string }> = {}
    for (const [name, entry] of Object.entries(sniOptions)) {
      const label = `host ${name}`
      const read = yield* readKeyPair(entry, label)
      yield* check(read, minVersion, label)
      sni[name.toLowerCase()] = read
    }
    const timeout = Duration.toMillis(Duration.fromInputUnsafe(options.handshakeTimeout ?? defaultHandshakeTimeout))
    return {
      version: ++lastVersion,
      ...(pair === undefined ? {} : { key: pair.key, cert: pair.cert }),
      sni,
      alpn: [...(options.alpn ?? [])],
      minVersion,
      handshakeTimeoutMillis: timeout
    } satisfies Settings
  })

const definedOf = (update: Reload): Reload => Object.fromEntries(Object.entries(update).filter(([, v]) => v !== undefined))

/**
 * Reads and checks the credentials (a bad key, certificate or path fails here, not at the first
 * client) and returns the config to serve with.
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<Config, TlsError> =>
  Effect.map(settingsOf(options, undefined), (initial) => {
    let current = initial
    let base: Options = options
    return {
      [TypeId]: TypeId,
      get current() {
        return current
      },
      sniCallback: options.sniCallback,
      reload: (update) =>
        Effect.map(settingsOf(base, update), (next) => {
          current = next
          // what was replaced is the base for the next reload
          if (update !== undefined) base = { ...base, ...definedOf(update) }
          return next
        })
    } satisfies Config
  })

/**
 * Options or a config, as a listener takes them, turned into a config.
 * @category constructors
 */
export const configOf = (tls: Options | Config): Effect.Effect<Config, TlsError> =>
  isConfig(tls) ? Effect.succeed(tls) : make(tls)

/**
 * TLS for tests: a server over a TLS listener, and real clients (Node's `tls.connect`, `openssl
 * s_client`, `curl`), each bounded by a timeout so a broken server fails the test instead of hanging it.
 */
import type { Effect, Layer, Scope } from "effect"
import { Buffer } from "node:buffer"
import * as ChildProcess from "node:child_process"
import type * as Net from "node:net"
import * as NodeTls from "node:tls"
import type * as Handler from "../../src/core/Handler.ts"
import type * as Listener from "../../src/core/Listener.ts"
import type * as Server from "../../src/core/Server.ts"
import type * as Strategy from "../../src/core/Strategy.ts"
import * as StreamListener from "../../src/core/StreamListener.ts"
import type * as Tls from "../../src/core/Tls.ts"
import type * as Transport from "../../src/core/Transport.ts"
import * as Loopback from "./loopback.ts"
import type { Target } from "./loopback.ts"

/** Starts a server over a TLS listener in the test's scope; releasing the scope shuts it down. */
export const startServer = <E>(
  transport: Transport.StreamTransport,
  tls: Tls.Config,
  strategy: Layer.Layer<Strategy.Strategy>,
  handler: Handler.Handler<E, never>,
  options?: Server.Options
): Effect.Effect<Server.Server["Service"], Listener.BindError, Scope.Scope> =>
  Loopback.startServerOn(StreamListener.layer(transport, { tls }), strategy, handler, options)

/** How a Node client connects. */
export interface ClientOptions {
  /** The CA to trust (PEM). */
  readonly ca: string
  /** The host name sent (SNI) and checked. Default `localhost`. */
  readonly servername?: string | undefined
  readonly alpn?: ReadonlyArray<string> | undefined
}

const connectOptions = (target: Target, options: ClientOptions): NodeTls.ConnectionOptions => ({
  ...("path" in target ? { path: target.path } : { host: target.host ?? "127.0.0.1", port: target.port }),
  ca: options.ca,
  servername: options.servername ?? "localhost",
  ...(options.alpn === undefined ? {} : { ALPNProtocols: [...options.alpn] })
})

/** Connects and resolves once the handshake is done (and the certificate verified); rejects otherwise. */
export const connect = (target: Target, options: ClientOptions, timeoutMs = 10_000): Promise<NodeTls.TLSSocket> =>
  Loopback.opened(NodeTls.connect(connectOptions(target, options)), "secureConnect", timeoutMs)

/** Connects over TLS, sends `payload`, half-closes, and collects everything until the server ends. */
export const exchange = (
  target: Target,
  payload: Uint8Array | string,
  options: ClientOptions,
  timeoutMs = 20_000
): Promise<{ readonly data: Buffer; readonly serial: string; readonly alpn: string | false }> =>
  connect(target, options, timeoutMs).then((socket) => {
    const serial = socket.getPeerCertificate().serialNumber
    const alpn = socket.alpnProtocol ?? false
    return Loopback.sendAndCollect(socket, payload, timeoutMs).then((data) => ({ data, serial, alpn }))
  })

/** Resolves with everything the server sent once it ended or closed the connection; rejects if it did not within `timeoutMs`. */
export const closedByServer = (socket: Net.Socket, timeoutMs = 10_000): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    const timer = setTimeout(() => reject(new Error("the server did not close the connection in time")), timeoutMs)
    const done = () => {
      clearTimeout(timer)
      resolve(Buffer.concat(chunks))
    }
    socket.on("data", (chunk: Buffer) => chunks.push(chunk))
    socket.once("end", done)
    socket.once("close", done)
    socket.resume()
  })

/** What a child process did. */
export interface Run {
  readonly code: number | string
  readonly stdout: string
  readonly stderr: string
}

/**
 * Runs a program to its end (killed after `timeoutMs`), feeding it `input`. Its stdin closes once
 * stdout contains `until` (at once without it), for clients that stop when their input ends.
 */
export const run = (
  command: string,
  args: ReadonlyArray<string>,
  options: { readonly input?: string | undefined; readonly until?: string | undefined; readonly timeoutMs?: number | undefined } = {}
): Promise<Run> =>
  new Promise((resolve) => {
    const child = ChildProcess.spawn(command, args, { stdio: ["pipe", "pipe", "pipe"] })
    const stdout: Array<Buffer> = []
    const stderr: Array<Buffer> = []
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 20_000)
    child.stdout.on("data", (chunk: Buffer) => {
      stdout.push(chunk)
      if (options.until !== undefined && Buffer.concat(stdout).includes(options.until)) child.stdin.end()
    })
    child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk))
    child.stdin.on("error", () => {})
    child.once("close", (code, signal) => {
      clearTimeout(timer)
      resolve({
        code: code ?? signal ?? "unknown",
        stdout: Buffer.concat(stdout).toString("utf8"),
        stderr: Buffer.concat(stderr).toString("utf8")
      })
    })
    if (options.until === undefined) child.stdin.end(options.input ?? "")
    else child.stdin.write(options.input ?? "")
  })

/**
 * `openssl s_client` against `127.0.0.1:port`, checking the certificate against `caPath` and the
 * name `localhost`. It sends `input` and ends (close_notify) once its output contains `until` (at
 * once without it); what it read is on stdout, with the session details.
 */
export const sClient = (
  port: number,
  options: {
    readonly caPath: string
    readonly input?: string | undefined
    readonly until?: string | undefined
    readonly args?: ReadonlyArray<string> | undefined
  }
): Promise<Run> =>
  run("openssl", [
    "s_client",
    "-connect",
    `127.0.0.1:${port}`,
    "-servername",
    "localhost",
    "-verify_hostname",
    "localhost",
    "-CAfile",
    options.caPath,
    "-verify_return_error",
    ...(options.args ?? [])
  ], { input: options.input, until: options.until })

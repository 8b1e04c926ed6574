/**
 * TLS handshake load generator, a separate process pinned to its own core: `--connections` loops, each opening a
 * new TLS connection (a full handshake: no session is resumed), sending one `GET /` with `Connection: close`, and
 * reading the response until the server closes. The certificate is not verified (the server's work is the same
 * either way, and verifying would only slow this side).
 *
 *   node bench/load/tlsHandshakeLoad.ts --host H --port P [--connections N] [--warmup-ms MS] [--window-ms MS]
 *     [--server-pids 1,2]
 *
 * Prints exactly one JSON line (TlsHandshakeLoadResult or a failure) and exits.
 */
import * as net from "node:net"
import * as tls from "node:tls"
import { performance } from "node:perf_hooks"
import { parseArgs } from "node:util"
import { clockTicksPerSecond, readCpuMs } from "../lib/procStat.ts"

/** The JSON line this program prints. */
export interface TlsHandshakeLoadResult {
  readonly ok: true
  readonly windowMs: number
  /** Connections completed (handshake, request, whole response, close) in the window. */
  readonly connections: number
  /** Connections that failed in the window. */
  readonly errors: number
  /** Load generator CPU as % of one core over the window. */
  readonly loadCpuPct: number
  /** Server process tree CPU (ms) over the window; null when /proc is unreadable. */
  readonly serverCpuMs: number | null
}

const { values } = parseArgs({
  options: {
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string" },
    connections: { type: "string", default: "16" },
    "warmup-ms": { type: "string", default: "1000" },
    "window-ms": { type: "string", default: "5000" },
    "server-pids": { type: "string", default: "" }
  }
})

const host = values.host
const port = Number(values.port)
const loops = Number(values.connections)
const warmupMs = Number(values["warmup-ms"])
const windowMs = Number(values["window-ms"])
const serverPids = values["server-pids"].split(",").filter((s) => s !== "").map(Number)

const emit = (line: TlsHandshakeLoadResult | { readonly ok: false; readonly error: string }, code: number): void => {
  process.stdout.write(`${JSON.stringify(line)}\n`, () => process.exit(code))
}

if (!(Number.isInteger(port) && port > 0 && port < 65536 && loops >= 1 && loops <= 1024 && windowMs >= 100)) {
  emit({ ok: false, error: "bad arguments" }, 2)
} else {
  setTimeout(() => emit({ ok: false, error: "deadline exceeded" }, 1), warmupMs + windowMs + 10_000).unref()
  clockTicksPerSecond()
  const request = Buffer.from("GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
  let counting = false
  let completed = 0
  let errors = 0
  const loop = (): void => {
    let gotBytes = false
    // noDelay: the request follows the handshake at once, not after the server acks our last handshake record
    const tcp = net.connect({ host, port, noDelay: true })
    const socket = tls.connect({ socket: tcp, servername: "localhost", rejectUnauthorized: false, ALPNProtocols: ["http/1.1"] })
    socket.once("secureConnect", () => socket.write(request))
    socket.on("data", () => {
      gotBytes = true
    })
    socket.once("error", () => {
      if (counting) errors++
    })
    socket.once("close", (hadError) => {
      if (counting && gotBytes && !hadError) completed++
      setImmediate(loop)
    })
  }
  for (let i = 0; i < loops; i++) loop()
  setTimeout(() => {
    counting = true
    const startedAt = performance.now()
    const cpu = process.cpuUsage()
    const serverBefore = readCpuMs(serverPids)
    setTimeout(() => {
      const serverAfter = readCpuMs(serverPids)
      const elapsedMs = performance.now() - startedAt
      const used = process.cpuUsage(cpu)
      emit({
        ok: true,
        windowMs: elapsedMs,
        connections: completed,
        errors,
        loadCpuPct: ((used.user + used.system) / 1000 / elapsedMs) * 100,
        serverCpuMs: serverBefore === null || serverAfter === null ? null : serverAfter - serverBefore
      }, 0)
    }, windowMs)
  }, warmupMs)
}

/**
 * Load generator of the strategies benchmark (kept next to the server it drives), a separate
 * process pinned by the suite. Raw `node:net`, so that the server is the bottleneck.
 *
 *   node bench/targets/cpuLoad.ts --mode requests|connect --host H --port P [--connections 8]
 *     [--warmup-ms MS] [--window-ms MS] [--server-pid PID]
 *
 * - `requests`: `connections` long-lived connections, one 64-byte request in flight on each; the
 *   next is sent as soon as the 64-byte reply is back. Counts completed requests.
 * - `connect`: `connections` loops of connect, one request, reply, close (until the server's close
 *   is seen). Counts completed cycles; latency is the whole cycle.
 *
 * The server's CPU covers its whole process tree, re-read at the window's edges because fork
 * children come and go: live processes' own time plus, for the root, the time of reaped children.
 * Prints exactly one JSON line (`CpuLoadResult` or `{ ok: false, error }`) and exits.
 */
import { readFileSync } from "node:fs"
import * as Net from "node:net"
import { performance } from "node:perf_hooks"
import { parseArgs } from "node:util"
import { clockTicksPerSecond, processTree, readMachineBusyMs } from "../lib/procStat.ts"

/** The JSON line this program prints on success. */
export interface CpuLoadResult {
  readonly ok: true
  readonly mode: "requests" | "connect"
  readonly windowMs: number
  /** Completed requests (`requests`) or connect-request-close cycles (`connect`) in the window. */
  readonly count: number
  readonly meanUs: number
  readonly p50Us: number
  readonly p99Us: number
  readonly loadCpuPct: number
  /** Server process tree CPU (ms) over the window; null when /proc is unreadable. */
  readonly serverCpuMs: number | null
  /** Everything else on the machine over the window, % of one core; null when unreadable. */
  readonly otherCpuPct: number | null
}

const REQUEST_BYTES = 64

const { values } = parseArgs({
  options: {
    mode: { type: "string" },
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string" },
    connections: { type: "string", default: "8" },
    "warmup-ms": { type: "string", default: "1000" },
    "window-ms": { type: "string", default: "5000" },
    "server-pid": { type: "string", default: "0" }
  }
})
const mode = values.mode
const host = values.host
const port = Number(values.port)
const connections = Number(values.connections)
const warmupMs = Number(values["warmup-ms"])
const windowMs = Number(values["window-ms"])
const serverPid = Number(values["server-pid"])

let finished = false
const emit = (line: CpuLoadResult | { readonly ok: false; readonly error: string }, code: number): void => {
  if (finished) return
  finished = true
  process.stdout.write(`${JSON.stringify(line)}\n`, () => process.exit(code))
}
const fail = (error: string): void => emit({ ok: false, error }, 1)

const valid = (mode === "requests" || mode === "connect") && Number.isInteger(port) && port > 0 && port < 65536 &&
  Number.isInteger(connections) && connections >= 1 && connections <= 256 && warmupMs >= 0 && windowMs >= 100

// Hard bound on the whole run whatever happens (a stalled server, a lost connect).
const deadline = setTimeout(() => fail("deadline exceeded (server stalled)"), warmupMs + windowMs + 15_000)
clockTicksPerSecond()

/** utime+stime of every live process in the tree, plus cutime+cstime of the root (its reaped children). */
const treeCpuMs = (): number | null => {
  if (!(serverPid > 0)) return null
  let ticks = 0
  let seen = false
  for (const pid of processTree(serverPid)) {
    try {
      const text = readFileSync(`/proc/${pid}/stat`, "utf8")
      const fields = text.slice(text.lastIndexOf(")") + 2).split(" ")
      ticks += Number(fields[11]) + Number(fields[12])
      if (pid === serverPid) ticks += Number(fields[13]) + Number(fields[14])
      seen = true
    } catch {
      // exited between the listing and the read
    }
  }
  return seen ? (ticks * 1000) / clockTicksPerSecond() : null
}

// Latency histogram: 10 µs buckets up to 10 s.
const BUCKET_US = 10
const histogram = new Uint32Array(1_000_000)
let measuring = false
let count = 0
let totalUs = 0
const record = (startedAt: number) => {
  if (!measuring) return
  const us = (performance.now() - startedAt) * 1000
  histogram[Math.min(histogram.length - 1, Math.floor(us / BUCKET_US))]++
  totalUs += us
  count++
}
const percentile = (q: number): number => {
  if (count === 0) return 0
  const rank = Math.ceil(q * count)
  let seen = 0
  for (let bucket = 0; bucket < histogram.length; bucket++) {
    seen += histogram[bucket]!
    if (seen >= rank) return (bucket + 1) * BUCKET_US
  }
  return histogram.length * BUCKET_US
}

const run = () => {
  setTimeout(() => {
    const startedAt = performance.now()
    const cpu = process.cpuUsage()
    const server = treeCpuMs()
    const busy = readMachineBusyMs()
    measuring = true
    setTimeout(() => {
      measuring = false
      const elapsedMs = performance.now() - startedAt
      const used = process.cpuUsage(cpu)
      const loadCpuMs = (used.user + used.system) / 1000
      const serverEnd = treeCpuMs()
      const busyEnd = readMachineBusyMs()
      const serverCpuMs = server === null || serverEnd === null ? null : Math.max(0, serverEnd - server)
      emit({
        ok: true,
        mode: mode as "requests" | "connect",
        windowMs: elapsedMs,
        count,
        meanUs: count === 0 ? 0 : totalUs / count,
        p50Us: percentile(0.5),
        p99Us: percentile(0.99),
        loadCpuPct: (loadCpuMs / elapsedMs) * 100,
        serverCpuMs,
        otherCpuPct: busy === null || busyEnd === null || serverCpuMs === null
          ? null
          : Math.max(0, ((busyEnd - busy - serverCpuMs - loadCpuMs) / elapsedMs) * 100)
      }, 0)
    }, windowMs)
  }, warmupMs)
}

const request = Buffer.alloc(REQUEST_BYTES, 0x79)

/** Long-lived connections, one request in flight on each. */
const requests = () => {
  let connected = 0
  for (let i = 0; i < connections; i++) {
    let pending = 0
    let sentAt = 0
    const socket = Net.connect({ host, port, noDelay: true })
    const send = () => {
      sentAt = performance.now()
      socket.write(request)
    }
    socket.on("connect", () => {
      send()
      if (++connected === connections) run()
    })
    socket.on("data", (chunk: Buffer) => {
      pending += chunk.length
      while (pending >= REQUEST_BYTES) {
        pending -= REQUEST_BYTES
        record(sentAt)
        send()
      }
    })
    socket.on("error", (error) => fail(`connection ${i}: ${error.message}`))
    socket.on("close", () => fail(`connection ${i} closed by the server`))
  }
}

/** Loops of connect, one request, close. */
const connect = () => {
  const cycle = (i: number) => {
    const startedAt = performance.now()
    let received = 0
    const socket = Net.connect({ host, port, noDelay: true })
    socket.on("connect", () => socket.end(request))
    socket.on("data", (chunk: Buffer) => {
      received += chunk.length
    })
    socket.on("error", (error) => fail(`cycle on loop ${i}: ${error.message}`))
    socket.on("close", (hadError) => {
      if (hadError || finished) return
      if (received < REQUEST_BYTES) return fail(`loop ${i}: short reply (${received} bytes)`)
      record(startedAt)
      cycle(i)
    })
  }
  for (let i = 0; i < connections; i++) cycle(i)
  run()
}

if (!valid) fail(`invalid arguments: ${process.argv.slice(2).join(" ")}`)
else if (mode === "requests") requests()
else connect()
void deadline

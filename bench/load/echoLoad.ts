/**
 * Echo load generator, a separate process pinned to its own core. Raw
 * `node:net` / `node:dgram`, reusable buffers and no per-message allocation
 * beyond what Node itself does, so that the server under test (not this
 * program) is the bottleneck as far as possible.
 *
 *   node bench/load/echoLoad.ts --mode tcp-stream|tcp-rtt|udp --host H --port P
 *     [--connections N] [--inflight BYTES] [--chunk BYTES] [--size BYTES]
 *     [--window N] [--warmup-ms MS] [--window-ms MS] [--server-pids 1,2]
 *
 * Prints exactly one JSON line (EchoLoadResult or EchoLoadFailure) and exits.
 */
import * as dgram from "node:dgram"
import * as net from "node:net"
import { performance } from "node:perf_hooks"
import { parseArgs } from "node:util"
import { clockTicksPerSecond, readCpuMs, readMachineBusyMs } from "../lib/procStat.ts"
import type { EchoLoadFailure, EchoLoadMode, EchoLoadResult } from "./echoLoadResult.ts"

const { values } = parseArgs({
  options: {
    mode: { type: "string" },
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string" },
    connections: { type: "string", default: "4" },
    inflight: { type: "string", default: String(256 * 1024) },
    chunk: { type: "string", default: String(64 * 1024) },
    size: { type: "string", default: "64" },
    window: { type: "string", default: "32" },
    "warmup-ms": { type: "string", default: "1000" },
    "window-ms": { type: "string", default: "5000" },
    "server-pids": { type: "string", default: "" }
  }
})

const mode = values.mode as EchoLoadMode
const host = values.host
const port = Number(values.port)
const connections = Number(values.connections)
const inflight = Number(values.inflight)
const chunkBytes = Number(values.chunk)
const size = Number(values.size)
const udpWindow = Number(values.window)
const warmupMs = Number(values["warmup-ms"])
const windowMs = Number(values["window-ms"])
const serverPids = values["server-pids"]
  .split(",")
  .filter((s) => s !== "")
  .map(Number)

let finished = false

const emit = (line: EchoLoadResult | EchoLoadFailure, code: number): void => {
  if (finished) return
  finished = true
  process.stdout.write(`${JSON.stringify(line)}\n`, () => process.exit(code))
}

const fail = (error: string): void => emit({ ok: false, error }, 1)

const valid =
  (mode === "tcp-stream" || mode === "tcp-rtt" || mode === "udp") &&
  Number.isInteger(port) && port > 0 && port < 65536 &&
  Number.isInteger(connections) && connections >= 1 && connections <= 1024 &&
  chunkBytes >= 1 && inflight >= chunkBytes && size >= 8 && size <= 65_000 &&
  udpWindow >= 1 && udpWindow <= 4096 && warmupMs >= 0 && windowMs >= 100 && windowMs <= 600_000

// Hard bound on the whole run whatever happens (server stalls, lost connects).
const deadline = setTimeout(() => fail("deadline exceeded (server stalled or never accepted)"), warmupMs + windowMs + 10_000)

// Read once up front: the first call shells out to getconf, which must not
// land inside the measurement window.
clockTicksPerSecond()

/** Window edges: what each mode counts, plus CPU of both sides. */
interface Window {
  startedAt: number
  cpu: NodeJS.CpuUsage
  serverCpuMs: number | null
  machineBusyMs: number | null
}

const openWindow = (): Window => ({
  startedAt: performance.now(),
  cpu: process.cpuUsage(),
  serverCpuMs: readCpuMs(serverPids),
  machineBusyMs: readMachineBusyMs()
})

const closeWindow = (opened: Window) => {
  const serverCpuMs = readCpuMs(serverPids)
  const machineBusyMs = readMachineBusyMs()
  const elapsedMs = performance.now() - opened.startedAt
  const cpu = process.cpuUsage(opened.cpu)
  const loadCpuMs = (cpu.user + cpu.system) / 1000
  const serverDelta = serverCpuMs === null || opened.serverCpuMs === null ? null : serverCpuMs - opened.serverCpuMs
  const busyDelta = machineBusyMs === null || opened.machineBusyMs === null ? null : machineBusyMs - opened.machineBusyMs
  return {
    windowMs: elapsedMs,
    loadCpuPct: (loadCpuMs / elapsedMs) * 100,
    serverCpuMs: serverDelta,
    // Clamped: jiffy granularity can make the difference slightly negative.
    otherCpuPct: busyDelta === null || serverDelta === null
      ? null
      : Math.max(0, ((busyDelta - serverDelta - loadCpuMs) / elapsedMs) * 100)
  }
}

/** Warm-up, then the window; `begin`/`end` snapshot the mode's counters. */
const schedule = (begin: () => void, end: (window: Window) => void): void => {
  setTimeout(() => {
    begin()
    const window = openWindow()
    setTimeout(() => end(window), windowMs)
  }, warmupMs)
}

/** Shared TCP connection setup: every connection must come up, and stay up until the end. */
const connectAll = (
  onread: (index: number) => net.OnReadOpts,
  onConnect: (socket: net.Socket, index: number) => void,
  onAllConnected: () => void
): void => {
  let connected = 0
  for (let i = 0; i < connections; i++) {
    const socket = net.connect({ host, port, noDelay: true, onread: onread(i) })
    socket.on("connect", () => {
      onConnect(socket, i)
      if (++connected === connections) onAllConnected()
    })
    socket.on("error", (error) => fail(`connection ${i}: ${error.message}`))
    socket.on("close", () => fail(`connection ${i} closed by the server`))
  }
}

/**
 * Throughput: each connection keeps up to `inflight` bytes outstanding
 * (written but not yet echoed back), topping up in `chunk`-sized writes.
 */
const tcpStream = (): void => {
  const chunk = Buffer.alloc(chunkBytes, 0x78)
  // One read buffer for all connections: onread callbacks run one at a time
  // and the bytes are only counted, never kept.
  const readBuffer = Buffer.allocUnsafe(256 * 1024)
  const sent = new Float64Array(connections)
  const received = new Float64Array(connections)
  const sockets: Array<net.Socket> = []
  let total = 0
  const pump = (i: number) => {
    const socket = sockets[i]
    while (sent[i] - received[i] + chunkBytes <= inflight) {
      socket.write(chunk)
      sent[i] += chunkBytes
    }
  }
  connectAll(
    (i) => ({
      buffer: readBuffer,
      callback: (n) => {
        received[i] += n
        total += n
        pump(i)
        return true
      }
    }),
    (socket, i) => {
      sockets[i] = socket
      pump(i)
    },
    () => {
      let atStart = 0
      schedule(
        () => (atStart = total),
        (window) => {
          const bytes = total - atStart
          emit({ ok: true, mode, ...closeWindow(window), bytes }, 0)
        }
      )
    }
  )
}

/** Latency histogram: 1 µs buckets up to 200 ms; slower round trips land in the last. */
const HISTOGRAM_BUCKETS = 200_000

/**
 * Round trips: one `size`-byte message in flight per connection; the next is
 * sent as soon as all `size` bytes of the previous one are back.
 */
const tcpRtt = (): void => {
  const message = Buffer.alloc(size, 0x79)
  const readBuffer = Buffer.allocUnsafe(64 * 1024)
  const histogram = new Uint32Array(HISTOGRAM_BUCKETS)
  const pending = new Float64Array(connections)
  const sentAt = new Float64Array(connections)
  const sockets: Array<net.Socket> = []
  let measuring = false
  let count = 0
  let maxUs = 0
  connectAll(
    (i) => ({
      buffer: readBuffer,
      callback: (n) => {
        pending[i] += n
        if (pending[i] < size) return true
        pending[i] -= size
        const now = performance.now()
        if (measuring) {
          const us = (now - sentAt[i]) * 1000
          histogram[Math.min(HISTOGRAM_BUCKETS - 1, Math.floor(us))]++
          if (us > maxUs) maxUs = us
          count++
        }
        sentAt[i] = now
        sockets[i].write(message)
        return true
      }
    }),
    (socket, i) => {
      sockets[i] = socket
      sentAt[i] = performance.now()
      socket.write(message)
    },
    () =>
      schedule(
        () => (measuring = true),
        (window) => {
          measuring = false
          const edges = closeWindow(window)
          emit(
            {
              ok: true,
              mode,
              ...edges,
              roundTrips: count,
              p50Us: percentile(histogram, count, 0.5),
              p99Us: percentile(histogram, count, 0.99),
              maxUs
            },
            0
          )
        }
      )
  )
}

/** Upper edge (µs) of the bucket holding the q-quantile sample. */
const percentile = (histogram: Uint32Array, count: number, q: number): number => {
  if (count === 0) return 0
  const rank = Math.ceil(q * count)
  let seen = 0
  for (let bucket = 0; bucket < histogram.length; bucket++) {
    seen += histogram[bucket]
    if (seen >= rank) return bucket + 1
  }
  return histogram.length
}

/** A datagram with no reply after this many loss-check ticks is presumed lost. */
const LOSS_TICK_MS = 20
const LOSS_TICKS = 3

/**
 * UDP: `connections` sockets, each with `window` datagrams outstanding. Every
 * datagram carries (slot, sequence); a reply for the slot's current sequence
 * frees the slot, which is immediately re-sent. A ticker re-sends slots whose
 * reply never came, so losses shrink the count but never stall the run, and
 * stale replies are counted but do not inflate the in-flight window.
 */
const udp = (): void => {
  const sockets: Array<dgram.Socket> = []
  const buffers: Array<Array<Buffer>> = []
  const sequences: Array<Uint32Array> = []
  const sentTick: Array<Uint32Array> = []
  let tick = 0
  let replies = 0
  let lost = 0
  let ready = 0
  const connected: Array<boolean> = []

  // Each slot owns its buffer: a queued send may still reference it, and a
  // slot is only rewritten after its reply arrived or it timed out.
  const send = (s: number, slot: number) => {
    const sequence = (sequences[s][slot] + 1) >>> 0
    sequences[s][slot] = sequence
    sentTick[s][slot] = tick
    const buffer = buffers[s][slot]
    buffer.writeUInt32LE(sequence, 4)
    sockets[s].send(buffer)
  }

  for (let s = 0; s < connections; s++) {
    const socket = dgram.createSocket("udp4")
    sockets.push(socket)
    sequences.push(new Uint32Array(udpWindow))
    sentTick.push(new Uint32Array(udpWindow))
    buffers.push(
      Array.from({ length: udpWindow }, (_, slot) => {
        const buffer = Buffer.alloc(size, 0x7a)
        buffer.writeUInt32LE(slot, 0)
        return buffer
      })
    )
    socket.on("message", (message) => {
      replies++
      if (message.length < 8) return
      const slot = message.readUInt32LE(0)
      if (slot < udpWindow && message.readUInt32LE(4) === sequences[s][slot]) send(s, slot)
    })
    // ECONNREFUSED (ICMP port unreachable) means the server is gone.
    socket.on("error", (error) => fail(`udp socket ${s}: ${error.message}`))
    socket.connect(port, host, () => {
      connected[s] = true
      for (let slot = 0; slot < udpWindow; slot++) send(s, slot)
      if (++ready === connections) start()
    })
  }

  const ticker = setInterval(() => {
    tick++
    for (let s = 0; s < connections; s++) {
      if (connected[s] !== true) continue
      const ticks = sentTick[s]
      for (let slot = 0; slot < udpWindow; slot++) {
        if (tick - ticks[slot] >= LOSS_TICKS) {
          lost++
          send(s, slot)
        }
      }
    }
  }, LOSS_TICK_MS)

  const start = () => {
    let repliesAtStart = 0
    let lostAtStart = 0
    schedule(
      () => {
        repliesAtStart = replies
        lostAtStart = lost
      },
      (window) => {
        clearInterval(ticker)
        emit({ ok: true, mode, ...closeWindow(window), packets: replies - repliesAtStart, lost: lost - lostAtStart }, 0)
      }
    )
  }
}

if (!valid) {
  fail(`invalid arguments: ${process.argv.slice(2).join(" ")}`)
} else if (mode === "tcp-stream") {
  tcpStream()
} else if (mode === "tcp-rtt") {
  tcpRtt()
} else {
  udp()
}
void deadline

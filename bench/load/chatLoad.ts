/**
 * Chat fan-out load generator, a separate process pinned to its own core. Raw `node:net`: it logs in `senders`
 * clients that say and receive, and `receivers` clients that only receive, then measures delivered `message`
 * frames per second and the delivery latency (the send time is embedded in each text, and senders and receivers
 * share this process's clock).
 *
 *   node bench/load/chatLoad.ts --host H --port P --senders S --receivers R --window W
 *     [--text-bytes N] [--warmup-ms MS] [--window-ms MS] [--server-pids 1,2]
 *
 * Flow control: each sender keeps at most `window` messages not yet seen by every other client, so queues stay
 * bounded (far below the server's slow-consumer limit) and the rate is what the server can really deliver.
 * Receivers never parse JSON: they find the `~sender~seq~time~` marker in the frame's bytes.
 *
 * Prints exactly one JSON line (ChatLoadResult or ChatLoadFailure) and exits.
 */
import * as net from "node:net"
import { performance } from "node:perf_hooks"
import { parseArgs } from "node:util"
import { clockTicksPerSecond, readCpuMs, readMachineBusyMs } from "../lib/procStat.ts"
import type { ChatLoadFailure, ChatLoadResult } from "./chatLoadResult.ts"

const { values } = parseArgs({
  options: {
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string" },
    senders: { type: "string", default: "16" },
    receivers: { type: "string", default: "0" },
    window: { type: "string", default: "8" },
    "text-bytes": { type: "string", default: "64" },
    "warmup-ms": { type: "string", default: "1000" },
    "window-ms": { type: "string", default: "5000" },
    "server-pids": { type: "string", default: "" }
  }
})

const host = values.host
const port = Number(values.port)
const senders = Number(values.senders)
const receivers = Number(values.receivers)
const window = Number(values.window)
const textBytes = Number(values["text-bytes"])
const warmupMs = Number(values["warmup-ms"])
const windowMs = Number(values["window-ms"])
const serverPids = values["server-pids"].split(",").filter((s) => s !== "").map(Number)
const clients = senders + receivers

let finished = false
const emit = (line: ChatLoadResult | ChatLoadFailure, code: number): void => {
  if (finished) return
  finished = true
  process.stdout.write(`${JSON.stringify(line)}\n`, () => process.exit(code))
}
const fail = (error: string): void => emit({ ok: false, error }, 1)

const valid = Number.isInteger(port) && port > 0 && port < 65536 &&
  Number.isInteger(senders) && senders >= 1 && Number.isInteger(receivers) && receivers >= 0 &&
  clients >= 2 && clients <= 5000 && Number.isInteger(window) && window >= 1 && window <= 4096 &&
  textBytes >= 40 && textBytes <= 4000 && warmupMs >= 0 && windowMs >= 100 && windowMs <= 600_000

// Logging in thousands of clients (each login is a `joined` to everyone) takes a while; bound it separately.
const SETUP_LIMIT_MS = 60_000
const deadline = setTimeout(
  () => fail("deadline exceeded (server stalled or never accepted)"),
  SETUP_LIMIT_MS + warmupMs + windowMs + 10_000
)

// The first call shells out to getconf, which must not land inside the measurement window.
clockTicksPerSecond()

const frameOf = (message: unknown): Buffer => {
  const payload = Buffer.from(JSON.stringify(message))
  const frame = Buffer.allocUnsafe(4 + payload.length)
  frame.writeUInt32BE(payload.length, 0)
  payload.copy(frame, 4)
  return frame
}

/** Latency histogram: 10 µs buckets up to 2 s; slower deliveries land in the last. */
const BUCKET_US = 10
const BUCKETS = 200_000
const histogram = new Uint32Array(BUCKETS)
let measuring = false
let delivered = 0
let measuredDeliveries = 0
let maxUs = 0

// Per sender: messages sent, messages seen by everybody, and for each in-flight slot how many clients still
// have to receive it. Each receiver gets a sender's messages in order, so they complete in order and a slot
// (seq % window) is free again once `completed` passed it.
const sent = new Float64Array(senders)
const completed = new Float64Array(senders)
const remaining = Array.from({ length: senders }, () => new Int32Array(window))
const expected = clients - 1
let sentInWindow = 0

const sockets: Array<net.Socket> = []
const padding = "x".repeat(textBytes)
const TILDE = 0x7e

const pump = (s: number): void => {
  const batch: Array<Buffer> = []
  while (sent[s]! - completed[s]! < window) {
    const seq = sent[s]!
    remaining[s]![seq % window] = expected
    const head = `~${s}~${seq}~${Math.round(performance.now() * 1000)}~`
    batch.push(frameOf({ type: "say", text: head + padding.slice(head.length) }))
    sent[s] = seq + 1
    if (measuring) sentInWindow++
  }
  if (batch.length > 0) sockets[s]!.write(batch.length === 1 ? batch[0]! : Buffer.concat(batch))
}

// Reads `~digits~` starting at `at` (just after a `~`); returns the number and where the next field starts.
let fieldEnd = 0
const readNumber = (bytes: Buffer, at: number, end: number): number => {
  let n = 0
  let i = at
  while (i < end && bytes[i] !== TILDE) {
    n = n * 10 + (bytes[i]! - 48)
    i++
  }
  fieldEnd = i + 1
  return n
}

const onFrame = (bytes: Buffer, start: number, end: number): void => {
  const marker = bytes.indexOf(TILDE, start)
  if (marker === -1 || marker >= end) return // welcome, joined, left
  const s = readNumber(bytes, marker + 1, end)
  const seq = readNumber(bytes, fieldEnd, end)
  const sentAtUs = readNumber(bytes, fieldEnd, end)
  delivered++
  if (measuring) {
    const us = performance.now() * 1000 - sentAtUs
    histogram[Math.min(BUCKETS - 1, Math.max(0, Math.floor(us / BUCKET_US)))]!++
    if (us > maxUs) maxUs = us
    measuredDeliveries++
  }
  if (s >= senders) return
  const slot = seq % window
  if (--remaining[s]![slot]! === 0) {
    completed[s] = seq + 1
    pump(s)
  }
}

/** One connected client: a frame splitter over its reads; the first frame must be the welcome. */
const connect = (index: number, name: string): Promise<void> =>
  new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, noDelay: true })
    sockets[index] = socket
    let rest: Buffer | undefined
    let welcomed = false
    socket.on("connect", () => socket.write(frameOf({ type: "login", name })))
    socket.on("data", (chunk: Buffer) => {
      const bytes = rest === undefined ? chunk : Buffer.concat([rest, chunk])
      let offset = 0
      while (bytes.length - offset >= 4) {
        const length = bytes.readUInt32BE(offset)
        if (bytes.length - offset - 4 < length) break
        if (!welcomed) {
          welcomed = true
          const text = bytes.toString("utf8", offset + 4, offset + 4 + length)
          if (!text.includes("\"welcome\"")) return reject(new Error(`client ${name}: expected welcome, got ${text}`))
          resolve()
        } else {
          onFrame(bytes, offset + 4, offset + 4 + length)
        }
        offset += 4 + length
      }
      rest = offset === bytes.length ? undefined : bytes.subarray(offset)
    })
    socket.on("error", (error) => finished || fail(`client ${name}: ${error.message}`))
    socket.on("close", () => finished || fail(`client ${name} closed by the server`))
  })

const percentile = (count: number, q: number): number => {
  if (count === 0) return 0
  const rank = Math.ceil(q * count)
  let seen = 0
  for (let bucket = 0; bucket < BUCKETS; bucket++) {
    seen += histogram[bucket]!
    if (seen >= rank) return (bucket + 1) * BUCKET_US
  }
  return BUCKETS * BUCKET_US
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const main = async (): Promise<void> => {
  const setupStarted = performance.now()
  // Logins in bounded batches: a thousand at once would be a connect storm rather than a fan-out benchmark.
  const names = Array.from({ length: clients }, (_, i) => (i < senders ? `s${i}` : `r${i - senders}`))
  for (let i = 0; i < clients; i += 50) {
    await Promise.all(names.slice(i, i + 50).map((name, j) => connect(i + j, name)))
  }
  // Let the `joined` frames of the last logins drain before any message is sent.
  await sleep(Math.min(2000, 100 + clients))
  const setupMs = performance.now() - setupStarted
  for (let s = 0; s < senders; s++) pump(s)
  await sleep(warmupMs)
  measuring = true
  const deliveredAtStart = delivered
  const startedAt = performance.now()
  const cpu = process.cpuUsage()
  const serverCpuAtStart = readCpuMs(serverPids)
  const busyAtStart = readMachineBusyMs()
  await sleep(windowMs)
  measuring = false
  const elapsedMs = performance.now() - startedAt
  const loadCpu = process.cpuUsage(cpu)
  const serverCpuAtEnd = readCpuMs(serverPids)
  const busyAtEnd = readMachineBusyMs()
  const loadCpuMs = (loadCpu.user + loadCpu.system) / 1000
  const serverCpuMs = serverCpuAtStart === null || serverCpuAtEnd === null ? null : serverCpuAtEnd - serverCpuAtStart
  const busyMs = busyAtStart === null || busyAtEnd === null ? null : busyAtEnd - busyAtStart
  emit({
    ok: true,
    windowMs: elapsedMs,
    loadCpuPct: (loadCpuMs / elapsedMs) * 100,
    serverCpuMs,
    // Clamped: jiffy granularity can make the difference slightly negative.
    otherCpuPct: busyMs === null || serverCpuMs === null
      ? null
      : Math.max(0, ((busyMs - serverCpuMs - loadCpuMs) / elapsedMs) * 100),
    delivered: delivered - deliveredAtStart,
    sent: sentInWindow,
    p50Us: percentile(measuredDeliveries, 0.5),
    p99Us: percentile(measuredDeliveries, 0.99),
    maxUs: Math.round(maxUs),
    setupMs: Math.round(setupMs)
  }, 0)
}

if (!valid) fail(`invalid arguments: ${process.argv.slice(2).join(" ")}`)
else main().catch((error: unknown) => fail(error instanceof Error ? error.message : String(error)))
void deadline

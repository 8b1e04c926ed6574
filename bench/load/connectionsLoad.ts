/**
 * Idle-connections load generator, a separate process pinned to its own core: opens many TCP connections to a
 * server, makes each do one exchange (a 1-byte echo, or one HTTP keep-alive request) so that the server has really
 * set it up, then leaves them all idle and reads the server's resident memory before and after.
 *
 *   node bench/load/connectionsLoad.ts --mode echo|http --host H --port P --server-pid PID
 *     [--connections N] [--further N] [--warmup N] [--sources K] [--settle-ms MS]
 *
 * Steps: `--warmup` connections are opened, exercised and closed (so that the server's code is compiled before the
 * baseline), then the baseline RSS is read; `--connections` are opened, at most `maxConnecting` at a time, and
 * exercised, and after `--settle-ms` the RSS is read again; then `--further` more (default: half as many) and
 * the RSS once more, while every connection is still open. Two figures come out: the whole growth over the
 * connections, and the growth over the further ones alone (the marginal cost: what one more costs once the process
 * has grown what it grows once, such as V8's young generation, which reaches its maximum during the first batch).
 * Connections are reset at the end (no TIME_WAIT left behind).
 *
 * One source address has ~28k ephemeral ports per destination; `--sources K` spreads the connections over
 * 127.0.0.1 .. 127.0.0.K (default: one address per 20,000 connections).
 *
 * Prints exactly one JSON line (ConnectionsLoadResult or ConnectionsLoadFailure) and exits.
 */
import * as net from "node:net"
import { setTimeout as sleep } from "node:timers/promises"
import { parseArgs } from "node:util"
import { readFileLimit, readRssBytes } from "../lib/procStat.ts"
import type { ConnectionsLoadFailure, ConnectionsLoadMode, ConnectionsLoadResult } from "./connectionsLoadResult.ts"

const { values } = parseArgs({
  options: {
    mode: { type: "string" },
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string" },
    "server-pid": { type: "string" },
    connections: { type: "string", default: "10000" },
    further: { type: "string" },
    warmup: { type: "string", default: "1000" },
    sources: { type: "string" },
    "settle-ms": { type: "string", default: "2000" }
  }
})

const mode = values.mode as ConnectionsLoadMode
const host = values.host
const port = Number(values.port)
const serverPid = Number(values["server-pid"])
const connections = Number(values.connections)
const further = values.further === undefined ? Math.ceil(connections / 2) : Number(values.further)
const warmup = Number(values.warmup)
const sources = values.sources === undefined ? Math.ceil((connections + further) / 20_000) : Number(values.sources)
const settleMs = Number(values["settle-ms"])

/** Connects in flight at once: well under the listen backlog (511), so no SYN is dropped and retried. */
const maxConnecting = 128
/** A connection must finish its exchange within this. */
const exchangeTimeoutMs = 10_000

let finished = false
const open = new Set<net.Socket>()

const emit = (line: ConnectionsLoadResult | ConnectionsLoadFailure, code: number): void => {
  if (finished) return
  finished = true
  for (const socket of open) socket.resetAndDestroy()
  process.stdout.write(`${JSON.stringify(line)}\n`, () => process.exit(code))
}

const fail = (error: string): void => emit({ ok: false, error }, 1)

const valid = (mode === "echo" || mode === "http") && Number.isInteger(port) && port > 0 && port < 65536 &&
  Number.isInteger(serverPid) && serverPid > 0 && Number.isInteger(connections) && connections >= 1 &&
  connections <= 100_000 && Number.isInteger(further) && further >= 1 && further <= 100_000 &&
  Number.isInteger(warmup) && warmup >= 0 && Number.isInteger(sources) && sources >= 1 && sources <= 250 &&
  settleMs >= 0 && settleMs <= 60_000

const request = Buffer.from(`GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`, "latin1")
const ping = Buffer.from("x")

/** Whether `received` holds a whole HTTP response (head and a Content-Length body). */
const completeResponse = (received: string): boolean => {
  const headEnd = received.indexOf("\r\n\r\n")
  if (headEnd < 0) return false
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(received.slice(0, headEnd))
  return received.length >= headEnd + 4 + (length === null ? 0 : Number(length[1]))
}

/** Opens connection `index`, does its one exchange and resolves with the socket, idle and open. */
const connectOne = (index: number): Promise<net.Socket> =>
  new Promise((resolve, reject) => {
    const localAddress = sources > 1 ? `127.0.0.${1 + (index % sources)}` : undefined
    const socket = net.connect({ host, port, noDelay: true, ...(localAddress === undefined ? {} : { localAddress }) })
    open.add(socket)
    let received = ""
    const timer = setTimeout(() => settle(new Error(`connection ${index}: no answer within ${exchangeTimeoutMs} ms`)), exchangeTimeoutMs)
    const settle = (error: Error | undefined) => {
      clearTimeout(timer)
      socket.off("data", onData)
      if (error === undefined) resolve(socket)
      else reject(error)
    }
    const onData = (chunk: Buffer) => {
      received += chunk.toString("latin1")
      if (mode === "echo" ? received.length >= ping.length : completeResponse(received)) settle(undefined)
    }
    socket.on("data", onData)
    socket.once("connect", () => socket.write(mode === "echo" ? ping : request))
    socket.on("error", (error) => settle(error))
    socket.once("close", () => {
      open.delete(socket)
      settle(new Error(`connection ${index} closed by the server`))
    })
  })

/** Opens `count` connections (numbered from `first`), at most `maxConnecting` connecting at once. */
const openMany = async (count: number, first = 0): Promise<Array<net.Socket>> => {
  const sockets: Array<net.Socket> = []
  let next = 0
  const worker = async () => {
    while (next < count) sockets.push(await connectOne(first + next++))
  }
  await Promise.all(Array.from({ length: Math.min(maxConnecting, count) }, worker))
  return sockets
}

const closeAll = async (sockets: ReadonlyArray<net.Socket>): Promise<void> => {
  await Promise.all(sockets.map((socket) =>
    new Promise<void>((resolve) => {
      socket.once("close", () => resolve())
      socket.resetAndDestroy()
    })
  ))
}

const main = async (): Promise<void> => {
  if (!valid) return fail(`bad arguments: ${JSON.stringify(values)}`)
  const serverRss = () => readRssBytes(serverPid)
  if (serverRss() === null) return fail(`cannot read the RSS of server pid ${serverPid}`)
  const startedAt = Date.now()
  // Closed connections must be gone from the server too before the baseline: give it the settle time.
  await closeAll(await openMany(warmup))
  await sleep(settleMs)
  const rssBefore = serverRss()
  const opening = Date.now()
  const sockets = await openMany(connections, 0)
  const openMs = Date.now() - opening
  await sleep(settleMs)
  const rssAfter = serverRss()
  sockets.push(...await openMany(further, connections))
  await sleep(settleMs)
  const rssFurther = serverRss()
  if (rssBefore === null || rssAfter === null || rssFurther === null) return fail("the server exited during the run")
  const held = connections + further
  const stillOpen = sockets.filter((socket) => !socket.destroyed).length
  if (stillOpen < held) return fail(`${held - stillOpen} of ${held} connections were closed while idle`)
  emit({
    ok: true,
    mode,
    connections,
    sources,
    warmup,
    rssBeforeBytes: rssBefore,
    further,
    rssAfterBytes: rssAfter,
    rssFurtherBytes: rssFurther,
    bytesPerConnection: (rssAfter - rssBefore) / connections,
    marginalBytesPerConnection: (rssFurther - rssAfter) / further,
    openMs,
    totalMs: Date.now() - startedAt,
    loadFileLimit: readFileLimit(process.pid),
    serverFileLimit: readFileLimit(serverPid)
  }, 0)
}

main().catch((error: unknown) => fail(error instanceof Error ? error.message : String(error)))

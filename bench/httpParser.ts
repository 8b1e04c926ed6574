/**
 * Micro-benchmark of the HTTP/1.1 request parser (src/protocol/http/Http1Parser.ts).
 *
 *   npx tsx bench/httpParser.ts [--requests 300000] [--rounds 5]
 *
 * Parses a typical browser GET (10 header fields, 481 bytes) in three shapes and prints requests/s, median and
 * best of the rounds (on a busy machine the best is the steadier figure): one request per push, 100 pipelined
 * requests per push, and every head split in two pushes. A fourth line adds the response head serializer (`200`,
 * `content-length: 0`) to the pipelined parse.
 *
 * Reference: the same pipelined bytes through Node's own node:http server (llhttp), fed through the documented
 * `server.emit("connection", duplex)` route, answering each request with `res.end()`. That figure includes Node's
 * IncomingMessage / ServerResponse work, so it is what an application sees from node:http, not raw llhttp: Node has
 * no public API to drive llhttp alone (`process.binding` and `_http_common` are internal).
 */
import { Buffer } from "node:buffer"
import * as Http from "node:http"
import { Duplex } from "node:stream"
import { parseArgs } from "node:util"
import * as Http1Parser from "../src/protocol/http/Http1Parser.ts"
import * as ResponseHead from "../src/protocol/http/ResponseHead.ts"

const { values } = parseArgs({
  options: { requests: { type: "string", default: "300000" }, rounds: { type: "string", default: "5" } }
})
const requests = Number(values.requests)
const rounds = Number(values.rounds)
const perPush = 100

const request = "GET /api/v1/users/12345?include=profile HTTP/1.1\r\n" +
  "Host: api.example.com\r\n" +
  "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36\r\n" +
  "Accept: application/json, text/plain, */*\r\n" +
  "Accept-Encoding: gzip, deflate, br\r\n" +
  "Accept-Language: en-US,en;q=0.9\r\n" +
  "Connection: keep-alive\r\n" +
  "Cookie: session=abc123def456; theme=dark\r\n" +
  "Referer: https://example.com/dashboard\r\n" +
  "Cache-Control: no-cache\r\n" +
  "X-Request-Id: 7f9c2ba4-e88f-11ee-9b4f-0242ac120002\r\n" +
  "\r\n"
const one = Buffer.from(request, "latin1")
const batch = Buffer.from(request.repeat(perPush), "latin1")
const half = one.length >> 1
const firstHalf = one.subarray(0, half)
const secondHalf = one.subarray(half)

const median = (xs: ReadonlyArray<number>): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]

const measure = (run: () => number): ReadonlyArray<number> => {
  run()
  const rates: Array<number> = []
  for (let r = 0; r < rounds; r++) {
    const start = performance.now()
    const parsed = run()
    const ms = performance.now() - start
    if (parsed !== requests) throw new Error(`parsed ${parsed} of ${requests} requests`)
    rates.push(requests / (ms / 1000))
  }
  return rates
}

const countHeads = (events: ReadonlyArray<Http1Parser.ParseEvent>): number => {
  let n = 0
  for (const event of events) {
    if (event._tag === "Head") n++
    else if (event._tag === "Error") throw event.error
  }
  return n
}

const single = () => {
  const parser = Http1Parser.makeRequestParser()
  let n = 0
  for (let i = 0; i < requests; i++) n += countHeads(parser.push(one))
  return n
}

const pipelined = () => {
  const parser = Http1Parser.makeRequestParser()
  let n = 0
  for (let i = 0; i < requests / perPush; i++) n += countHeads(parser.push(batch))
  return n
}

const split = () => {
  const parser = Http1Parser.makeRequestParser()
  let n = 0
  for (let i = 0; i < requests; i++) {
    parser.push(firstHalf)
    n += countHeads(parser.push(secondHalf))
  }
  return n
}

const okHead = { status: 200, headers: [["content-length", "0"]] as const }
const pipelinedWithResponses = () => {
  const parser = Http1Parser.makeRequestParser()
  let n = 0
  let bytes = 0
  for (let i = 0; i < requests / perPush; i++) {
    for (const event of parser.push(batch)) {
      if (event._tag !== "Head") continue
      n++
      bytes += ResponseHead.encodeResponseHeadUnsafe(okHead).length
    }
  }
  if (bytes === 0) throw new Error("no response written")
  return n
}

/** node:http over an injected in-memory connection; resolves with requests/s for one round. */
const nodeHttpRound = (): Promise<number> =>
  new Promise((resolve, reject) => {
    let seen = 0
    let start = 0
    const server = Http.createServer((_req, res) => {
      res.end()
      if (++seen === requests) {
        const ms = performance.now() - start
        server.close()
        resolve(requests / (ms / 1000))
      }
    })
    server.on("clientError", (error) => reject(error))
    const socket = new Duplex({
      read() {},
      write(_chunk, _encoding, callback) {
        callback()
      }
    })
    server.emit("connection", socket)
    start = performance.now()
    let pushed = 0
    const pump = () => {
      // a few batches per tick, so that node:http's own pauses (pipelining, drain) can take effect
      for (let k = 0; k < 10 && pushed < requests / perPush; k++, pushed++) socket.push(batch)
      if (pushed < requests / perPush) setImmediate(pump)
    }
    pump()
  })

const format = (rate: number) => Math.round(rate).toLocaleString("en-US").padStart(11)
const line = (name: string, rates: ReadonlyArray<number>) => {
  const best = Math.max(...rates)
  const mb = ((best * one.length) / 1e6).toFixed(0).padStart(5)
  console.log(`${name.padEnd(52)}${format(median(rates))} ${format(best)}  ${mb} MB/s`)
}

console.log(`Node ${process.version}, ${requests} requests of ${one.length} bytes, ${rounds} rounds`)
console.log(`${"".padEnd(52)}${"median".padStart(11)} ${"best req/s".padStart(11)}  (best)`)
line("Http1Parser, one request per push", measure(single))
line(`Http1Parser, ${perPush} pipelined requests per push`, measure(pipelined))
line("Http1Parser, each head split across two pushes", measure(split))
line(`Http1Parser + encodeResponseHead, pipelined x${perPush}`, measure(pipelinedWithResponses))

await nodeHttpRound()
const nodeRates: Array<number> = []
for (let r = 0; r < rounds; r++) nodeRates.push(await nodeHttpRound())
line(`node:http (llhttp + req/res objects), pipelined x${perPush}`, nodeRates)

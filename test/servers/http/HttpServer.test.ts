import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import type { Scope } from "effect"
import * as ChildProcess from "node:child_process"
import type * as Handler from "../../../src/core/Handler.ts"
import type * as Server from "../../../src/core/Server.ts"
import * as Strategy from "../../../src/core/Strategy.ts"
import * as Transport from "../../../src/core/Transport.ts"
import * as Apps from "../../fixtures/httpApps.ts"
import * as Loopback from "../../utils/loopback.ts"
import * as Http from "./support.ts"

const start = (
  handler: Handler.Handler<unknown, never> = Apps.app,
  options?: Server.Options
): Effect.Effect<{ readonly server: Server.Server["Service"]; readonly port: number }, unknown, Scope.Scope> =>
  Effect.map(Loopback.startServer(Transport.tcp(), Strategy.layerFiber(), handler, options), (server) => ({
    server,
    port: (server.address as { readonly port: number }).port
  }))

const promise = <A>(f: () => Promise<A>) => Effect.promise(f)

describe("HttpServer", () => {
  describe("keep-alive and pipelining", () => {
    it.live("serves several requests one after another on one connection", () =>
      Effect.gen(function*() {
        const { port } = yield* start()
        const client = yield* promise(() => Http.connect(port))
        client.send(Http.get("/hello"))
        const [first] = yield* promise(() => client.responses(1))
        assert.strictEqual(first!.status, 200)
        assert.strictEqual(first!.body, "hello")
        assert.strictEqual(first!.headers["content-length"], "5")
        assert.match(first!.headers["date"]!, /^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/)
        assert.isUndefined(first!.headers["connection"])
        client.send(Http.get("/n/2"))
        const responses = yield* promise(() => client.responses(2))
        assert.strictEqual(responses[1]!.body, "path /n/2")
        assert.isFalse(client.isClosed())
        client.destroy()
      }))

    it.live("answers 1000 pipelined requests on one connection in order", () =>
      Effect.gen(function*() {
        const { port } = yield* start()
        const client = yield* promise(() => Http.connect(port))
        let batch = ""
        for (let i = 0; i < 1000; i++) batch += Http.get(`/n/${i}`)
        client.send(batch)
        const responses = yield* promise(() => client.responses(1000, [], 30_000))
        assert.strictEqual(responses.length, 1000)
        responses.forEach((response, i) => assert.strictEqual(response.body, `path /n/${i}`))
        client.destroy()
      }))

    it.live("parses ahead but answers pipelined requests in order when handlers take different times", () =>
      Effect.gen(function*() {
        const { port } = yield* start()
        const client = yield* promise(() => Http.connect(port))
        client.send(Http.get("/slow") + Http.get("/hello") + Http.get("/stream") + Http.get("/n/last"))
        const responses = yield* promise(() => client.responses(4))
        assert.deepStrictEqual(responses.map((r) => r.body), ["slow done", "hello", "one two three", "path /n/last"])
        client.destroy()
      }))

    it.live("serves 200 concurrent connections", () =>
      Effect.gen(function*() {
        const { port } = yield* start()
        const bodies = yield* promise(() =>
          Promise.all(Array.from({ length: 200 }, async (_, i) => {
            const client = await Http.connect(port)
            client.send(Http.get(`/n/${i}`) + Http.get(`/n/${i}b`, "Connection: close\r\n"))
            const responses = await client.responses(2)
            await client.closed()
            return responses.map((r) => r.body).join(",")
          }))
        )
        bodies.forEach((body, i) => assert.strictEqual(body, `path /n/${i},path /n/${i}b`))
      }))

    it.live("closes an idle persistent connection after the keep-alive timeout", () =>
      Effect.gen(function*() {
        const { port } = yield* start(Apps.appShortTimeouts)
        const client = yield* promise(() => Http.connect(port))
        client.send(Http.get("/hello"))
        yield* promise(() => client.responses(1))
        yield* promise(() => client.closed(5_000))
        // nothing but the one response: an idle close sends no 408
        assert.strictEqual(Http.parseResponses(client.received(), [], true).responses.length, 1)
      }))
  })

  describe("message semantics", () => {
    it.live("HEAD gets the headers of a GET and no body; the connection goes on", () =>
      Effect.gen(function*() {
        const { port } = yield* start()
        const client = yield* promise(() => Http.connect(port))
        client.send(Http.get("/hello", "", "HEAD") + Http.get("/stream", "", "HEAD") + Http.get("/n/after"))
        const responses = yield* promise(() => client.responses(3, ["HEAD", "HEAD", "GET"]))
        assert.strictEqual(responses[0]!.headers["content-length"], "5")
        assert.strictEqual(responses[0]!.body, "")
        assert.strictEqual(responses[1]!.headers["transfer-encoding"], "chunked")
        assert.strictEqual(responses[2]!.body, "path /n/after")
        // exactly the bytes of three heads and one body: no stray body bytes after a HEAD response
        const text = client.received().toString("latin1")
        assert.isTrue(text.endsWith("\r\n\r\npath /n/after"))
        assert.strictEqual(text.split("HTTP/1.1 ").length - 1, 3)
        client.destroy()
      }))

    it.live("HTTP/1.0 closes unless keep-alive is asked for", () =>
      Effect.gen(function*() {
        const { port } = yield* start()
        const plain = yield* promise(() => Http.connect(port))
        plain.send("GET /hello HTTP/1.0\r\n\r\n")
        const [response] = yield* promise(() => plain.responses(1))
        assert.strictEqual(response!.body, "hello")
        assert.strictEqual(response!.headers["connection"], "close")
        yield* promise(() => plain.closed())

        const kept = yield* promise(() => Http.connect(port))
        kept.send("GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        const [first] = yield* promise(() => kept.responses(1))
        assert.strictEqual(first!.headers["connection"], "keep-alive")
        kept.send("GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        // an unknown length cannot be chunked for HTTP/1.0: the body ends with the connection
        yield* promise(() => kept.closed())
        const responses = Http.parseResponses(kept.received(), [], true).responses
        assert.strictEqual(responses[1]!.body, "one two three")
        assert.strictEqual(responses[1]!.headers["connection"], "close")
      }))

    it.live("Connection: close from the client or the application ends the connection after the response", () =>
      Effect.gen(function*() {
        const { port } = yield* start()
        const client = yield* promise(() => Http.connect(port))
        client.send(Http.get("/hello", "Connection: close\r\n") + Http.get("/n/never"))
        const [response] = yield* promise(() => client.responses(1))
        assert.strictEqual(response!.headers["connection"], "close")
        yield* promise(() => client.closed())
        assert.strictEqual(Http.parseResponses(client.received(), [], true).responses.length, 1)

        const other = yield* promise(() => Http.connect(port))
        other.send(Http.get("/close") + Http.get("/n/never"))
        const [bye] = yield* promise(() => other.responses(1))
        assert.strictEqual(bye!.body, "bye")
        assert.strictEqual(bye!.headers["connection"], "close")
        yield* promise(() => other.closed())
      }))

    it.live("Expect: 100-continue: 100 only once the handler reads the body", () =>
      Effect.gen(function*() {
        const { port } = yield* start()
        const client = yield* promise(() => Http.connect(port))
        client.send("POST /text HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        const [interim] = yield* promise(() => client.responses(1))
        assert.strictEqual(interim!.status, 100)
        client.send("abcde")
        const responses = yield* promise(() => client.responses(2))
        assert.strictEqual(responses[1]!.body, "got abcde")
        client.destroy()

        // a handler that never reads: no 100, and the connection closes after the answer
        const ignoring = yield* promise(() => Http.connect(port))
        ignoring.send("POST /ignore HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        const [answer] = yield* promise(() => ignoring.responses(1))
        assert.strictEqual(answer!.status, 200)
        assert.strictEqual(answer!.headers["connection"], "close")
        assert.notInclude(ignoring.received().toString("latin1"), "100 Continue")
        yield* promise(() => ignoring.closed())
      }))

    it.live("an unread body is discarded before the next pipelined request", () =>
      Effect.gen(function*() {
        const { port } = yield* start()
        const client = yield* promise(() => Http.connect(port))
        const body = "x".repeat(3000)
        client.send(
          `POST /ignore HTTP/1.1\r\nHost: t\r\nContent-Length: ${body.length}\r\n\r\n${body}` +
            `POST /ignore HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n` +
            Http.get("/n/next")
        )
        const responses = yield* promise(() => client.responses(3))
        assert.deepStrictEqual(responses.map((r) => r.body), ["ignored", "ignored", "path /n/next"])
        client.destroy()
      }))

    it.live("a request asking to switch protocols is answered over HTTP, and the requests after it too", () =>
      Effect.gen(function*() {
        const { port } = yield* start()
        const client = yield* promise(() => Http.connect(port))
        client.send(Http.get("/n/ws", "Upgrade: websocket\r\nConnection: Upgrade\r\n") + Http.get("/n/after"))
        const responses = yield* promise(() => client.responses(2))
        assert.deepStrictEqual(responses.map((r) => r.body), ["path /n/ws", "path /n/after"])
        client.send(Http.get("/n/later"))
        const more = yield* promise(() => client.responses(3))
        assert.strictEqual(more[2]!.body, "path /n/later")
        client.destroy()
      }))
  })

  describe("bodies", () => {
    it.live("streams a chunked request body to the handler as it arrives", () =>
      Effect.gen(function*() {
        const { port } = yield* start()
        const client = yield* promise(() => Http.connect(port))
        client.send("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        // the first chunk comes back before the request body is complete
        yield* promise(() => waitFor(() => client.received().toString("latin1").includes("hello")))
        client.send("6\r\n world\r\n0\r\n\r\n")
        const [response] = yield* promise(() => client.responses(1))
        assert.strictEqual(response!.body, "hello world")
        assert.isTrue(response!.chunked)

        client.send("POST /length HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        for (let i = 0; i < 10; i++) client.send(`400\r\n${"y".repeat(1024)}\r\n`)
        client.send("0\r\n\r\n")
        const responses = yield* promise(() => client.responses(2))
        assert.strictEqual(responses[1]!.body, "10240")
        client.destroy()
      }))

    it.live("sends streamed responses chunked, or with Content-Length when known", () =>
      Effect.gen(function*() {
        const { port } = yield* start()
        const client = yield* promise(() => Http.connect(port))
        client.send(Http.get("/stream") + Http.get("/stream-length") + Http.get("/empty") + Http.get("/query?a=1%202", "x-test: yes\r\n"))
        const responses = yield* promise(() => client.responses(4))
        assert.strictEqual(responses[0]!.headers["transfer-encoding"], "chunked")
        assert.strictEqual(responses[0]!.body, "one two three")
        assert.strictEqual(responses[1]!.headers["content-length"], "10")
        assert.isUndefined(responses[1]!.headers["transfer-encoding"])
        assert.strictEqual(responses[1]!.body, "1234567890")
        assert.strictEqual(responses[2]!.status, 204)
        assert.isUndefined(responses[2]!.headers["content-length"])
        assert.deepStrictEqual(JSON.parse(responses[3]!.body), { a: "1 2", ua: "yes" })
        client.destroy()
      }))

    it.live("json(schema) decodes the body; a mismatch is 400", () =>
      Effect.gen(function*() {
        const { port } = yield* start()
        const client = yield* promise(() => Http.connect(port))
        const post = (body: string) => `POST /json HTTP/1.1\r\nHost: t\r\nContent-Length: ${body.length}\r\n\r\n${body}`
        client.send(post(`{"x":1,"y":2}`) + post(`{"x":"1"}`) + post("not json") + Http.get("/hello"))
        const responses = yield* promise(() => client.responses(4))
        assert.deepStrictEqual(responses.map((r) => r.status), [200, 400, 400, 200])
        assert.deepStrictEqual(JSON.parse(responses[0]!.body), { sum: 3 })
        client.destroy()
      }))

    it.live("a body over the limit is 413 and closes", () =>
      Effect.gen(function*() {
        const { port } = yield* start(Apps.appSmallBodies)
        const client = yield* promise(() => Http.connect(port))
        client.send(`POST /length HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n`)
        const [response] = yield* promise(() => client.responses(1))
        assert.strictEqual(response!.status, 413)
        assert.strictEqual(response!.headers["connection"], "close")
        yield* promise(() => client.closed())
        const chunked = yield* promise(() => Http.connect(port))
        chunked.send(`POST /length HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n${"z".repeat(2048)}\r\n0\r\n\r\n`)
        const [tooLarge] = yield* promise(() => chunked.responses(1))
        assert.strictEqual(tooLarge!.status, 413)
        yield* promise(() => chunked.closed())
      }))
  })

  describe("errors", () => {
    it.live("parse errors get their status, Connection: close, then the connection closes", () =>
      Effect.gen(function*() {
        const { port } = yield* start()
        const cases: ReadonlyArray<readonly [string, number]> = [
          ["POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400],
          ["GET / HTTP/1.1\r\n\r\n", 400],
          ["GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505],
          ["GET /\r\n\r\n", 400],
          [`GET /${"a".repeat(9000)} HTTP/1.1\r\nHost: t\r\n\r\n`, 414]
        ]
        for (const [request, status] of cases) {
          const client = yield* promise(() => Http.connect(port))
          client.send(Http.get("/hello") + request + Http.get("/n/never"))
          const responses = yield* promise(() => client.responses(2))
          assert.strictEqual(responses[0]!.body, "hello")
          assert.strictEqual(responses[1]!.status, status, request.slice(0, 40))
          assert.strictEqual(responses[1]!.headers["connection"], "close")
          yield* promise(() => client.closed())
          assert.strictEqual(Http.parseResponses(client.received(), [], true).responses.length, 2)
        }
      }))

    it.live("a hundred header fields are served; over the field count or the section size is 431 and closes", () =>
      Effect.gen(function*() {
        const { port } = yield* start()
        const hundred = Array.from({ length: 99 }, (_, i) => `X-Forwarded-Field-${i}: some value ${i}\r\n`).join("")
        const client = yield* promise(() => Http.connect(port))
        client.send(Http.get("/query?a=1", `${hundred}X-Test: found\r\n`) + Http.get("/hello"))
        const served = yield* promise(() => client.responses(2))
        assert.deepStrictEqual(served.map((r) => r.status), [200, 200])
        assert.deepStrictEqual(JSON.parse(served[0]!.body), { a: "1", ua: "found" })
        assert.isFalse(client.isClosed())
        client.destroy()
        // Host and 2000 more `x:N` lines stay under 16 KiB: the count is over; one field of 16 KiB: the size is
        const tooMany = Array.from({ length: 2000 }, (_, i) => `x:${i}\r\n`).join("")
        const tooLarge = `X-Big: ${"b".repeat(16 * 1024)}\r\n`
        for (const extra of [tooMany, tooLarge]) {
          const refused = yield* promise(() => Http.connect(port))
          refused.send(Http.get("/hello", extra))
          const [response] = yield* promise(() => refused.responses(1))
          assert.strictEqual(response!.status, 431)
          assert.strictEqual(response!.headers["connection"], "close")
          yield* promise(() => refused.closed())
        }
      }))

    it.live("a failing, defecting or throwing handler gets 500 without its text, and the connection goes on", () =>
      Effect.gen(function*() {
        const { port } = yield* start()
        const client = yield* promise(() => Http.connect(port))
        client.send(Http.get("/fail") + Http.get("/die") + Http.get("/throw") + Http.get("/bad-header") + Http.get("/hello"))
        const responses = yield* promise(() => client.responses(5))
        assert.deepStrictEqual(responses.map((r) => r.status), [500, 500, 500, 500, 200])
        assert.notInclude(client.received().toString("latin1"), "secret")
        assert.notInclude(client.received().toString("latin1"), "Injected")
        client.send(Http.get("/stream-fails"))
        // the head went out before the stream failed: the only signal left is closing
        yield* promise(() => client.closed())
        assert.notInclude(client.received().toString("latin1"), "secret")
        const again = yield* promise(() => Http.connect(port))
        again.send(Http.get("/hello"))
        assert.strictEqual((yield* promise(() => again.responses(1)))[0]!.body, "hello")
        again.destroy()
      }))
  })

  describe("timeouts", () => {
    it.effect("deadlines run on effect's Clock: a TestClock closes an idle keep-alive connection", () =>
      Effect.gen(function*() {
        const { port } = yield* start()
        const client = yield* promise(() => Http.connect(port))
        client.send(Http.get("/hello"))
        assert.strictEqual((yield* promise(() => client.responses(1)))[0]!.body, "hello")
        // the default keep-alive timeout is 5 s: only the test clock moves past it, and the connection closes
        yield* TestClock.adjust("6 seconds")
        yield* promise(() => client.closed(2_000))
      }))

    it.live("a slowloris head gets 408 and is closed while a normal client is served", () =>
      Effect.gen(function*() {
        const { port } = yield* start(Apps.appShortTimeouts)
        const slow = yield* promise(() => Http.connect(port))
        const head = Http.get("/hello")
        let sent = 0
        const dribble = setInterval(() => {
          if (sent < head.length - 1 && !slow.isClosed()) slow.send(head[sent++]!)
        }, 40)
        try {
          const normal = yield* promise(() => Http.connect(port))
          normal.send(Http.get("/hello"))
          assert.strictEqual((yield* promise(() => normal.responses(1)))[0]!.body, "hello")
          normal.destroy()
          const [response] = yield* promise(() => slow.responses(1, [], 5_000))
          assert.strictEqual(response!.status, 408)
          assert.strictEqual(response!.headers["connection"], "close")
          yield* promise(() => slow.closed())
        } finally {
          clearInterval(dribble)
        }
      }))

    it.live("a handler slower than the request timeout gets 408", () =>
      Effect.gen(function*() {
        const { port } = yield* start(Apps.appShortTimeouts)
        const client = yield* promise(() => Http.connect(port))
        // the body never completes, so the handler waits until the request timeout
        client.send("POST /length HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
        const [response] = yield* promise(() => client.responses(1, [], 5_000))
        assert.strictEqual(response!.status, 408)
        yield* promise(() => client.closed())
      }))

    it.live("an application still waiting at the request timeout is interrupted: 408 and a close", () =>
      Effect.gen(function*() {
        const { port } = yield* start(Apps.appShortTimeouts)
        const client = yield* promise(() => Http.connect(port))
        client.send(Http.get("/stall"))
        const [response] = yield* promise(() => client.responses(1, [], 5_000))
        assert.strictEqual(response!.status, 408)
        assert.strictEqual(response!.headers["connection"], "close")
        yield* promise(() => client.closed())
      }))
  })

  describe("graceful shutdown", () => {
    it.live("finishes in-flight requests and closes idle keep-alive connections", () =>
      Effect.gen(function*() {
        const { server, port } = yield* start()
        const idle = yield* promise(() => Http.connect(port))
        idle.send(Http.get("/hello"))
        yield* promise(() => idle.responses(1))
        const busy = yield* promise(() => Http.connect(port))
        busy.send(Http.get("/slow"))
        yield* Effect.sleep("100 millis")
        const stopping = yield* Effect.forkChild(server.shutdown, { startImmediately: true })
        yield* promise(() => idle.closed(3_000))
        const [response] = yield* promise(() => busy.responses(1))
        assert.strictEqual(response!.body, "slow done")
        assert.strictEqual(response!.headers["connection"], "close")
        yield* promise(() => busy.closed())
        yield* Fiber.join(stopping)
      }))
  })

  describe("real clients", () => {
    it.live("Node's fetch gets the right answers", () =>
      Effect.gen(function*() {
        const { server, port } = yield* start()
        const hello = yield* promise(() => fetch(`http://127.0.0.1:${port}/hello`).then((r) => r.text()))
        assert.strictEqual(hello, "hello")
        const echoed = yield* promise(() =>
          fetch(`http://127.0.0.1:${port}/text`, { method: "POST", body: "from fetch" }).then((r) => r.text())
        )
        assert.strictEqual(echoed, "got from fetch")
        const json = yield* promise(() =>
          fetch(`http://127.0.0.1:${port}/json`, { method: "POST", body: JSON.stringify({ x: 2, y: 3 }) })
            .then((r) => r.json())
        )
        assert.deepStrictEqual(json, { sum: 5 })
        const failed = yield* promise(() => fetch(`http://127.0.0.1:${port}/fail`))
        assert.strictEqual(failed.status, 500)
        // fetch keeps its connections open: a graceful shutdown closes them at once
        yield* server.shutdown
      }))

    it.live("curl gets the right answers (keep-alive across two URLs, a POST, HTTP/1.0)", () =>
      Effect.gen(function*() {
        const { port } = yield* start()
        const curl = (args: ReadonlyArray<string>) =>
          promise(() =>
            new Promise<string>((resolve, reject) =>
              ChildProcess.execFile("curl", ["-sS", "--max-time", "10", ...args], (error, stdout, stderr) =>
                error ? reject(new Error(`${error.message} ${stderr}`)) : resolve(stdout))
            )
          )
        const base = `http://127.0.0.1:${port}`
        const two = yield* curl(["-v", `${base}/hello`, `${base}/n/2`])
        assert.strictEqual(two, "hellopath /n/2")
        assert.strictEqual(yield* curl(["-d", "posted", `${base}/text`]), "got posted")
        assert.strictEqual(yield* curl(["--http1.0", `${base}/stream`]), "one two three")
        assert.strictEqual(yield* curl(["-H", "Transfer-Encoding: chunked", "-d", "chunky", `${base}/text`]), "got chunky")
      }))
  })
})

const waitFor = (ok: () => boolean, timeoutMs = 5_000): Promise<void> =>
  new Promise((resolve, reject) => {
    const started = Date.now()
    const poll = () => {
      if (ok()) return resolve()
      if (Date.now() - started > timeoutMs) return reject(new Error("condition not met in time"))
      setTimeout(poll, 10)
    }
    poll()
  })


import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Certificates from "../../utils/certificates.ts"
import * as Processes from "../../utils/processes.ts"
import * as TlsPeers from "../../utils/tlsPeers.ts"
import * as Http from "./support.ts"

const file = "examples/web-server.ts"

describe("examples/web-server.ts", () => {
  for (const strategy of ["fiber", "fork"] as const) {
    it.live(`${strategy}: --tls-cert/--tls-key serve HTTPS that curl --cacert accepts, ALPN http/1.1`, () =>
      Effect.gen(function*() {
        const certs = yield* Certificates.make
        const program = yield* Processes.start(file, [
          "--port",
          "0",
          "--strategy",
          strategy,
          "--workers",
          "1",
          ...Certificates.flagsOf(certs.server)
        ])
        const port = Number((yield* Effect.promise(() => program.waitFor(Processes.listeningPort)))[1])
        const result = yield* Effect.promise(() =>
          TlsPeers.run("curl", ["-sS", "-v", "--max-time", "15", "--cacert", certs.ca.certPath, `https://127.0.0.1:${port}/`])
        )
        assert.strictEqual(result.code, 0, result.stderr)
        assert.strictEqual(result.stdout, "Hello from Epoll Server")
        assert.include(result.stderr, "ALPN: server accepted http/1.1")
        program.child.kill("SIGTERM")
        assert.strictEqual(yield* Effect.promise(() => program.exited), 0)
      }))
  }

  for (const strategy of ["fiber", "worker"] as const) {
    it.live(`${strategy}: prints where it listens, answers Hello from Epoll Server, exits 0 on SIGTERM`, () =>
      Effect.gen(function*() {
        const program = yield* Processes.start(file, ["--port", "0", "--strategy", strategy, "--workers", "2"])
        const port = Number((yield* Effect.promise(() => program.waitFor(Processes.listeningPort)))[1])
        const client = yield* Effect.promise(() => Http.connect(port))
        client.send(Http.get("/") + Http.get("/anything?x=1"))
        const responses = yield* Effect.promise(() => client.responses(2))
        for (const response of responses) {
          assert.strictEqual(response.status, 200)
          assert.strictEqual(response.headers["content-type"], "text/plain")
          assert.strictEqual(response.body, "Hello from Epoll Server")
        }
        const fetched = yield* Effect.promise(() => fetch(`http://127.0.0.1:${port}/x`).then((r) => r.text()))
        assert.strictEqual(fetched, "Hello from Epoll Server")
        // An idle keep-alive connection is still open: the shutdown signal closes it at once, well before the
        // keep-alive timeout (5 s) would.
        const started = Date.now()
        program.child.kill("SIGTERM")
        assert.strictEqual(yield* Effect.promise(() => program.exited), 0)
        assert.isBelow(Date.now() - started, 4_000)
        yield* Effect.promise(() => client.closed())
      }))
  }

  for (const strategy of ["fiber", "worker"] as const) {
    it.live(`${strategy}: answers only a whole request; a broken body gets the parser's status and a close`, () =>
      Effect.gen(function*() {
        const program = yield* Processes.start(file, ["--port", "0", "--strategy", strategy, "--workers", "1"])
        const port = Number((yield* Effect.promise(() => program.waitFor(Processes.listeningPort)))[1])

        // A body cut short by the client's half-close: never a 200.
        const truncated = yield* Effect.promise(() => Http.connect(port))
        truncated.send("POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 10\r\n\r\nabc")
        truncated.socket.end()
        yield* Effect.promise(() => truncated.closed())
        const cut = Http.parseResponses(truncated.received(), [], true).responses
        assert.isFalse(cut.some((response) => response.status === 200), truncated.received().toString("latin1"))

        // A chunk size that is not hex: 400, and the connection closes.
        const malformed = yield* Effect.promise(() => Http.connect(port))
        malformed.send("POST / HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n")
        const [bad] = yield* Effect.promise(() => malformed.responses(1))
        assert.strictEqual(bad!.status, 400)
        assert.strictEqual(bad!.headers["connection"], "close")
        yield* Effect.promise(() => malformed.closed())

        // Whole bodies, by length and chunked, on one keep-alive connection: 200 each.
        const good = yield* Effect.promise(() => Http.connect(port))
        good.send("POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 3\r\n\r\nabc")
        good.send("POST / HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
        const responses = yield* Effect.promise(() => good.responses(2))
        for (const response of responses) {
          assert.strictEqual(response.status, 200)
          assert.strictEqual(response.body, "Hello from Epoll Server")
        }
        assert.isFalse(good.isClosed())
        good.destroy()
      }))
  }

  it.live("a request whose body has not fully arrived gets no answer yet", () =>
    Effect.gen(function*() {
      const program = yield* Processes.start(file, ["--port", "0"])
      const port = Number((yield* Effect.promise(() => program.waitFor(Processes.listeningPort)))[1])
      const client = yield* Effect.promise(() => Http.connect(port))
      client.send("POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 6\r\n\r\nabc")
      // A later request on the same connection is answered, so the first one has been waiting, not lost.
      yield* Effect.promise(() => Http.sleep(200))
      assert.strictEqual(client.received().length, 0)
      client.send("def" + Http.get("/next"))
      const responses = yield* Effect.promise(() => client.responses(2))
      assert.deepStrictEqual(responses.map((response) => response.status), [200, 200])
      client.destroy()
    }))

  for (const [args, expected] of [
    [["--port", "99999"], "--port: expected an integer from 0 to 65535"],
    [["--strategy", "magic"], "--strategy: expected one of"],
    [["--bogus", "1"], "Unknown option '--bogus'"],
    [["--workers", "0"], "--workers: expected an integer from 1"]
  ] as const) {
    it.live(`bad arguments ${args.join(" ")} give a one-line error and a non-zero exit`, () =>
      Processes.expectOneLineError(file, args, expected))
  }

  it.live("a busy port is a one-line error", () =>
    Effect.gen(function*() {
      const first = yield* Processes.start(file, ["--port", "0"])
      const port = (yield* Effect.promise(() => first.waitFor(Processes.listeningPort)))[1]!
      yield* Processes.expectOneLineError(file, ["--port", port])
    }))
})

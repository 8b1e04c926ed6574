import * as NodeWS from "@effect/platform-node/NodeWS"
import { assert, describe, it } from "@effect/vitest"
import { Context, Deferred, Effect, Exit, Layer, Scope } from "effect"
import { HttpServer, HttpServerRequest, HttpServerResponse } from "effect/http"
import type { NetAddress } from "effect/net"
import { Buffer } from "node:buffer"
import * as Https from "node:https"
import * as Net from "node:net"
import * as ForkStrategy from "../../../src/core/ForkStrategy.ts"
import * as Strategy from "../../../src/core/Strategy.ts"
import * as Transport from "../../../src/core/Transport.ts"
import * as WorkerStrategy from "../../../src/core/WorkerStrategy.ts"
import * as EffectHttpServer from "../../../src/servers/effect-http/EffectHttpServer.ts"
import * as Apps from "../../fixtures/effectHttpApps.ts"
import * as Certificates from "../../utils/certificates.ts"
import * as Loopback from "../../utils/loopback.ts"
import * as Http from "../http/support.ts"

const promise = <A>(f: () => Promise<A>) => Effect.promise(f)

const portOf = (address: NetAddress.SocketAddress) => (address as NetAddress.InetAddress).port

/** The test app on `EffectHttpServer.layerTestWith`, in the current scope; its port. */
const serveApp = (strategy: Layer.Layer<Strategy.Strategy>, options?: EffectHttpServer.LayerOptions) =>
  Effect.map(
    Layer.build(Apps.appLayer.pipe(Layer.provideMerge(EffectHttpServer.layerTestWith({ ...options, strategy })))),
    (context) => portOf(Context.get(context, HttpServer.HttpServer).address)
  )

/** One request on a fresh connection that closes after it; the response as parsed off the wire. */
const exchange = (port: number, raw: string, method = "GET") =>
  promise(async () => {
    const client = await Http.connect(port)
    client.send(raw)
    const [response] = await client.responses(1, [method])
    client.destroy()
    return response!
  })

const request = (method: string, path: string, extra = "", body = "") =>
  `${method} ${path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n${extra}` +
  (body.length > 0 ? `Content-Length: ${Buffer.byteLength(body)}\r\n` : "") + `\r\n${body}`

const strategies: ReadonlyArray<readonly [string, () => Layer.Layer<Strategy.Strategy>]> = [
  ["sequential", () => Strategy.layerSequential],
  ["fiber", () => Strategy.layerFiber()]
]

describe("EffectHttpServer", () => {
  for (const [name, strategy] of strategies) {
    describe(`${name}: the request`, () => {
      it.live("method, url, absolute originalUrl, remote address, headers joined as Node joins them, cookies", () =>
        Effect.gen(function*() {
          const port = yield* serveApp(strategy())
          const response = yield* exchange(
            port,
            "GET /info?x=1 HTTP/1.1\r\nHost: example.test\r\nAccept: a\r\nAccept: b\r\nContent-Type: one\r\n" +
              "Content-Type: two\r\nCookie: a=1\r\nCookie: b=2\r\nConnection: close\r\n\r\n"
          )
          assert.deepStrictEqual(JSON.parse(response.body), {
            method: "GET",
            url: "/info?x=1",
            originalUrl: "http://example.test/info?x=1",
            remoteAddress: "127.0.0.1",
            host: "example.test",
            accept: "a, b",
            contentType: "one",
            cookieHeader: "a=1; b=2",
            cookies: { a: "1", b: "2" }
          })
          // an absolute-form target: the router sees its path, its authority replaces Host
          const absolute = yield* exchange(port, "GET http://other.test:81/info HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
          const info = JSON.parse(absolute.body)
          assert.strictEqual(info.url, "/info")
          assert.strictEqual(info.host, "other.test:81")
          assert.strictEqual(info.originalUrl, "http://other.test:81/info")
        }))

      it.live("the body as text, JSON, bytes, URL parameters and a stream", () =>
        Effect.gen(function*() {
          const port = yield* serveApp(strategy())
          assert.strictEqual((yield* exchange(port, request("POST", "/text", "", "héllo"))).body, "got héllo")
          assert.deepStrictEqual(
            JSON.parse((yield* exchange(port, request("POST", "/json", "", "{\"a\":[1,2]}"))).body),
            { got: { a: [1, 2] } }
          )
          assert.strictEqual((yield* exchange(port, request("POST", "/bytes", "", "x".repeat(70_000)))).body, "70000")
          assert.deepStrictEqual(
            JSON.parse((yield* exchange(port, request("POST", "/form", "", "a=1&b=two+words"))).body),
            { a: "1", b: "two words" }
          )
          const chunked = "POST /stream HTTP/1.1\r\nHost: t\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n" +
            "3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"
          const streamed = yield* exchange(port, chunked)
          assert.strictEqual(streamed.body, "abcdefg")
          assert.isTrue(streamed.chunked)
          // a body that is not JSON is the client's mistake
          assert.strictEqual((yield* exchange(port, request("POST", "/json", "", "{nope"))).status, 400)
        }))

      it.live("multipart bodies go through effect's parser; files are persisted", () =>
        Effect.gen(function*() {
          const port = yield* serveApp(strategy())
          const boundary = "----netkit"
          const body = `--${boundary}\r\nContent-Disposition: form-data; name="field"\r\n\r\nvalue\r\n` +
            `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n` +
            `Content-Type: text/plain\r\n\r\nfile content\r\n--${boundary}--\r\n`
          const response = yield* exchange(
            port,
            request("POST", "/multipart", `Content-Type: multipart/form-data; boundary=${boundary}\r\n`, body)
          )
          assert.deepStrictEqual(JSON.parse(response.body), { field: "value", fileName: "a.txt", fileContent: "file content" })
        }))

      it.live("modify makes a view that shares the body and overrides url and remote address", () =>
        Effect.gen(function*() {
          const port = yield* serveApp(strategy())
          const response = yield* exchange(port, request("POST", "/views", "", "shared"))
          assert.deepStrictEqual(JSON.parse(response.body), {
            a: "shared",
            b: "shared",
            url: "/elsewhere",
            original: "/views",
            remote: "10.0.0.1"
          })
        }))

      it.live("Expect: 100-continue: 100 on the first read of the body", () =>
        Effect.gen(function*() {
          const port = yield* serveApp(strategy())
          const client = yield* promise(() => Http.connect(port))
          client.send("POST /text HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
          const [interim] = yield* promise(() => client.responses(1))
          assert.strictEqual(interim!.status, 100)
          client.send("hi")
          const responses = yield* promise(() => client.responses(2))
          assert.strictEqual(responses[1]!.body, "got hi")
          client.destroy()
        }))
    })

    describe(`${name}: responses`, () => {
      it.live("fixed bodies, streams, Node readables, files and FormData", () =>
        Effect.gen(function*() {
          const port = yield* serveApp(strategy())
          const hello = yield* exchange(port, request("GET", "/hello"))
          assert.strictEqual(hello.body, "hello")
          assert.strictEqual(hello.headers["content-length"], "5")
          assert.strictEqual(hello.headers["content-type"], "text/plain")
          assert.match(hello.headers["date"]!, /GMT$/)
          assert.strictEqual((yield* exchange(port, request("GET", "/bytes-out"))).body, "raw bytes")
          const stream = yield* exchange(port, request("GET", "/stream-out"))
          assert.isTrue(stream.chunked)
          assert.strictEqual(stream.body, "one two three")
          const withLength = yield* exchange(port, request("GET", "/stream-length"))
          assert.isFalse(withLength.chunked)
          assert.strictEqual(withLength.headers["content-length"], "5")
          const readable = yield* exchange(port, request("GET", "/readable"))
          assert.strictEqual(readable.body, "abcd")
          const file = yield* exchange(port, request("GET", "/file"))
          assert.strictEqual(file.headers["content-length"], "27")
          assert.strictEqual(file.body, "lorem ipsum dolar sit amet\n")
          assert.isDefined(file.headers["etag"])
          const form = yield* exchange(port, request("GET", "/formdata"))
          assert.match(form.headers["content-type"]!, /^multipart\/form-data; boundary=/)
          assert.include(form.body, "netkit")
        }))

      it.live("cookies as separate Set-Cookie lines; status text; a status outside 200-599 is 500", () =>
        Effect.gen(function*() {
          const port = yield* serveApp(strategy())
          const client = yield* promise(() => Http.connect(port))
          client.send(request("GET", "/cookies"))
          yield* promise(() => client.closed())
          const head = client.received().toString("latin1")
          assert.match(head, /\r\nset-cookie: a=1\r\n/)
          assert.match(head, /\r\nset-cookie: b=2; Path=\/; HttpOnly\r\n/)
          const created = yield* promise(async () => {
            const c = await Http.connect(port)
            c.send(request("GET", "/created"))
            await c.closed()
            return c.received().toString("latin1")
          })
          assert.match(created, /^HTTP\/1\.1 201 Made It\r\n/)
          assert.strictEqual((yield* exchange(port, request("GET", "/bad-status"))).status, 500)
        }))

      it.live("HEAD, 204 and 304 carry no body; HEAD keeps the length, 204 drops it", () =>
        Effect.gen(function*() {
          const port = yield* serveApp(strategy())
          const client = yield* promise(() => Http.connect(port))
          client.send(
            "HEAD /hello HTTP/1.1\r\nHost: t\r\n\r\nGET /empty HTTP/1.1\r\nHost: t\r\n\r\n" +
              "GET /not-modified HTTP/1.1\r\nHost: t\r\n\r\nGET /hello HTTP/1.1\r\nHost: t\r\n\r\n"
          )
          const [head, empty, notModified, after] = yield* promise(() => client.responses(4, ["HEAD", "GET", "GET", "GET"]))
          assert.strictEqual(head!.headers["content-length"], "5")
          assert.strictEqual(empty!.status, 204)
          assert.isUndefined(empty!.headers["content-length"])
          assert.strictEqual(notModified!.status, 304)
          assert.strictEqual(notModified!.headers["etag"], "\"v1\"")
          // nothing stray between the responses: the next one parses right after
          assert.strictEqual(after!.body, "hello")
          client.destroy()
        }))

      it.live("a body that does not match its content-length closes the connection", () =>
        Effect.gen(function*() {
          const port = yield* serveApp(strategy())
          for (const path of ["/stream-short", "/fixed-mismatch"]) {
            const client = yield* promise(() => Http.connect(port))
            // keep-alive asked for: only the mismatch can close it
            client.send(`GET ${path} HTTP/1.1\r\nHost: t\r\n\r\n`)
            yield* promise(() => client.closed())
            const text = client.received().toString("latin1")
            if (path === "/fixed-mismatch") assert.strictEqual(text, "")
            else assert.match(text, /content-length: 10\r\n\r\n12345$/)
          }
        }))

      it.live("keep-alive and pipelining: responses in request order on one connection", () =>
        Effect.gen(function*() {
          const port = yield* serveApp(strategy())
          const client = yield* promise(() => Http.connect(port))
          let batch = ""
          for (let i = 0; i < 40; i++) batch += i % 10 === 9 ? Http.get("/short") : Http.get("/hello")
          client.send(batch)
          const responses = yield* promise(() => client.responses(40, [], 20_000))
          responses.forEach((r, i) => assert.strictEqual(r.body, i % 10 === 9 ? "short" : "hello"))
          assert.isFalse(client.isClosed())
          client.destroy()
        }), 30_000)

      it.live("the strict parser still refuses smuggling shapes with 400 and closes", () =>
        Effect.gen(function*() {
          const port = yield* serveApp(strategy())
          const client = yield* promise(() => Http.connect(port))
          client.send("POST /text HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
          const [response] = yield* promise(() => client.responses(1))
          assert.strictEqual(response!.status, 400)
          yield* promise(() => client.closed())
        }))
    })

    describe(`${name}: upgrades and aborts`, () => {
      it.live("WebSocket: the handshake and frames are ws's; the HTTP response is not written", () =>
        Effect.gen(function*() {
          const port = yield* serveApp(strategy())
          const replies = yield* promise(() =>
            new Promise<Array<string>>((resolve, reject) => {
              const ws = new NodeWS.WebSocket(`ws://127.0.0.1:${port}/ws`)
              const got: Array<string> = []
              ws.on("open", () => {
                ws.send("hello")
                ws.send("again")
              })
              ws.on("message", (data) => {
                got.push(String(data))
                if (got.length === 2) ws.close()
              })
              ws.on("close", () => resolve(got))
              ws.on("error", reject)
            })
          )
          assert.deepStrictEqual(replies, ["HELLO", "AGAIN"])
        }))

      it.live("a switched connection outlives the request timeout", () =>
        Effect.gen(function*() {
          const port = yield* serveApp(strategy(), { requestTimeout: "200 millis" })
          const replies = yield* promise(() =>
            new Promise<Array<string>>((resolve, reject) => {
              const ws = new NodeWS.WebSocket(`ws://127.0.0.1:${port}/ws`)
              const got: Array<string> = []
              ws.on("open", () => setTimeout(() => ws.send("late"), 600))
              ws.on("message", (data) => {
                got.push(String(data))
                ws.close()
              })
              ws.on("close", () => resolve(got))
              ws.on("error", reject)
            })
          )
          assert.deepStrictEqual(replies, ["LATE"])
        }))

      it.live("other protocols: 101 with the app's headers, bytes sent after the request reach the socket", () =>
        Effect.gen(function*() {
          const port = yield* serveApp(strategy())
          const client = yield* promise(() => Http.connect(port))
          // the first bytes of the new protocol come with the request: the parser must not read them as HTTP
          client.send("GET /raw-upgrade HTTP/1.1\r\nHost: t\r\nUpgrade: shout\r\nConnection: Upgrade\r\n\r\nquiet words")
          yield* promise(() => client.closed())
          const text = client.received().toString("latin1")
          assert.match(text, /^HTTP\/1\.1 101 Switching Protocols\r\n/)
          assert.match(text, /\r\nUpgrade: shout\r\n/)
          assert.match(text, /\r\nx-proto: shout\r\n/)
          assert.isTrue(text.endsWith("\r\n\r\nQUIET WORDS"))
        }))

      it.live("an upgrade request the app does not take is answered over HTTP, then the connection closes", () =>
        Effect.gen(function*() {
          const port = yield* serveApp(strategy())
          const client = yield* promise(() => Http.connect(port))
          client.send("GET /no-upgrade HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x80junk")
          const [response] = yield* promise(() => client.responses(1))
          assert.strictEqual(response!.status, 426)
          assert.strictEqual(response!.body, "upgrade refused")
          yield* promise(() => client.closed())
        }))

      it.live("a client that resets the connection interrupts its request as a ClientAbort; a half-close does not", () =>
        Effect.gen(function*() {
          const port = yield* serveApp(strategy())
          const before = Apps.slowOutcomes.length
          const socket = yield* promise(() => Loopback.connect({ port }))
          socket.write(Http.get("/slow"))
          // wait until the app runs, then reset
          yield* Effect.gen(function*() {
            while (Apps.slowOutcomes.length === before) yield* Effect.sleep("10 millis")
          }).pipe(Effect.timeout("5 seconds"))
          socket.resetAndDestroy()
          assert.strictEqual(yield* Deferred.await(Apps.slowOutcomes[before]!).pipe(Effect.timeout("5 seconds")), "client-abort")
          // a client that sends its request and half-closes still gets the answer
          const halfClosing = yield* promise(() => Http.connect(port))
          halfClosing.socket.end(Http.get("/short"))
          const [answer] = yield* promise(() => halfClosing.responses(1))
          assert.strictEqual(answer!.body, "short")
          halfClosing.destroy()
        }))

      it.live("an app slower than the request timeout is interrupted: effect's 503 for it, then a close", () =>
        Effect.gen(function*() {
          const port = yield* serveApp(strategy(), { requestTimeout: "300 millis" })
          const before = Apps.slowOutcomes.length
          const client = yield* promise(() => Http.connect(port))
          client.send(Http.get("/slow"))
          const [response] = yield* promise(() => client.responses(1, [], 5_000))
          // what effect's server answers for a request whose fiber was interrupted
          assert.strictEqual(response!.status, 503)
          yield* promise(() => client.closed())
          assert.strictEqual(yield* Deferred.await(Apps.slowOutcomes[before]!).pipe(Effect.timeout("5 seconds")), "interrupted")
        }))
    })
  }

  describe("serve", () => {
    it.live("503 while no app is installed; the newest app answers; closing it restores the older", () =>
      Effect.gen(function*() {
        const context = yield* Layer.build(EffectHttpServer.layerTestWith())
        const server = Context.get(context, HttpServer.HttpServer)
        const port = portOf(server.address)
        const status = (path: string) => Effect.map(exchange(port, request("GET", path)), (r) => `${r.status} ${r.body}`)
        assert.match(yield* status("/"), /^503 /)
        const app = (name: string) => Effect.map(HttpServerRequest.HttpServerRequest, () => HttpServerResponse.text(name))
        yield* server.serve(app("first"))
        assert.strictEqual(yield* status("/"), "200 first")
        const scope = yield* Scope.make()
        yield* Scope.provide(server.serve(app("second")), scope)
        assert.strictEqual(yield* status("/"), "200 second")
        yield* Scope.close(scope, Exit.void)
        assert.strictEqual(yield* status("/"), "200 first")
      }))

    it.live("a closure cannot cross to fork or worker: make fails with a ServeError naming define", () =>
      Effect.gen(function*() {
        const exit = yield* Effect.exit(Layer.build(EffectHttpServer.layer({ strategy: WorkerStrategy.layer({ size: 1 }) })))
        assert.isTrue(Exit.isFailure(exit))
        if (Exit.isFailure(exit)) assert.include(String(exit.cause), "define")
      }))

    it.live("a bind failure is a ServeError", () =>
      Effect.gen(function*() {
        const blocker = Net.createServer()
        const port = yield* promise(() => new Promise<number>((resolve) => blocker.listen(0, "127.0.0.1", () => resolve((blocker.address() as Net.AddressInfo).port))))
        const exit = yield* Effect.exit(Layer.build(EffectHttpServer.layer({ transport: Transport.tcp({ port }) })))
        blocker.close()
        assert.isTrue(Exit.isFailure(exit) && String(exit.cause).includes("ServeError"))
      }))
  })

  describe("define: one module-exported app under every strategy", () => {
    for (const [name, layer] of [
      ["sequential", () => Strategy.layerSequential],
      ["fiber", () => Strategy.layerFiber()],
      ["fork pool", () => ForkStrategy.layerPool({ size: 2 })],
      ["worker pool", () => WorkerStrategy.layer({ size: 2 })]
    ] as const) {
      it.live(`${name}: the app is built where connections are served`, () =>
        Effect.gen(function*() {
          const server = yield* Loopback.startServer(Transport.tcp(), layer(), Apps.definedApp)
          const port = portOf(server.address)
          const whoami = (yield* exchange(port, request("GET", "/whoami"))).body
          assert.match(whoami, /^PID \d+ TID \d+$/)
          const elsewhere = name === "fork pool"
            ? !whoami.startsWith(`PID ${process.pid} `)
            : name === "worker pool"
            ? !whoami.endsWith(" TID 0")
            : whoami === `PID ${process.pid} TID 0`
          assert.isTrue(elsewhere, whoami)
          assert.strictEqual((yield* exchange(port, request("POST", "/echo", "", "body"))).body, "body")
          // state lives once per process or thread: counts go up where the app was built
          const count = Number((yield* exchange(port, request("GET", "/count"))).body)
          assert.isAtLeast(count, 1)
        }), 30_000)
    }

    it.live("layer with tls serves HTTPS: ALPN http/1.1 by default, originalUrl says https, a plain client gets nothing", () =>
      Effect.gen(function*() {
        const certs = yield* Certificates.make
        const port = yield* serveApp(Strategy.layerFiber(), { tls: { key: certs.server.key, cert: certs.server.cert } })
        const answer = yield* promise(() =>
          new Promise<{ readonly alpn: string | false | null; readonly body: string }>((resolve, reject) => {
            // offers h2 first: the server must pick http/1.1 (ALPNProtocols is a tls option that https passes on)
            const options = {
              host: "127.0.0.1",
              port,
              path: "/info?x=1",
              servername: "localhost",
              ca: certs.ca.cert,
              ALPNProtocols: ["h2", "http/1.1"],
              agent: false,
              timeout: 10_000
            }
            const outgoing = Https.request(
              options,
              (response) => {
                const chunks: Array<Buffer> = []
                response.on("data", (chunk: Buffer) => chunks.push(chunk))
                response.on("end", () =>
                  resolve({
                    alpn: (response.socket as unknown as { alpnProtocol: string | false | null }).alpnProtocol,
                    body: Buffer.concat(chunks).toString()
                  }))
              }
            )
            outgoing.on("error", reject)
            outgoing.on("timeout", () => outgoing.destroy(new Error("timed out")))
            outgoing.end()
          })
        )
        assert.strictEqual(answer.alpn, "http/1.1")
        assert.strictEqual(JSON.parse(answer.body).originalUrl, `https://127.0.0.1:${port}/info?x=1`)
        const socket = yield* promise(() => Loopback.connect({ port }))
        socket.write(request("GET", "/info"))
        const plain = yield* promise(() =>
          new Promise<string>((resolve) => {
            let text = ""
            socket.on("data", (chunk: Buffer) => (text += chunk.toString("latin1")))
            socket.on("close", () => resolve(text))
          })
        )
        assert.notInclude(plain, "HTTP/1.1 200")
      }))

    it.live("an app that fails to build fails its connections; the server goes on", () =>
      Effect.gen(function*() {
        const server = yield* Loopback.startServer(Transport.tcp(), Strategy.layerFiber(), Apps.brokenApp)
        const port = portOf(server.address)
        for (let i = 0; i < 2; i++) {
          const socket = yield* promise(() => Loopback.connect({ port }))
          socket.write(Http.get("/"))
          assert.strictEqual(yield* promise(() => Loopback.closed(socket)), "end")
        }
      }))
  })
})

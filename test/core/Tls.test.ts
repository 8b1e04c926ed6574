import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Fiber, Layer, Logger, Metric, References } from "effect"
import type { NetAddress } from "effect/net"
import { Buffer } from "node:buffer"
import * as Fs from "node:fs"
import * as ForkStrategy from "../../src/core/ForkStrategy.ts"
import * as Metrics from "../../src/core/Metrics.ts"
import * as Server from "../../src/core/Server.ts"
import * as Strategy from "../../src/core/Strategy.ts"
import * as StreamListener from "../../src/core/StreamListener.ts"
import * as Tls from "../../src/core/Tls.ts"
import * as Transport from "../../src/core/Transport.ts"
import * as WorkerStrategy from "../../src/core/WorkerStrategy.ts"
import * as EchoServer from "../../src/servers/echo/EchoServer.ts"
import * as Certificates from "../utils/certificates.ts"
import * as Loopback from "../utils/loopback.ts"
import * as TlsPeers from "../utils/tlsPeers.ts"

const portOf = (address: NetAddress.SocketAddress) => (address as NetAddress.InetAddress).port

/** Log lines the server wrote, for tests that check what was logged and at which level. */
const captureLogs = () => {
  const lines: Array<{ readonly level: string; readonly message: unknown; readonly annotations: Record<string, unknown> }> = []
  const layer = Layer.mergeAll(
    Logger.layer([Logger.make((options) => {
      lines.push({ level: options.logLevel, message: options.message, annotations: { ...options.fiber.getRef(References.CurrentLogAnnotations) } })
    })]),
    Layer.succeed(References.MinimumLogLevel, "Debug")
  )
  return { lines, layer }
}

/** Polls `probe` (every 20 ms, at most 5 s) until it returns a value: for what arrives over IPC after the fact. */
const waitUntil = <A>(probe: () => A | undefined): Promise<A> =>
  new Promise((resolve, reject) => {
    const deadline = Date.now() + 5_000
    const check = () => {
      const value = probe()
      if (value !== undefined) return resolve(value)
      if (Date.now() > deadline) return reject(new Error("condition not met in time"))
      setTimeout(check, 20)
    }
    check()
  })

describe("Tls", () => {
  describe("make", () => {
    it.live("reads key and certificate from files, text or bytes", () =>
      Effect.gen(function*() {
        const certs = yield* Certificates.make
        const fromFiles = yield* Tls.make({ key: { path: certs.server.keyPath }, cert: { path: certs.server.certPath } })
        const fromText = yield* Tls.make({ key: certs.server.key, cert: certs.server.cert })
        const fromBytes = yield* Tls.make({ key: Buffer.from(certs.server.key), cert: new TextEncoder().encode(certs.server.cert) })
        for (const config of [fromFiles, fromText, fromBytes]) assert.strictEqual(config.current.cert, certs.server.cert)
        assert.notStrictEqual(fromFiles.current.version, fromText.current.version)
        assert.strictEqual(fromText.current.handshakeTimeoutMillis, 10_000)
        assert.strictEqual(fromText.current.minVersion, "TLSv1.2")
      }))

    it.live("refuses missing, unreadable, invalid and mismatched credentials with a reason", () =>
      Effect.gen(function*() {
        const certs = yield* Certificates.make
        const missing = yield* Tls.make({}).pipe(Effect.flip)
        assert.strictEqual(missing.reason, "MissingCredentials")
        const half = yield* Tls.make({ cert: certs.server.cert }).pipe(Effect.flip)
        assert.strictEqual(half.reason, "MissingCredentials")
        const unreadable = yield* Tls.make({ key: { path: `${certs.dir}/nope.key` }, cert: certs.server.cert }).pipe(Effect.flip)
        assert.strictEqual(unreadable.reason, "UnreadableFile")
        assert.include(unreadable.message, "nope.key")
        const garbage = yield* Tls.make({ key: "not a key", cert: certs.server.cert }).pipe(Effect.flip)
        assert.strictEqual(garbage.reason, "InvalidCredentials")
        const mismatched = yield* Tls.make({ key: certs.renewed.key, cert: certs.server.cert }).pipe(Effect.flip)
        assert.strictEqual(mismatched.reason, "InvalidCredentials")
        const badHost = yield* Tls.make({ sni: { "a.test": { key: "x", cert: "y" } } }).pipe(Effect.flip)
        assert.include(badHost.message, "a.test")
      }))

    it.live("a listener given bad TLS options fails to build with the TlsError", () =>
      Effect.gen(function*() {
        const error = yield* StreamListener.make(Transport.tcp(), { tls: { key: "x", cert: "y" } }).pipe(Effect.flip)
        assert.instanceOf(error, Tls.TlsError)
      }))

    it.live("reload keeps the old credentials when the new ones are bad", () =>
      Effect.gen(function*() {
        const certs = yield* Certificates.make
        const config = yield* Tls.make({ key: certs.server.key, cert: certs.server.cert })
        const before = config.current
        const error = yield* config.reload({ key: certs.server.key, cert: certs.renewed.cert }).pipe(Effect.flip)
        assert.strictEqual(error.reason, "InvalidCredentials")
        assert.strictEqual(config.current, before)
      }))
  })

  for (const [name, transport] of [
    ["tcp", () => Transport.tcp()],
    ["unix", () => Transport.unix({ path: Loopback.tempSocketPath("tls") })]
  ] as const) {
    describe(`echo over TLS (${name})`, () => {
      for (const [strategyName, strategy] of [
        ["fiber", () => Strategy.layerFiber()],
        ["sequential", () => Strategy.layerSequential]
      ] as const) {
        it.live(`${strategyName}: a Node TLS client gets its bytes back, then the server's end`, () =>
          Effect.gen(function*() {
            const certs = yield* Certificates.make
            const tls = yield* Tls.make({ key: certs.server.key, cert: certs.server.cert })
            const server = yield* TlsPeers.startServer(transport(), tls, strategy(), EchoServer.streamHandler)
            const target = Loopback.targetOf(server.address)
            const payload = Loopback.bytes(256 * 1024, 5)
            const reply = yield* Effect.promise(() => TlsPeers.exchange(target, payload, { ca: certs.ca.cert }))
            assert.isTrue(Buffer.from(payload).equals(reply.data))
            assert.strictEqual(reply.serial, certs.server.serial)
          }))
      }

      it.live("4 clients streaming 16 MiB each at once get their own bytes back, byte-exact", () =>
        Effect.gen(function*() {
          // The echo asks for lent reads, which a TLS socket cannot give: it must fall back to owned reads.
          const certs = yield* Certificates.make
          const tls = yield* Tls.make({ key: certs.server.key, cert: certs.server.cert })
          const server = yield* TlsPeers.startServer(transport(), tls, Strategy.layerFiber(), EchoServer.streamHandler)
          const target = Loopback.targetOf(server.address)
          const payloads = Array.from({ length: 4 }, (_, i) => Loopback.bytes(16 * 1024 * 1024, 301 + i))
          const replies = yield* Effect.promise(() =>
            Promise.all(payloads.map((p) => TlsPeers.exchange(target, p, { ca: certs.ca.cert }, 90_000)))
          )
          replies.forEach((reply, i) => assert.isTrue(Buffer.from(payloads[i]!).equals(reply.data), `client ${i}`))
        }), 120_000)
    })
  }

  describe("real clients", () => {
    it.live("openssl s_client verifies the certificate against the CA and gets the echo", () =>
      Effect.gen(function*() {
        const certs = yield* Certificates.make
        const tls = yield* Tls.make({ key: { path: certs.server.keyPath }, cert: { path: certs.server.certPath } })
        const server = yield* TlsPeers.startServer(Transport.tcp(), tls, Strategy.layerFiber(), EchoServer.streamHandler)
        const result = yield* Effect.promise(() =>
          TlsPeers.sClient(portOf(server.address), {
            caPath: certs.ca.certPath,
            input: "hello over openssl\n",
            until: "hello over openssl"
          })
        )
        assert.strictEqual(result.code, 0, result.stderr)
        assert.include(result.stdout, "Verify return code: 0 (ok)")
        assert.include(result.stdout, "hello over openssl")
      }))

    it.live("a client trusting another CA is refused; the server goes on serving", () =>
      Effect.gen(function*() {
        const certs = yield* Certificates.make
        const tls = yield* Tls.make({ key: certs.server.key, cert: certs.server.cert })
        const server = yield* TlsPeers.startServer(Transport.tcp(), tls, Strategy.layerFiber(), EchoServer.streamHandler)
        const target = Loopback.targetOf(server.address)
        const refused = yield* Effect.promise(() =>
          TlsPeers.connect(target, { ca: certs.otherCa.cert }).then(() => undefined, (error: { code?: string }) => error)
        )
        assert.strictEqual(refused?.code, "UNABLE_TO_VERIFY_LEAF_SIGNATURE")
        const openssl = yield* Effect.promise(() =>
          TlsPeers.sClient(portOf(server.address), { caPath: certs.otherCa.certPath, input: "x" })
        )
        assert.notStrictEqual(openssl.code, 0)
        const reply = yield* Effect.promise(() => TlsPeers.exchange(target, "still serving", { ca: certs.ca.cert }))
        assert.strictEqual(reply.data.toString(), "still serving")
      }))

    it.live("an expired certificate and one for another host name are refused by the client", () =>
      Effect.gen(function*() {
        const certs = yield* Certificates.make
        for (const [issued, code] of [[certs.expired, "CERT_HAS_EXPIRED"], [certs.wrongHost, "ERR_TLS_CERT_ALTNAME_INVALID"]] as const) {
          yield* Effect.scoped(Effect.gen(function*() {
            const tls = yield* Tls.make({ key: issued.key, cert: issued.cert })
            const server = yield* TlsPeers.startServer(Transport.tcp(), tls, Strategy.layerFiber(), EchoServer.streamHandler)
            const error = yield* Effect.promise(() =>
              TlsPeers.connect(Loopback.targetOf(server.address), { ca: certs.ca.cert }).then(
                (socket) => {
                  socket.destroy()
                  return undefined
                },
                (error: { code?: string }) => error
              )
            )
            assert.strictEqual(error?.code, code)
          }))
        }
      }))
  })

  describe("misbehaving clients", () => {
    it.live("a plain-text client is closed, logged once at debug and counted; a TLS client is then served", () =>
      Effect.gen(function*() {
        const logs = captureLogs()
        const certs = yield* Certificates.make
        const tls = yield* Tls.make({ key: certs.server.key, cert: certs.server.cert })
        const failures = Metric.withAttributes(Metrics.tlsHandshakeFailures, { transport: "tcp", reason: "NotTls" })
        const before = (yield* Metric.value(failures)).count
        const server = yield* TlsPeers.startServer(Transport.tcp(), tls, Strategy.layerFiber(), EchoServer.streamHandler).pipe(
          Effect.provide(logs.layer)
        )
        const plain = yield* Effect.promise(() => Loopback.connect(Loopback.targetOf(server.address)))
        plain.write("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        const answer = yield* Effect.promise(() => TlsPeers.closedByServer(plain))
        // no HTTP answer, nothing echoed: at most a TLS alert record (content type 21)
        assert.isTrue(answer.length === 0 || answer[0] === 21, `unexpected bytes ${answer.toString("hex")}`)
        const reply = yield* Effect.promise(() =>
          TlsPeers.exchange(Loopback.targetOf(server.address), "after the probe", { ca: certs.ca.cert })
        )
        assert.strictEqual(reply.data.toString(), "after the probe")
        const failed = logs.lines.filter((line) => line.annotations.reason !== undefined)
        assert.strictEqual(failed.length, 1)
        assert.strictEqual(failed[0]!.level, "Debug")
        assert.strictEqual(failed[0]!.annotations.reason, "NotTls")
        assert.strictEqual((yield* Metric.value(failures)).count, before + 1)
      }))

    for (const [strategyName, strategy] of [
      ["fiber", () => Strategy.layerFiber()],
      ["sequential", () => Strategy.layerSequential],
      ["fiber with maxConcurrent 1", () => Strategy.layerFiber({ maxConcurrent: 1 })]
    ] as const) {
      it.live(`${strategyName}: a client that stalls its handshake holds up no other`, () =>
        Effect.gen(function*() {
          const certs = yield* Certificates.make
          // A timeout far longer than the test: the others must be served while the staller still waits.
          const tls = yield* Tls.make({ key: certs.server.key, cert: certs.server.cert, handshakeTimeout: "2 minutes" })
          const server = yield* TlsPeers.startServer(Transport.tcp(), tls, strategy(), EchoServer.streamHandler)
          const silent = yield* Effect.promise(() => Loopback.connect(Loopback.targetOf(server.address)))
          const partial = yield* Effect.promise(() => Loopback.connect(Loopback.targetOf(server.address)))
          // the first bytes of a ClientHello record, and nothing more
          partial.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]))
          const target = Loopback.targetOf(server.address)
          const replies = yield* Effect.promise(() =>
            Promise.all([1, 2, 3].map((i) => TlsPeers.exchange(target, `client ${i}`, { ca: certs.ca.cert })))
          )
          replies.forEach((reply, i) => assert.strictEqual(reply.data.toString(), `client ${i + 1}`))
          assert.isFalse(silent.destroyed)
          assert.isFalse(partial.destroyed)
          silent.destroy()
          partial.destroy()
        }))
    }

    it.live("a stalled handshake (silent, or a partial ClientHello) is cut at the handshake timeout and logged", () =>
      Effect.gen(function*() {
        const logs = captureLogs()
        const certs = yield* Certificates.make
        const tls = yield* Tls.make({ key: certs.server.key, cert: certs.server.cert, handshakeTimeout: "300 millis" })
        const server = yield* TlsPeers.startServer(Transport.tcp(), tls, Strategy.layerSequential, EchoServer.streamHandler).pipe(
          Effect.provide(logs.layer)
        )
        const silent = yield* Effect.promise(() => Loopback.connect(Loopback.targetOf(server.address)))
        const partial = yield* Effect.promise(() => Loopback.connect(Loopback.targetOf(server.address)))
        partial.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]))
        yield* Effect.promise(() => Promise.all([TlsPeers.closedByServer(silent), TlsPeers.closedByServer(partial)]))
        const timeouts = logs.lines.filter((line) => line.annotations.reason === "Timeout")
        assert.strictEqual(timeouts.length, 2)
        assert.strictEqual(timeouts[0]!.level, "Info")
        const reply = yield* Effect.promise(() =>
          TlsPeers.exchange(Loopback.targetOf(server.address), "served after", { ca: certs.ca.cert })
        )
        assert.strictEqual(reply.data.toString(), "served after")
      }))
  })

  describe("reload", () => {
    it.live("a connection after reload gets the new certificate; one opened before goes on", () =>
      Effect.gen(function*() {
        const certs = yield* Certificates.make
        const keyPath = `${certs.dir}/live.key`
        const certPath = `${certs.dir}/live.crt`
        Fs.copyFileSync(certs.server.keyPath, keyPath)
        Fs.copyFileSync(certs.server.certPath, certPath)
        const tls = yield* Tls.make({ key: { path: keyPath }, cert: { path: certPath } })
        const server = yield* TlsPeers.startServer(Transport.tcp(), tls, Strategy.layerFiber(), EchoServer.streamHandler)
        const target = Loopback.targetOf(server.address)
        const early = yield* Effect.promise(() => TlsPeers.connect(target, { ca: certs.ca.cert }))
        assert.strictEqual(early.getPeerCertificate().serialNumber, certs.server.serial)
        // renew the files in place, as a certificate manager does, then reload
        Fs.copyFileSync(certs.renewed.keyPath, keyPath)
        Fs.copyFileSync(certs.renewed.certPath, certPath)
        yield* tls.reload()
        const late = yield* Effect.promise(() => TlsPeers.exchange(target, "after reload", { ca: certs.ca.cert }))
        assert.strictEqual(late.serial, certs.renewed.serial)
        assert.strictEqual(late.data.toString(), "after reload")
        early.write("still open")
        const echoed = yield* Effect.promise(() => Loopback.readExactly(early, "still open".length))
        assert.strictEqual(echoed.toString(), "still open")
        early.destroy()
        // and an explicit update
        yield* tls.reload({ key: certs.server.key, cert: certs.server.cert })
        const again = yield* Effect.promise(() => TlsPeers.exchange(target, "x", { ca: certs.ca.cert }))
        assert.strictEqual(again.serial, certs.server.serial)
      }))
  })

  describe("negotiation", () => {
    it.live("ALPN: the offered protocol is chosen; a client offering none of ours is refused", () =>
      Effect.gen(function*() {
        const certs = yield* Certificates.make
        const tls = yield* Tls.make({ key: certs.server.key, cert: certs.server.cert, alpn: ["http/1.1"] })
        const server = yield* TlsPeers.startServer(Transport.tcp(), tls, Strategy.layerFiber(), EchoServer.streamHandler)
        const target = Loopback.targetOf(server.address)
        const reply = yield* Effect.promise(() =>
          TlsPeers.exchange(target, "alpn", { ca: certs.ca.cert, alpn: ["h2", "http/1.1"] })
        )
        assert.strictEqual(reply.alpn, "http/1.1")
        const refused = yield* Effect.promise(() =>
          TlsPeers.connect(target, { ca: certs.ca.cert, alpn: ["h2"] }).then(() => undefined, (error: { code?: string }) => error)
        )
        assert.strictEqual(refused?.code, "ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL")
      }))

    it.live("minVersion TLSv1.3 refuses a TLS 1.2 client", () =>
      Effect.gen(function*() {
        const certs = yield* Certificates.make
        const tls = yield* Tls.make({ key: certs.server.key, cert: certs.server.cert, minVersion: "TLSv1.3" })
        const server = yield* TlsPeers.startServer(Transport.tcp(), tls, Strategy.layerFiber(), EchoServer.streamHandler)
        const result = yield* Effect.promise(() =>
          TlsPeers.sClient(portOf(server.address), { caPath: certs.ca.certPath, input: "x", args: ["-tls1_2"] })
        )
        assert.notStrictEqual(result.code, 0)
        const ok = yield* Effect.promise(() =>
          TlsPeers.sClient(portOf(server.address), { caPath: certs.ca.certPath, input: "version check\n", until: "version check" })
        )
        assert.include(ok.stdout, "TLSv1.3")
      }))

    it.live("SNI: certificates by host name (exact and wildcard), the default for other names, and a callback", () =>
      Effect.gen(function*() {
        const certs = yield* Certificates.make
        const a = certs.ca.issue("a", { hosts: ["a.test"] })
        const any = certs.ca.issue("any", { hosts: ["*.wild.test"] })
        const fromCallback = certs.ca.issue("called", { hosts: ["called.test"] })
        const asked: Array<string> = []
        const tls = yield* Tls.make({
          key: certs.server.key,
          cert: certs.server.cert,
          sni: { "A.test": { key: a.key, cert: a.cert }, "*.wild.test": { key: { path: any.keyPath }, cert: { path: any.certPath } } },
          sniCallback: (servername) =>
            Effect.sync(() => {
              asked.push(servername)
              return servername === "called.test" ? { key: fromCallback.key, cert: fromCallback.cert } : undefined
            })
        })
        const server = yield* TlsPeers.startServer(Transport.tcp(), tls, Strategy.layerFiber(), EchoServer.streamHandler)
        const target = Loopback.targetOf(server.address)
        const serialFor = (servername: string) =>
          Effect.promise(() => TlsPeers.exchange(target, "sni", { ca: certs.ca.cert, servername })).pipe(
            Effect.map((reply) => reply.serial)
          )
        assert.strictEqual(yield* serialFor("a.test"), a.serial)
        assert.strictEqual(yield* serialFor("x.wild.test"), any.serial)
        assert.strictEqual(yield* serialFor("called.test"), fromCallback.serial)
        assert.strictEqual(yield* serialFor("localhost"), certs.server.serial)
        assert.deepStrictEqual(asked, ["called.test", "localhost"])
      }))
  })

  describe("connections", () => {
    it.live("handleOne secures and serves one TLS connection", () =>
      Effect.gen(function*() {
        const certs = yield* Certificates.make
        const tls = yield* Tls.make({ key: certs.server.key, cert: certs.server.cert })
        const context = yield* Layer.build(
          Server.layer().pipe(Layer.provide([StreamListener.layer(Transport.tcp(), { tls }), Strategy.layerSequential]))
        )
        const server = Context.get(context, Server.Server)
        const reply = Effect.promise(() =>
          TlsPeers.exchange(Loopback.targetOf(server.address), "just one", { ca: certs.ca.cert })
        )
        const [result, echoed] = yield* Effect.all([server.handleOne(EchoServer.streamHandler), reply], {
          concurrency: 2
        })
        assert.strictEqual(result._tag, "Handled")
        assert.strictEqual(echoed.data.toString(), "just one")
      }))

    it.live("the idle timeout closes an idle TLS connection", () =>
      Effect.gen(function*() {
        const certs = yield* Certificates.make
        const tls = yield* Tls.make({ key: certs.server.key, cert: certs.server.cert })
        const server = yield* TlsPeers.startServer(Transport.tcp(), tls, Strategy.layerFiber(), EchoServer.streamHandler, {
          idleTimeout: "200 millis"
        })
        const socket = yield* Effect.promise(() => TlsPeers.connect(Loopback.targetOf(server.address), { ca: certs.ca.cert }))
        socket.write("ping")
        const echoed = yield* Effect.promise(() => Loopback.readExactly(socket, 4))
        assert.strictEqual(echoed.toString(), "ping")
        yield* Effect.promise(() => TlsPeers.closedByServer(socket))
      }))
  })

  describe("fork and worker: the member does the handshake", () => {
    const remote = [
      ["fork pool", () => ForkStrategy.layerPool({ size: 2 })],
      ["fork per connection", () => ForkStrategy.layerPerConnection({ maxChildren: 4 })],
      ["worker pool", () => WorkerStrategy.layer({ size: 2 })]
    ] as const
    for (const [name, strategy] of remote) {
      for (const [transportName, transport] of [
        ["tcp", () => Transport.tcp()],
        ["unix", () => Transport.unix({ path: Loopback.tempSocketPath("tls-remote") })]
      ] as const) {
        it.live(`${name} (${transportName}): echo over TLS, 2 clients x 4 MiB byte-exact; a plain-text client is closed`, () =>
          Effect.gen(function*() {
            const certs = yield* Certificates.make
            const tls = yield* Tls.make({ key: certs.server.key, cert: certs.server.cert })
            const server = yield* TlsPeers.startServer(transport(), tls, strategy(), EchoServer.streamHandler)
            const target = Loopback.targetOf(server.address)
            const payloads = [Loopback.bytes(4 * 1024 * 1024, 41), Loopback.bytes(4 * 1024 * 1024, 42)]
            const replies = yield* Effect.promise(() =>
              Promise.all(payloads.map((p) => TlsPeers.exchange(target, p, { ca: certs.ca.cert }, 60_000)))
            )
            replies.forEach((reply, i) => assert.isTrue(Buffer.from(payloads[i]!).equals(reply.data), `client ${i}`))
            assert.strictEqual(replies[0]!.serial, certs.server.serial)
            const plain = yield* Effect.promise(() => Loopback.connect(target))
            plain.write("PING\r\n")
            const answer = yield* Effect.promise(() => TlsPeers.closedByServer(plain))
            assert.isTrue(answer.length === 0 || answer[0] === 21, `unexpected bytes ${answer.toString("hex")}`)
            const after = yield* Effect.promise(() => TlsPeers.exchange(target, "after", { ca: certs.ca.cert }))
            assert.strictEqual(after.data.toString(), "after")
          }), 90_000)
      }
    }

    for (const [name, strategy] of [remote[0], remote[2]] as const) {
      it.live(`${name}: connections after a reload get the new certificate from the members; a stalled handshake is cut there`, () =>
        Effect.gen(function*() {
          const logs = captureLogs()
          const certs = yield* Certificates.make
          const tls = yield* Tls.make({ key: certs.server.key, cert: certs.server.cert, handshakeTimeout: "300 millis" })
          const server = yield* TlsPeers.startServer(Transport.tcp(), tls, strategy(), EchoServer.streamHandler).pipe(
            Effect.provide(logs.layer)
          )
          const target = Loopback.targetOf(server.address)
          const serials = (count: number) =>
            Effect.promise(() =>
              Promise.all(Array.from({ length: count }, (_, i) => TlsPeers.exchange(target, `c${i}`, { ca: certs.ca.cert })))
            ).pipe(Effect.map((replies) => new Set(replies.map((reply) => reply.serial))))
          // several connections, so that both members serve some
          assert.deepStrictEqual(yield* serials(6), new Set([certs.server.serial]))
          const open = yield* Effect.promise(() => TlsPeers.connect(target, { ca: certs.ca.cert }))
          yield* tls.reload({ key: certs.renewed.key, cert: certs.renewed.cert })
          assert.deepStrictEqual(yield* serials(6), new Set([certs.renewed.serial]))
          open.write("old session")
          const echoed = yield* Effect.promise(() => Loopback.readExactly(open, "old session".length))
          assert.strictEqual(echoed.toString(), "old session")
          open.destroy()
          const silent = yield* Effect.promise(() => Loopback.connect(target))
          yield* Effect.promise(() => TlsPeers.closedByServer(silent))
          // logged once, by the member, and forwarded to the server's log under the member's id
          const timeouts = yield* Effect.promise(() =>
            waitUntil(() => {
              const found = logs.lines.filter((line) => line.annotations.reason === "Timeout")
              return found.length > 0 ? found : undefined
            })
          )
          assert.strictEqual(timeouts.length, 1)
          assert.strictEqual(timeouts[0]!.level, "Info")
          assert.isTrue("pid" in timeouts[0]!.annotations || "threadId" in timeouts[0]!.annotations)
        }), 60_000)
    }

    it.live("SNI by host name works in a member; an sniCallback is refused with a clear error", () =>
      Effect.gen(function*() {
        const certs = yield* Certificates.make
        const a = certs.ca.issue("a", { hosts: ["a.test"] })
        const byName = yield* Tls.make({ key: certs.server.key, cert: certs.server.cert, sni: { "a.test": { key: a.key, cert: a.cert } } })
        const server = yield* TlsPeers.startServer(Transport.tcp(), byName, ForkStrategy.layerPool({ size: 1 }), EchoServer.streamHandler)
        const reply = yield* Effect.promise(() =>
          TlsPeers.exchange(Loopback.targetOf(server.address), "sni", { ca: certs.ca.cert, servername: "a.test" })
        )
        assert.strictEqual(reply.serial, a.serial)

        const withCallback = yield* Tls.make({ key: certs.server.key, cert: certs.server.cert, sniCallback: () => Effect.undefined })
        const context = yield* Layer.build(
          Server.layer().pipe(Layer.provide([
            StreamListener.layer(Transport.tcp(), { tls: withCallback }),
            WorkerStrategy.layer({ size: 1 })
          ]))
        )
        const refusing = Context.get(context, Server.Server)
        const serving = yield* Effect.forkChild(refusing.serve(EchoServer.streamHandler), { startImmediately: true })
        const client = yield* Effect.promise(() =>
          TlsPeers.connect(Loopback.targetOf(refusing.address), { ca: certs.ca.cert }).then(() => "connected", () => "refused")
        )
        assert.strictEqual(client, "refused")
        const error = yield* Fiber.join(serving).pipe(Effect.flip)
        assert.strictEqual(error.reason, "StrategyFailed")
        assert.include(error.message, "sniCallback")
        assert.include(error.message, "`sni`")
      }), 60_000)
  })
})

import { assert, describe, it } from "@effect/vitest"
import { Cause, Context, Deferred, Duration, Effect, Exit, Fiber, Layer, Metric, Pull, Scope } from "effect"
import { NetAddress } from "effect/net"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Connection from "../../src/core/Connection.ts"
import * as Handler from "../../src/core/Handler.ts"
import * as Metrics from "../../src/core/Metrics.ts"
import * as Server from "../../src/core/Server.ts"
import * as Strategy from "../../src/core/Strategy.ts"
import * as Transport from "../../src/core/Transport.ts"
import * as EchoServer from "../../src/servers/echo/EchoServer.ts"
import * as Loopback from "../utils/loopback.ts"

/** Reads until the peer half-closes and returns everything read. */
const readAll = (connection: Connection.Connection) =>
  Effect.gen(function*() {
    const chunks: Array<Uint8Array> = []
    yield* Effect.flatMap(connection.read, (batch) => Effect.sync(() => chunks.push(...batch))).pipe(
      Effect.forever,
      Pull.catchDone(() => Effect.void)
    )
    return Buffer.concat(chunks)
  })

/** A handler that counts how many connections it serves at once. */
const concurrencyProbe = (hold: Duration.Input) => {
  const state = { active: 0, max: 0 }
  const handler = Handler.stream((connection) =>
    Effect.gen(function*() {
      state.active++
      state.max = Math.max(state.max, state.active)
      const input = yield* readAll(connection)
      yield* Effect.sleep(hold)
      yield* connection.write(input)
      yield* connection.end
    }).pipe(Effect.ensuring(Effect.sync(() => state.active--)))
  )
  return { state, handler }
}

/** Builds a server without serving, so a test can drive it. */
const buildServer = (transport: Transport.Transport, strategy: Layer.Layer<Strategy.Strategy>, options?: Server.Options) =>
  Effect.map(
    Layer.build(Server.layer(options).pipe(Layer.provide([Loopback.listenerLayer(transport), strategy]))),
    Context.get(Server.Server)
  )

describe("Server", () => {
  describe("strategies", () => {
    it.live("sequential serves one connection at a time", () =>
      Effect.gen(function*() {
        const probe = concurrencyProbe("30 millis")
        const server = yield* Loopback.startServer(Transport.tcp(), Strategy.layerSequential, probe.handler)
        const target = Loopback.targetOf(server.address)
        const replies = yield* Effect.promise(() =>
          Promise.all(Array.from({ length: 6 }, (_, i) => Loopback.exchange(target, `client ${i}`)))
        )
        replies.forEach((reply, i) => assert.strictEqual(reply.toString(), `client ${i}`))
        assert.strictEqual(probe.state.max, 1)
      }))

    it.live("fiber serves connections concurrently", () =>
      Effect.gen(function*() {
        const probe = concurrencyProbe("200 millis")
        const server = yield* Loopback.startServer(Transport.tcp(), Strategy.layerFiber(), probe.handler)
        const target = Loopback.targetOf(server.address)
        yield* Effect.promise(() => Promise.all(Array.from({ length: 6 }, (_, i) => Loopback.exchange(target, `c${i}`))))
        assert.isAbove(probe.state.max, 1)
      }))

    it.live("fiber with maxConcurrent never exceeds it", () =>
      Effect.gen(function*() {
        const probe = concurrencyProbe("50 millis")
        const server = yield* Loopback.startServer(Transport.tcp(), Strategy.layerFiber({ maxConcurrent: 2 }), probe.handler)
        const target = Loopback.targetOf(server.address)
        const replies = yield* Effect.promise(() =>
          Promise.all(Array.from({ length: 8 }, (_, i) => Loopback.exchange(target, `c${i}`)))
        )
        replies.forEach((reply, i) => assert.strictEqual(reply.toString(), `c${i}`))
        assert.strictEqual(probe.state.max, 2)
      }))
  })

  describe("handleOne", () => {
    it.live("handles exactly one connection", () =>
      Effect.gen(function*() {
        const server = yield* buildServer(Transport.tcp(), Strategy.layerFiber())
        const target = Loopback.targetOf(server.address)
        const reply = Effect.promise(() => Loopback.exchange(target, "just one"))
        const [result, echoed] = yield* Effect.all([server.handleOne(EchoServer.streamHandler), reply], {
          concurrency: 2
        })
        assert.strictEqual(result._tag, "Handled")
        assert.strictEqual(echoed.toString(), "just one")
        // A second client is accepted by the kernel but not served until the next handleOne.
        const second = yield* Effect.promise(() => Loopback.connect(target))
        second.end("waiting")
        const early = yield* Effect.promise(() => Loopback.readExactly(second, 7, 300).then(() => "read", () => "nothing"))
        assert.strictEqual(early, "nothing")
        const served = Effect.promise(() => Loopback.readExactly(second, 7))
        const [next, data] = yield* Effect.all([server.handleOne(EchoServer.streamHandler), served], { concurrency: 2 })
        assert.strictEqual(next._tag, "Handled")
        assert.strictEqual(data.toString(), "waiting")
        second.destroy()
      }))

    it.live("returns TimedOut when nobody connects in time", () =>
      Effect.gen(function*() {
        const server = yield* buildServer(Transport.tcp(), Strategy.layerFiber())
        const result = yield* server.handleOne(EchoServer.streamHandler, { timeout: "100 millis" })
        assert.strictEqual(result._tag, "TimedOut")
      }))

    it.live("handles one datagram", () =>
      Effect.gen(function*() {
        const server = yield* buildServer(Transport.udp(), Strategy.layerSequential)
        const port = (server.address as { port: number }).port
        const [result, reply] = yield* Effect.all([
          server.handleOne(EchoServer.datagramHandler, { timeout: "5 seconds" }),
          Effect.promise(() => Loopback.udpRequest(port, new TextEncoder().encode("one")))
        ], { concurrency: 2 })
        assert.strictEqual(result._tag, "Handled")
        assert.strictEqual(reply.toString(), "one")
      }))

    it.live("a handler of the wrong kind is a ServerError, not a hang", () =>
      Effect.gen(function*() {
        const server = yield* buildServer(Transport.udp(), Strategy.layerFiber())
        const error = yield* server.serve(EchoServer.streamHandler).pipe(Effect.flip)
        assert.strictEqual(error.reason, "HandlerMismatch")
      }))
  })

  describe("shutdown", () => {
    const slowReply = (started: Deferred.Deferred<void>, hold: Duration.Input) =>
      Handler.stream((connection) =>
        Effect.gen(function*() {
          const input = yield* readAll(connection)
          yield* Deferred.succeed(started, undefined)
          yield* Effect.sleep(hold)
          yield* connection.write(input)
          yield* connection.end
        })
      )

    it.live("graceful shutdown stops accepting and lets in-flight handlers finish", () =>
      Effect.gen(function*() {
        const started = yield* Deferred.make<void>()
        const server = yield* buildServer(Transport.tcp(), Strategy.layerFiber())
        const target = Loopback.targetOf(server.address)
        const serving = yield* Effect.forkChild(server.serve(slowReply(started, "300 millis")), { startImmediately: true })
        const reply = Effect.runPromise(Effect.promise(() => Loopback.exchange(target, "finish me")))
        yield* Deferred.await(started)
        yield* server.shutdown
        assert.strictEqual((yield* Effect.promise(() => reply)).toString(), "finish me")
        const exit = yield* Fiber.await(serving)
        assert.isTrue(Exit.isSuccess(exit))
        const refused = yield* Effect.promise(() => Loopback.connect(target, 2_000).then(() => "connected", (e) => e.code))
        assert.strictEqual(refused, "ECONNREFUSED")
      }))

    it.live("interrupting serve drains in-flight handlers too", () =>
      Effect.gen(function*() {
        const started = yield* Deferred.make<void>()
        const server = yield* buildServer(Transport.tcp(), Strategy.layerFiber())
        const serving = yield* Effect.forkChild(server.serve(slowReply(started, "200 millis")), { startImmediately: true })
        const reply = Effect.runPromise(Effect.promise(() => Loopback.exchange(Loopback.targetOf(server.address), "drained")))
        yield* Deferred.await(started)
        yield* Fiber.interrupt(serving)
        assert.strictEqual((yield* Effect.promise(() => reply)).toString(), "drained")
      }))

    it.live("handlers still running after the drain timeout are interrupted", () =>
      Effect.gen(function*() {
        const started = yield* Deferred.make<void>()
        const server = yield* buildServer(Transport.tcp(), Strategy.layerFiber(), { drainTimeout: "100 millis" })
        yield* Effect.forkChild(server.serve(slowReply(started, "1 hour")), { startImmediately: true })
        const reply = Effect.runPromise(Effect.promise(() => Loopback.exchange(Loopback.targetOf(server.address), "never")))
        yield* Deferred.await(started)
        yield* server.shutdown
        assert.strictEqual((yield* Effect.promise(() => reply)).length, 0)
      }))

    it.live("handlers see the shutdown signal and can finish early", () =>
      Effect.gen(function*() {
        const started = yield* Deferred.make<void>()
        const polite = Handler.stream((connection) =>
          Effect.gen(function*() {
            const shutdown = yield* Server.Shutdown
            assert.isFalse(yield* shutdown.isRequested)
            yield* Deferred.succeed(started, undefined)
            yield* shutdown.requested
            yield* connection.write("goodbye")
            yield* connection.end
          })
        )
        const server = yield* buildServer(Transport.tcp(), Strategy.layerFiber(), { drainTimeout: "30 seconds" })
        yield* Effect.forkChild(server.serve(polite), { startImmediately: true })
        const socket = yield* Effect.promise(() => Loopback.connect(Loopback.targetOf(server.address)))
        yield* Deferred.await(started)
        const farewell = Effect.runPromise(Effect.promise(() => Loopback.readExactly(socket, 7)))
        yield* server.shutdown
        assert.strictEqual((yield* Effect.promise(() => farewell)).toString(), "goodbye")
        socket.destroy()
      }))

    it.live("interrupting serve (Ctrl-C) fires the shutdown signal too", () =>
      Effect.gen(function*() {
        const started = yield* Deferred.make<void>()
        const polite = Handler.stream((connection) =>
          Effect.gen(function*() {
            yield* Deferred.succeed(started, undefined)
            yield* (yield* Server.Shutdown).requested
            yield* connection.write("bye")
            yield* connection.end
          })
        )
        const server = yield* buildServer(Transport.tcp(), Strategy.layerFiber(), { drainTimeout: "30 seconds" })
        const serving = yield* Effect.forkChild(server.serve(polite), { startImmediately: true })
        const socket = yield* Effect.promise(() => Loopback.connect(Loopback.targetOf(server.address)))
        yield* Deferred.await(started)
        const farewell = Effect.runPromise(Effect.promise(() => Loopback.readExactly(socket, 3)))
        yield* Fiber.interrupt(serving)
        assert.strictEqual((yield* Effect.promise(() => farewell)).toString(), "bye")
        socket.destroy()
      }))

    it.live("the echo handler ends an idle connection at once, without waiting out the drain", () =>
      Effect.gen(function*() {
        const server = yield* buildServer(Transport.tcp(), Strategy.layerFiber(), { drainTimeout: "1 hour" })
        yield* Effect.forkChild(server.serve(EchoServer.streamHandler), { startImmediately: true })
        const socket = yield* Effect.promise(() => Loopback.connect(Loopback.targetOf(server.address)))
        socket.write("ping")
        assert.strictEqual((yield* Effect.promise(() => Loopback.readExactly(socket, 4))).toString(), "ping")
        yield* server.shutdown
        assert.strictEqual(yield* Effect.promise(() => Loopback.closed(socket)), "end")
      }))

    it.live("Server.serve announces the bound address, and on interruption closes the listener before the drain", () =>
      Effect.gen(function*() {
        const started = yield* Deferred.make<void>()
        const release = yield* Deferred.make<void>()
        const told = yield* Deferred.make<void>()
        // Told of the shutdown, it still needs `release` to finish: the drain waits for it.
        const slow = Handler.stream((connection) =>
          Effect.gen(function*() {
            yield* Deferred.succeed(started, undefined)
            yield* (yield* Server.Shutdown).requested
            yield* Deferred.succeed(told, undefined)
            yield* Deferred.await(release)
            yield* connection.end
          })
        )
        const context = yield* Layer.build(
          Server.layer({ drainTimeout: "1 hour" }).pipe(
            Layer.provide([Loopback.listenerLayer(Transport.tcp()), Strategy.layerFiber()])
          )
        )
        const announced = yield* Deferred.make<string>()
        const serving = yield* Effect.forkChild(
          Server.serve(slow, {
            onListening: (address) => Deferred.succeed(announced, NetAddress.formatSocketAddress(address)).pipe(Effect.asVoid)
          }).pipe(Effect.provideContext(context)),
          { startImmediately: true }
        )
        const server = Context.get(context, Server.Server)
        assert.strictEqual(yield* Deferred.await(announced), NetAddress.formatSocketAddress(server.address))
        const target = Loopback.targetOf(server.address)
        const socket = yield* Effect.promise(() => Loopback.connect(target))
        yield* Deferred.await(started)
        const stopping = yield* Effect.forkChild(Fiber.interrupt(serving), { startImmediately: true })
        yield* Deferred.await(told)
        const refused = yield* Effect.promise(() => Loopback.connect(target, 2_000).then(() => "connected", (e) => e.code))
        assert.strictEqual(refused, "ECONNREFUSED")
        yield* Deferred.succeed(release, undefined)
        yield* Fiber.join(stopping)
        assert.strictEqual(yield* Effect.promise(() => Loopback.closed(socket)), "end")
      }))

    it.live("immediate shutdown interrupts in-flight handlers at once", () =>
      Effect.gen(function*() {
        const started = yield* Deferred.make<void>()
        const server = yield* buildServer(Transport.tcp(), Strategy.layerFiber(), { shutdownMode: "immediate" })
        yield* Effect.forkChild(server.serve(slowReply(started, "1 hour")), { startImmediately: true })
        const reply = Effect.runPromise(Effect.promise(() => Loopback.exchange(Loopback.targetOf(server.address), "cut")))
        yield* Deferred.await(started)
        yield* server.shutdown
        assert.strictEqual((yield* Effect.promise(() => reply)).length, 0)
      }))

    it.live("closing the scope releases the port, the Unix path and every connection", () =>
      Effect.gen(function*() {
        const path = Loopback.tempSocketPath("release")
        const scope = yield* Scope.make()
        const tcp = yield* Loopback.startServer(Transport.tcp(), Strategy.layerFiber(), EchoServer.streamHandler).pipe(
          Scope.provide(scope)
        )
        yield* Loopback.startServer(Transport.unix({ path }), Strategy.layerFiber(), EchoServer.streamHandler).pipe(
          Scope.provide(scope)
        )
        const port = (tcp.address as { port: number }).port
        const open = yield* Effect.promise(() => Loopback.connect(Loopback.targetOf(tcp.address)))
        const openClosed = Loopback.closed(open)
        assert.isTrue(Fs.existsSync(path))
        yield* Scope.close(scope, Exit.void)
        assert.isFalse(Fs.existsSync(path))
        yield* Effect.promise(() => openClosed)
        // The same port can be bound again at once.
        const again = Net.createServer()
        yield* Effect.promise(() =>
          new Promise<void>((resolve, reject) => {
            again.once("error", reject)
            again.listen(port, "127.0.0.1", resolve)
          })
        )
        again.close()
      }))
  })

  describe("hooks and limits", () => {
    it.live("the verify hook refuses peers before anything is read", () =>
      Effect.gen(function*() {
        let served = 0
        const handler = Handler.stream((connection) => Effect.andThen(Effect.sync(() => served++), EchoServer.echoConnection(connection)))
        let verified = 0
        const server = yield* Loopback.startServer(Transport.tcp(), Strategy.layerFiber(), handler, {
          verify: (peer) => Effect.sync(() => ++verified % 2 === 0 && peer.peer.startsWith("127.0.0.1:"))
        })
        const target = Loopback.targetOf(server.address)
        // A refused peer is closed unread: it sees an empty reply or a reset, never an echo.
        const refused = yield* Effect.promise(() => Loopback.exchange(target, "first").then((b) => b.length, (e) => e.code))
        const accepted = yield* Effect.promise(() => Loopback.exchange(target, "second"))
        assert.oneOf(refused, [0, "ECONNRESET"])
        assert.strictEqual(accepted.toString(), "second")
        assert.strictEqual(served, 1)
      }))

    it.live("failing, defecting and throwing handlers are reported and the server keeps serving", () =>
      Effect.gen(function*() {
        const failures: Array<Server.HandlerFailure> = []
        let n = 0
        const handler = Handler.stream((connection): Effect.Effect<void, unknown> => {
          n++
          if (n === 1) return Effect.fail("boom" as const)
          if (n === 2) return Effect.die(new Error("defect"))
          if (n === 3) throw new Error("thrown synchronously")
          return EchoServer.echoConnection(connection)
        }, { name: "flaky" })
        const server = yield* Loopback.startServer(Transport.tcp(), Strategy.layerFiber(), handler, {
          onError: (failure) => Effect.sync(() => failures.push(failure))
        })
        const target = Loopback.targetOf(server.address)
        for (let i = 0; i < 3; i++) {
          const reply = yield* Effect.promise(() => Loopback.exchange(target, "x"))
          assert.strictEqual(reply.length, 0)
        }
        const reply = yield* Effect.promise(() => Loopback.exchange(target, "works"))
        assert.strictEqual(reply.toString(), "works")
        assert.strictEqual(failures.length, 3)
        assert.deepStrictEqual(failures.map((f) => f.handler), ["flaky", "flaky", "flaky"])
        assert.isTrue(Cause.hasFails(failures[0]!.cause))
        assert.isTrue(Cause.hasDies(failures[1]!.cause))
      }))

    it.live("a datagram handler that throws synchronously is reported and the server keeps serving", () =>
      Effect.gen(function*() {
        const failures: Array<Server.HandlerFailure> = []
        let n = 0
        const handler = Handler.datagram((datagram): Effect.Effect<void, unknown> => {
          if (++n === 1) throw new Error("thrown before any Effect")
          return datagram.reply(datagram.payload)
        })
        const server = yield* Loopback.startServer(Transport.udp(), Strategy.layerFiber(), handler, {
          onError: (failure) => Effect.sync(() => failures.push(failure))
        })
        const port = (server.address as { port: number }).port
        const lost = yield* Effect.promise(() =>
          Loopback.udpRequest(port, new TextEncoder().encode("first"), "127.0.0.1", 300).then(() => "reply", () => "none")
        )
        assert.strictEqual(lost, "none")
        const reply = yield* Effect.promise(() => Loopback.udpRequest(port, new TextEncoder().encode("second")))
        assert.strictEqual(reply.toString(), "second")
        assert.strictEqual(failures.length, 1)
        assert.isTrue(Cause.hasDies(failures[0]!.cause))
        assert.match(failures[0]!.peer, /^127\.0\.0\.1:\d+$/)
      }))

    it.live("maxConnections holds: at the limit, further connections wait unread", () =>
      Effect.gen(function*() {
        const probe = concurrencyProbe("10 millis")
        const server = yield* Loopback.startServer(Transport.tcp(), Strategy.layerFiber(), probe.handler, { maxConnections: 2 })
        const target = Loopback.targetOf(server.address)
        const holders = yield* Effect.promise(() => Promise.all([Loopback.connect(target), Loopback.connect(target)]))
        holders.forEach((h) => h.write("hold"))
        yield* Effect.sleep("100 millis")
        assert.strictEqual(probe.state.active, 2)
        const waiting = Effect.runPromise(Effect.promise(() => Loopback.exchange(target, "third")))
        yield* Effect.sleep("200 millis")
        assert.strictEqual(probe.state.active, 2)
        holders[0]!.end()
        assert.strictEqual((yield* Effect.promise(() => waiting)).toString(), "third")
        assert.strictEqual(probe.state.max, 2)
        holders[1]!.destroy()
      }))

    it.live("an idle connection is closed after the idle timeout", () =>
      Effect.gen(function*() {
        const server = yield* Loopback.startServer(Transport.tcp(), Strategy.layerFiber(), EchoServer.streamHandler, {
          idleTimeout: "150 millis"
        })
        const socket = yield* Effect.promise(() => Loopback.connect(Loopback.targetOf(server.address)))
        socket.write("ping")
        assert.strictEqual((yield* Effect.promise(() => Loopback.readExactly(socket, 4))).toString(), "ping")
        yield* Effect.promise(() => Loopback.closed(socket, 5_000))
      }))

    it.live("metrics count datagrams in and reply bytes out", () =>
      Effect.gen(function*() {
        const received = Metric.withAttributes(Metrics.datagramsReceived, { transport: "udp" })
        const bytesOut = Metric.withAttributes(Metrics.bytesOut, { transport: "udp" })
        const receivedBefore = (yield* Metric.value(received)).count
        const outBefore = (yield* Metric.value(bytesOut)).count
        const server = yield* Loopback.startServer(Transport.udp(), Strategy.layerFiber(), EchoServer.datagramHandler)
        const port = (server.address as { port: number }).port
        yield* Effect.promise(() => Loopback.udpRequest(port, new TextEncoder().encode("12345")))
        yield* Effect.promise(() => Loopback.udpRequest(port, new TextEncoder().encode("678")))
        assert.strictEqual((yield* Metric.value(received)).count - receivedBefore, 2)
        assert.strictEqual((yield* Metric.value(bytesOut)).count - outBefore, 8)
      }))

    it.live("metrics count accepted connections and bytes", () =>
      Effect.gen(function*() {
        const accepted = Metric.withAttributes(Metrics.connectionsAccepted, { transport: "tcp" })
        const bytesIn = Metric.withAttributes(Metrics.bytesIn, { transport: "tcp" })
        const before = yield* Metric.value(accepted)
        const bytesBefore = yield* Metric.value(bytesIn)
        const server = yield* Loopback.startServer(Transport.tcp(), Strategy.layerFiber(), EchoServer.streamHandler)
        yield* Effect.promise(() => Loopback.exchange(Loopback.targetOf(server.address), "12345"))
        yield* Effect.promise(() => Loopback.exchange(Loopback.targetOf(server.address), "678"))
        yield* Effect.sleep("50 millis")
        assert.strictEqual((yield* Metric.value(accepted)).count - before.count, 2)
        assert.strictEqual((yield* Metric.value(bytesIn)).count - bytesBefore.count, 8)
      }))
  })
})

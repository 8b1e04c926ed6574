import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Layer } from "effect"
import type { Scope } from "effect"
import { Buffer } from "node:buffer"
import * as Strategy from "../../src/core/Strategy.ts"
import * as Transport from "../../src/core/Transport.ts"
import * as WorkerStrategy from "../../src/core/WorkerStrategy.ts"
import * as EchoServer from "../../src/servers/echo/EchoServer.ts"
import * as Handlers from "../fixtures/handlers.ts"
import * as Loopback from "../utils/loopback.ts"

const allBytes = Uint8Array.from({ length: 256 }, (_, i) => i)
const tidOf = (reply: Buffer): number => Number(/TID (\d+)/.exec(reply.toString())?.[1] ?? NaN)
const workerCount = () => process.getActiveResourcesInfo().filter((r) => r === "Worker").length

const awaitWorkers = (pool: WorkerStrategy.WorkerStrategy, ok: (ids: ReadonlyArray<number>) => boolean) =>
  Effect.gen(function*() {
    for (let i = 0; i < 500; i++) {
      const ids = yield* pool.workers
      if (ok(ids)) return ids
      yield* Effect.sleep("20 millis")
    }
    return assert.fail(`workers never reached the expected state: ${JSON.stringify(yield* pool.workers)}`)
  })

/** Runs `body` with a worker strategy, then checks that no worker is left once the scope closed. */
const withWorkers = <A, E>(
  options: WorkerStrategy.Options,
  body: (pool: WorkerStrategy.WorkerStrategy, layer: Layer.Layer<Strategy.Strategy>) => Effect.Effect<A, E, Scope.Scope>
) =>
  Effect.gen(function*() {
    const pool = WorkerStrategy.make(options)
    const before = workerCount()
    const result = yield* Effect.scoped(body(pool, Layer.succeed(Strategy.Strategy, pool)))
    assert.deepStrictEqual(yield* pool.workers, [], "workers left after the scope closed")
    assert.strictEqual(workerCount(), before, "worker resources left after the scope closed")
    return result
  })

describe("WorkerStrategy", () => {
  for (const make of [() => Transport.tcp(), () => Transport.unix({ path: Loopback.tempSocketPath("worker") })]) {
    const name = make()._tag
    describe(`over ${name}`, () => {
      it.live("echoes small, binary, 8 MiB and half-closed payloads", () =>
        withWorkers({ size: 2 }, (_pool, layer) =>
          Effect.gen(function*() {
            const server = yield* Loopback.startServer(make(), layer, EchoServer.streamHandler)
            const target = Loopback.targetOf(server.address)
            const small = yield* Effect.promise(() => Loopback.exchange(target, "hello, worker"))
            assert.strictEqual(small.toString(), "hello, worker")
            const binary = yield* Effect.promise(() => Loopback.exchange(target, allBytes))
            assert.deepStrictEqual(new Uint8Array(binary), allBytes)
            const big = Loopback.bytes(8 * 1024 * 1024, 7)
            const bigReply = yield* Effect.promise(() => Loopback.exchange(target, big, 60_000))
            assert.isTrue(Buffer.from(big).equals(bigReply))
          })))

      it.live("serves 50 concurrent clients from more than one thread", () =>
        withWorkers({ size: 3 }, (_pool, layer) =>
          Effect.gen(function*() {
            const server = yield* Loopback.startServer(make(), layer, Handlers.whoamiEcho)
            const target = Loopback.targetOf(server.address)
            const payloads = Array.from({ length: 50 }, (_, i) => Loopback.bytes(10_000 + i * 997, i + 1))
            const replies = yield* Effect.promise(() => Promise.all(payloads.map((p) => Loopback.exchange(target, p))))
            const tids = new Set<number>()
            replies.forEach((reply, i) => {
              assert.match(reply.toString("latin1", 0, 40), new RegExp(`^PID ${process.pid} TID \\d+\\n`))
              tids.add(tidOf(reply))
              assert.isTrue(Buffer.from(payloads[i]!).equals(reply.subarray(reply.indexOf(10) + 1)), `client ${i}`)
            })
            assert.isFalse(tids.has(0))
            assert.isAbove(tids.size, 1)
          })))
    })
  }

  it.live("datagrams are served by more than one thread", () =>
    withWorkers({ size: 2 }, (_pool, layer) =>
      Effect.gen(function*() {
        const server = yield* Loopback.startServer(Transport.udp(), layer, Handlers.whoamiDatagram)
        const port = (server.address as { port: number }).port
        const replies = yield* Effect.promise(() =>
          Promise.all(Array.from({ length: 20 }, (_, i) => Loopback.udpRequest(port, new TextEncoder().encode(`d${i}`))))
        )
        const tids = new Set<number>()
        replies.forEach((reply, i) => {
          assert.match(reply.toString(), new RegExp(`^PID ${process.pid} TID \\d+ d${i}$`))
          tids.add(tidOf(reply))
        })
        assert.isAbove(tids.size, 1)
        const echo = yield* Loopback.startServer(Transport.udp(), layer, EchoServer.datagramHandler)
        const echoed = yield* Effect.promise(() => Loopback.udpRequest((echo.address as { port: number }).port, allBytes))
        assert.deepStrictEqual(new Uint8Array(echoed), allBytes)
      })))

  it.live("Unix datagrams are served by more than one thread", () =>
    withWorkers({ size: 2 }, (_pool, layer) =>
      Effect.gen(function*() {
        const path = Loopback.tempSocketPath("worker-dgram")
        yield* Loopback.startServer(Transport.unixDatagram({ path }), layer, Handlers.whoamiDatagram)
        const tids = new Set<number>()
        // 8 at once: Linux queues at most net.unix.max_dgram_qlen (10) datagrams on a Unix socket.
        const replies = yield* Effect.promise(() =>
          Promise.all(Array.from({ length: 8 }, (_, i) => Loopback.unixDatagramRequest(path, new TextEncoder().encode(`u${i}`))))
        )
        replies.forEach((reply, i) => {
          assert.match(reply.toString(), new RegExp(`^PID ${process.pid} TID \\d+ u${i}$`))
          tids.add(tidOf(reply))
        })
        assert.isFalse(tids.has(0))
        assert.isAbove(tids.size, 1)
        const echoPath = Loopback.tempSocketPath("worker-dgram-echo")
        yield* Loopback.startServer(Transport.unixDatagram({ path: echoPath }), layer, EchoServer.datagramHandler)
        const echoed = yield* Effect.promise(() => Loopback.unixDatagramRequest(echoPath, allBytes))
        assert.deepStrictEqual(new Uint8Array(echoed), allBytes)
      })))

  it.live("a CPU-bound handler does not stall other connections", () =>
    withWorkers({ size: 2 }, (_pool, layer) =>
      Effect.gen(function*() {
        const cpu = yield* Loopback.startServer(Transport.tcp(), layer, Handlers.cpuBound)
        const echo = yield* Loopback.startServer(Transport.tcp(), layer, EchoServer.streamHandler)
        const order: Array<string> = []
        const slow = Loopback.exchange(Loopback.targetOf(cpu.address), "work").then((r) => order.push("cpu") && r)
        yield* Effect.sleep("200 millis")
        const fast = yield* Effect.promise(() => Loopback.exchange(Loopback.targetOf(echo.address), "quick"))
        order.push("echo")
        assert.strictEqual(fast.toString(), "quick")
        const slowReply = yield* Effect.promise(() => slow)
        assert.match(slowReply.toString(), /^cpu done by PID \d+ TID \d+/)
        assert.deepStrictEqual(order, ["echo", "cpu"])
      })))

  it.live("a throwing handler or a dying worker costs only its connection; the pool is refilled", () =>
    withWorkers({ size: 2 }, (pool, layer) =>
      Effect.gen(function*() {
        const failures: Array<string> = []
        const onError = (failure: { readonly cause: unknown }) => Effect.sync(() => failures.push(String(failure.cause)))
        const throwing = yield* Loopback.startServer(Transport.tcp(), layer, Handlers.throwing, { onError })
        const dying = yield* Loopback.startServer(Transport.tcp(), layer, Handlers.exitProcess, { onError })
        const echo = yield* Loopback.startServer(Transport.tcp(), layer, EchoServer.streamHandler)
        const thrown = yield* Effect.promise(() => Loopback.exchange(Loopback.targetOf(throwing.address), "x").catch(() => Buffer.alloc(0)))
        assert.strictEqual(thrown.length, 0)
        yield* awaitWorkers(pool, (ids) => ids.length === 6)
        const before = yield* pool.workers
        const died = yield* Effect.promise(() => Loopback.exchange(Loopback.targetOf(dying.address), "x").catch(() => Buffer.alloc(0)))
        assert.strictEqual(died.length, 0)
        yield* awaitWorkers(pool, (ids) => ids.length === 6 && ids.some((id) => !before.includes(id)))
        for (let i = 0; i < 5; i++) {
          const reply = yield* Effect.promise(() => Loopback.exchange(Loopback.targetOf(echo.address), `still ${i}`))
          assert.strictEqual(reply.toString(), `still ${i}`)
        }
        assert.isTrue(failures.some((f) => f.includes("handler blew up")), failures.join("\n"))
        assert.isTrue(failures.some((f) => f.includes("exited")), failures.join("\n"))
      })))

  it.live("interrupting the server mid-connection terminates every worker", () =>
    withWorkers({ size: 2 }, (pool, layer) =>
      Effect.gen(function*() {
        const server = yield* Loopback.startServer(Transport.tcp(), layer, Handlers.whoamiEcho, { shutdownMode: "immediate" })
        const socket = yield* Effect.promise(() => Loopback.connect(Loopback.targetOf(server.address)))
        const hello = yield* Effect.promise(() => Loopback.readExactly(socket, 5))
        assert.match(hello.toString(), /^PID \d+/)
        assert.strictEqual((yield* pool.workers).length, 2)
      })))

  it.live("the server's idle timeout applies to connections served by a worker", () =>
    withWorkers({ size: 1 }, (_pool, layer) =>
      Effect.gen(function*() {
        const server = yield* Loopback.startServer(Transport.tcp(), layer, EchoServer.streamHandler, {
          idleTimeout: "200 millis"
        })
        const socket = yield* Effect.promise(() => Loopback.connect(Loopback.targetOf(server.address)))
        socket.write("ping")
        assert.strictEqual((yield* Effect.promise(() => Loopback.readExactly(socket, 4))).toString(), "ping")
        yield* Effect.promise(() => Loopback.closed(socket, 10_000))
      })))

  it.live("handlers in worker threads see a graceful shutdown begin through Server.Shutdown", () =>
    withWorkers({ size: 2 }, (_pool, layer) =>
      Effect.gen(function*() {
        const server = yield* Loopback.startServer(Transport.tcp(), layer, Handlers.shutdownAware)
        const socket = yield* Effect.promise(() => Loopback.connect(Loopback.targetOf(server.address)))
        const hello = yield* Effect.promise(() => Loopback.readExactly(socket, "ready false\n".length))
        assert.strictEqual(hello.toString(), "ready false\n")
        // The drain waits for this handler, which ends only once it has seen the shutdown begin.
        const stopping = yield* Effect.forkChild(server.shutdown, { startImmediately: true })
        const seen = yield* Effect.promise(() => Loopback.readExactly(socket, "shutdown seen\n".length))
        assert.strictEqual(seen.toString(), "shutdown seen\n")
        yield* Fiber.join(stopping)
      })))

  it.live("a handler without a reference is refused with a StrategyError", () =>
    Effect.gen(function*() {
      const error = yield* WorkerStrategy.make({ size: 1 }).run(Effect.never as never, Handlers.unreferenced).pipe(Effect.flip)
      assert.instanceOf(error, Strategy.StrategyError)
      assert.include(error.message, "Handler.stream(fn, { module: import.meta.url, export:")
    }))
})

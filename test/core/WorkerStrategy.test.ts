import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import type { Scope } from "effect"
import { Buffer } from "node:buffer"
import * as Strategy from "../../src/core/Strategy.ts"
import * as Transport from "../../src/core/Transport.ts"
import * as WorkerStrategy from "../../src/core/WorkerStrategy.ts"
import * as EchoServer from "../../src/servers/echo/EchoServer.ts"
import * as Handlers from "../fixtures/handlers.ts"
import * as Loopback from "../utils/loopback.ts"
import * as PoolStrategyCases from "../utils/poolStrategyCases.ts"

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
  PoolStrategyCases.registerPoolStrategyCases({
    tag: "worker",
    member: "thread",
    withPool: (size, body) => withWorkers({ size }, (_pool, layer) => body(layer)),
    unstarted: () => WorkerStrategy.make({ size: 1 }),
    whoami: `PID ${process.pid} TID \\d+`,
    memberOf: tidOf,
    parentId: 0,
    idAnnotation: "threadId",
    names: {
      stream: (transport) => `over ${transport}`,
      datagrams: "datagrams are served by more than one thread",
      unixDatagrams: "Unix datagrams are served by more than one thread",
      idleTimeout: "the server's idle timeout applies to connections served by a worker",
      shutdown: "handlers in worker threads see a graceful shutdown begin through Server.Shutdown"
    }
  })

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

  it.live("4 x 16 MiB concurrent echoes through the worker pool arrive byte-exact", () =>
    withWorkers({ size: 2 }, (_pool, layer) =>
      Effect.gen(function*() {
        const server = yield* Loopback.startServer(Transport.tcp(), layer, EchoServer.streamHandler)
        const target = Loopback.targetOf(server.address)
        const payloads = Array.from({ length: 4 }, (_, i) => Loopback.bytes(16 * 1024 * 1024, 11 + i))
        const replies = yield* Effect.promise(() => Promise.all(payloads.map((p) => Loopback.exchange(target, p, 120_000))))
        replies.forEach((reply, i) => assert.isTrue(Buffer.from(payloads[i]!).equals(reply), `echo ${i}`))
      })), 180_000)

  it.live("a Unix-stream connection, which Node cannot move to a thread, is relayed: the fast paths fall back", () =>
    withWorkers({ size: 1 }, (_pool, layer) =>
      Effect.gen(function*() {
        const path = Loopback.tempSocketPath("worker-relay")
        const server = yield* Loopback.startServer(Transport.unix({ path }), layer, Handlers.fastPathReport)
        const report = yield* PoolStrategyCases.fastPathReport(server.address)
        assert.isFalse(report.tryWriteAll)
        // Every batch is the worker's own copy: lent, but never reused.
        assert.strictEqual(report.buffers, report.reads)
      })))

  it.live("a connection from a listener that attaches no socket is relayed by the main thread", () =>
    withWorkers({ size: 1 }, (_pool, layer) =>
      Effect.gen(function*() {
        const listener = Loopback.withoutSockets(Loopback.listenerLayer(Transport.tcp()))
        const server = yield* Loopback.startServerOn(listener, layer, Handlers.whoamiEcho)
        const reply = yield* Effect.promise(() => Loopback.exchange(Loopback.targetOf(server.address), "relayed"))
        assert.match(reply.toString(), new RegExp(`^PID ${process.pid} TID \\d+\\nrelayed$`))
        assert.notStrictEqual(tidOf(reply), 0)
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
})

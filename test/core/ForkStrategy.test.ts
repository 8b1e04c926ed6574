import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Layer } from "effect"
import { Buffer } from "node:buffer"
import * as ForkStrategy from "../../src/core/ForkStrategy.ts"
import * as Strategy from "../../src/core/Strategy.ts"
import * as Transport from "../../src/core/Transport.ts"
import * as EchoServer from "../../src/servers/echo/EchoServer.ts"
import * as Handlers from "../fixtures/handlers.ts"
import * as Loopback from "../utils/loopback.ts"

const allBytes = Uint8Array.from({ length: 256 }, (_, i) => i)

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== "ESRCH"
  }
}

const pidOf = (reply: Buffer): number => Number(/^PID (\d+)/.exec(reply.toString())?.[1] ?? NaN)

/** Waits (bounded) until the strategy's live children satisfy `ok`; fails the test otherwise. */
const awaitChildren = (fork: ForkStrategy.ForkStrategy, ok: (pids: ReadonlyArray<number>) => boolean) =>
  Effect.gen(function*() {
    for (let i = 0; i < 500; i++) {
      const pids = yield* fork.children
      if (ok(pids)) return pids
      yield* Effect.sleep("20 millis")
    }
    return assert.fail(`children never reached the expected state: ${JSON.stringify(yield* fork.children)}`)
  })

/** Runs `body` with a fork strategy instance, then checks that every child it ever had is gone. */
const withFork = <A, E>(
  options: ForkStrategy.Options,
  body: (fork: ForkStrategy.ForkStrategy, layer: Layer.Layer<Strategy.Strategy>) => Effect.Effect<A, E, import("effect").Scope.Scope>
) =>
  Effect.gen(function*() {
    const fork = ForkStrategy.make(options)
    const seen = new Set<number>()
    const result = yield* Effect.scoped(Effect.gen(function*() {
      const value = yield* body(fork, Layer.succeed(Strategy.Strategy, fork))
      for (const pid of yield* fork.children) seen.add(pid)
      return value
    }))
    assert.deepStrictEqual(yield* fork.children, [], "children left after the scope closed")
    for (const pid of seen) assert.isFalse(isAlive(pid), `child ${pid} still running`)
    return result
  })

describe("ForkStrategy", () => {
  for (const make of [() => Transport.tcp(), () => Transport.unix({ path: Loopback.tempSocketPath("fork") })]) {
    const name = make()._tag
    describe(`pool over ${name}`, () => {
      it.live("echoes small, binary, 8 MiB and half-closed payloads", () =>
        withFork({ size: 2 }, (_fork, layer) =>
          Effect.gen(function*() {
            const server = yield* Loopback.startServer(make(), layer, EchoServer.streamHandler)
            const target = Loopback.targetOf(server.address)
            const small = yield* Effect.promise(() => Loopback.exchange(target, "hello, fork"))
            assert.strictEqual(small.toString(), "hello, fork")
            const binary = yield* Effect.promise(() => Loopback.exchange(target, allBytes))
            assert.deepStrictEqual(new Uint8Array(binary), allBytes)
            const big = Loopback.bytes(8 * 1024 * 1024, 7)
            const bigReply = yield* Effect.promise(() => Loopback.exchange(target, big, 60_000))
            assert.isTrue(Buffer.from(big).equals(bigReply))
          })))

      it.live("serves 50 concurrent clients from more than one child", () =>
        withFork({ size: 3 }, (_fork, layer) =>
          Effect.gen(function*() {
            const server = yield* Loopback.startServer(make(), layer, Handlers.whoamiEcho)
            const target = Loopback.targetOf(server.address)
            const payloads = Array.from({ length: 50 }, (_, i) => Loopback.bytes(10_000 + i * 997, i + 1))
            const replies = yield* Effect.promise(() => Promise.all(payloads.map((p) => Loopback.exchange(target, p))))
            const pids = new Set<number>()
            replies.forEach((reply, i) => {
              const newline = reply.indexOf(10)
              pids.add(pidOf(reply))
              assert.isTrue(Buffer.from(payloads[i]!).equals(reply.subarray(newline + 1)), `client ${i}`)
            })
            assert.isFalse(pids.has(process.pid))
            assert.isAbove(pids.size, 1)
          })))
    })
  }

  it.live("a child that exits mid-connection costs only that connection; the pool is refilled", () =>
    withFork({ size: 2 }, (fork, layer) =>
      Effect.gen(function*() {
        const failures: Array<string> = []
        const crashServer = yield* Loopback.startServer(Transport.tcp(), layer, Handlers.exitProcess, {
          onError: (failure) => Effect.sync(() => failures.push(String(failure.cause)))
        })
        const before = yield* awaitChildren(fork, (pids) => pids.length === 2)
        const crashed = yield* Effect.promise(() => Loopback.exchange(Loopback.targetOf(crashServer.address), "die").catch(() => Buffer.alloc(0)))
        assert.strictEqual(crashed.length, 0)
        // The pool is refilled with a new child.
        yield* awaitChildren(fork, (pids) => pids.length === 2 && pids.some((pid) => !before.includes(pid)))
        assert.isTrue(failures.some((f) => f.includes("exited")), failures.join("\n"))
      })))

  it.live("the server keeps serving after a child crash", () =>
    withFork({ size: 2 }, (fork, layer) =>
      Effect.gen(function*() {
        const server = yield* Loopback.startServer(Transport.tcp(), layer, EchoServer.streamHandler)
        const target = Loopback.targetOf(server.address)
        // One round trip: the pool has started (every child is ready) before we kill one.
        assert.strictEqual((yield* Effect.promise(() => Loopback.exchange(target, "warm up"))).toString(), "warm up")
        const [victim] = yield* awaitChildren(fork, (pids) => pids.length === 2)
        process.kill(victim!, "SIGKILL")
        yield* awaitChildren(fork, (pids) => pids.length === 2 && !pids.includes(victim!))
        for (let i = 0; i < 10; i++) {
          const reply = yield* Effect.promise(() => Loopback.exchange(target, `after crash ${i}`))
          assert.strictEqual(reply.toString(), `after crash ${i}`)
        }
      })))

  it.live("echoes datagrams from more than one child", () =>
    withFork({ size: 2 }, (_fork, layer) =>
      Effect.gen(function*() {
        const server = yield* Loopback.startServer(Transport.udp(), layer, Handlers.whoamiDatagram)
        const port = (server.address as { port: number }).port
        const replies = yield* Effect.promise(() =>
          Promise.all(Array.from({ length: 20 }, (_, i) => Loopback.udpRequest(port, new TextEncoder().encode(`d${i}`))))
        )
        const pids = new Set<number>()
        replies.forEach((reply, i) => {
          assert.match(reply.toString(), new RegExp(`^PID \\d+ TID 0 d${i}$`))
          pids.add(pidOf(reply))
        })
        assert.isAbove(pids.size, 1)
        const echo = yield* Loopback.startServer(Transport.udp(), layer, EchoServer.datagramHandler)
        const echoed = yield* Effect.promise(() => Loopback.udpRequest((echo.address as { port: number }).port, allBytes))
        assert.deepStrictEqual(new Uint8Array(echoed), allBytes)
      })))

  it.live("echoes Unix datagrams from more than one child", () =>
    withFork({ size: 2 }, (_fork, layer) =>
      Effect.gen(function*() {
        const path = Loopback.tempSocketPath("fork-dgram")
        yield* Loopback.startServer(Transport.unixDatagram({ path }), layer, Handlers.whoamiDatagram)
        // 8 at once: Linux queues at most net.unix.max_dgram_qlen (10) datagrams on a Unix socket.
        const replies = yield* Effect.promise(() =>
          Promise.all(Array.from({ length: 8 }, (_, i) => Loopback.unixDatagramRequest(path, new TextEncoder().encode(`u${i}`))))
        )
        const pids = new Set<number>()
        replies.forEach((reply, i) => {
          assert.match(reply.toString(), new RegExp(`^PID \\d+ TID 0 u${i}$`))
          pids.add(pidOf(reply))
        })
        assert.isFalse(pids.has(process.pid))
        assert.isAbove(pids.size, 1)
        const echoPath = Loopback.tempSocketPath("fork-dgram-echo")
        yield* Loopback.startServer(Transport.unixDatagram({ path: echoPath }), layer, EchoServer.datagramHandler)
        const echoed = yield* Effect.promise(() => Loopback.unixDatagramRequest(echoPath, allBytes))
        assert.deepStrictEqual(new Uint8Array(echoed), allBytes)
      })))

  it.live("per-connection mode: after 20 sequential connections every child is reaped (no zombie)", () =>
    withFork({ mode: "perConnection", maxChildren: 4 }, (fork, layer) =>
      Effect.gen(function*() {
        const server = yield* Loopback.startServer(Transport.tcp(), layer, Handlers.whoamiEcho)
        const target = Loopback.targetOf(server.address)
        const pids: Array<number> = []
        for (let i = 0; i < 20; i++) {
          const reply = yield* Effect.promise(() => Loopback.exchange(target, `connection ${i}`))
          assert.match(reply.toString(), new RegExp(`^PID \\d+ TID 0\\nconnection ${i}$`))
          pids.push(pidOf(reply))
        }
        assert.strictEqual(new Set(pids).size, 20, "one child per connection")
        // While the server still runs: every child has exited and been waited for. A zombie would
        // still answer signal 0, so `isAlive` false means reaped.
        yield* awaitChildren(fork, (live) => live.length === 0)
        for (const pid of pids) assert.isFalse(isAlive(pid), `child ${pid} not reaped`)
      })))

  it.live("per-connection mode: a fresh child per connection, at most maxChildren at once", () =>
    withFork({ mode: "perConnection", maxChildren: 2 }, (fork, layer) =>
      Effect.gen(function*() {
        const server = yield* Loopback.startServer(Transport.tcp(), layer, Handlers.whoamiEcho)
        const target = Loopback.targetOf(server.address)
        const first = yield* Effect.promise(() => Loopback.connect(target))
        const second = yield* Effect.promise(() => Loopback.connect(target))
        const a = yield* Effect.promise(() => Loopback.readExactly(first, 5))
        const b = yield* Effect.promise(() => Loopback.readExactly(second, 5))
        const third = yield* Effect.promise(() => Loopback.connect(target))
        const waiting = Loopback.readExactly(third, 5, 20_000)
        // While two children serve, the third connection is accepted but not served.
        yield* Effect.sleep("1 second")
        assert.isAtMost((yield* fork.children).length, 2)
        let thirdServed = false
        void waiting.then(() => (thirdServed = true), () => {})
        assert.isFalse(thirdServed)
        first.end()
        const c = yield* Effect.promise(() => waiting)
        second.end()
        third.end()
        const pids = new Set([a, b, c].map(pidOf))
        assert.strictEqual(pids.size, 3)
        const reply = yield* Effect.promise(() => Loopback.exchange(target, "fresh"))
        assert.match(reply.toString(), /^PID \d+ TID 0\nfresh$/)
        assert.isFalse(pids.has(pidOf(reply)))
      })))

  it.live("interrupting the server mid-connection kills every child (SIGTERM, then SIGKILL) and reaps it", () =>
    withFork({ size: 2, killGrace: "500 millis" }, (fork, layer) =>
      Effect.gen(function*() {
        const server = yield* Loopback.startServer(Transport.tcp(), layer, Handlers.whoamiEcho, { shutdownMode: "immediate" })
        const socket = yield* Effect.promise(() => Loopback.connect(Loopback.targetOf(server.address)))
        const hello = yield* Effect.promise(() => Loopback.readExactly(socket, 5))
        assert.match(hello.toString(), /^PID \d+/)
        assert.strictEqual((yield* fork.children).length, 2)
        // The connection stays open: closing the scope must not wait for it, and must leave no child.
      })))

  it.live("the server's idle timeout applies in the child that owns the connection", () =>
    withFork({ mode: "pool", size: 1 }, (_fork, layer) =>
      Effect.gen(function*() {
        const server = yield* Loopback.startServer(Transport.tcp(), layer, EchoServer.streamHandler, {
          idleTimeout: "200 millis"
        })
        const socket = yield* Effect.promise(() => Loopback.connect(Loopback.targetOf(server.address)))
        socket.write("ping")
        assert.strictEqual((yield* Effect.promise(() => Loopback.readExactly(socket, 4))).toString(), "ping")
        yield* Effect.promise(() => Loopback.closed(socket, 10_000))
      })))

  it.live("handlers in fork children see a graceful shutdown begin through Server.Shutdown", () =>
    withFork({ size: 2 }, (_pool, layer) =>
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
      const fork = ForkStrategy.make({ size: 1 })
      const error = yield* fork.run(Effect.never as never, Handlers.unreferenced).pipe(Effect.flip)
      assert.instanceOf(error, Strategy.StrategyError)
      assert.include(error.message, "Handler.stream(fn, { module: import.meta.url, export:")
    }))
})

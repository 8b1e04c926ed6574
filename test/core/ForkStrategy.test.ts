import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { Buffer } from "node:buffer"
import * as ForkStrategy from "../../src/core/ForkStrategy.ts"
import * as Strategy from "../../src/core/Strategy.ts"
import * as Transport from "../../src/core/Transport.ts"
import * as EchoServer from "../../src/servers/echo/EchoServer.ts"
import * as Handlers from "../fixtures/handlers.ts"
import * as Loopback from "../utils/loopback.ts"
import * as PoolStrategyCases from "../utils/poolStrategyCases.ts"

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
  PoolStrategyCases.registerPoolStrategyCases({
    tag: "fork",
    member: "child",
    withPool: (size, body) => withFork({ size }, (_fork, layer) => body(layer)),
    unstarted: () => ForkStrategy.make({ size: 1 }),
    whoami: "PID \\d+ TID 0",
    memberOf: pidOf,
    parentId: process.pid,
    idAnnotation: "pid",
    names: {
      stream: (transport) => `pool over ${transport}`,
      datagrams: "echoes datagrams from more than one child",
      unixDatagrams: "echoes Unix datagrams from more than one child",
      idleTimeout: "the server's idle timeout applies in the child that owns the connection",
      shutdown: "handlers in fork children see a graceful shutdown begin through Server.Shutdown"
    }
  })

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

  it.live("a connection from a listener that attaches no socket is closed unserved; the children are unharmed", () =>
    withFork({ size: 1 }, (fork, layer) =>
      Effect.gen(function*() {
        const listener = Loopback.withoutSockets(Loopback.listenerLayer(Transport.tcp()))
        const server = yield* Loopback.startServerOn(listener, layer, Handlers.whoamiEcho)
        const [child] = yield* awaitChildren(fork, (pids) => pids.length === 1)
        const socket = yield* Effect.promise(() => Loopback.connect(Loopback.targetOf(server.address)))
        assert.strictEqual((yield* Effect.promise(() => Loopback.readUntilEnd(socket))).length, 0)
        assert.deepStrictEqual(yield* fork.children, [child])
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
})

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

/** A client that streams a payload through `whoamiEcho` in two halves and collects what comes back. */
const streamingClient = (target: Loopback.Target, payload: Uint8Array) =>
  Effect.promise(async () => {
    const socket = await Loopback.connect(target)
    const chunks: Array<Buffer> = []
    let size = 0
    const progress = new Set<() => void>()
    socket.on("data", (chunk: Buffer) => {
      chunks.push(chunk)
      size += chunk.length
      for (const check of progress) check()
    })
    const ended = new Promise<"end" | "error" | "timeout">((resolve) => {
      const timer = setTimeout(() => resolve("timeout"), 30_000)
      const settle = (how: "end" | "error") => {
        clearTimeout(timer)
        resolve(how)
      }
      socket.once("end", () => settle("end"))
      socket.once("error", () => settle("error"))
      socket.once("close", () => settle("end"))
    })
    const half = payload.length >> 1
    socket.write(payload.subarray(0, half))
    return {
      /** Resolves with the serving child's pid once `bytes` of echo (after the pid line) have come back. */
      echoed: (bytes: number, timeoutMs = 20_000) =>
        new Promise<number>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`only ${size} bytes back`)), timeoutMs)
          const check = () => {
            const all = Buffer.concat(chunks)
            const line = all.indexOf(10)
            if (line < 0 || all.length - line - 1 < bytes) return
            clearTimeout(timer)
            progress.delete(check)
            resolve(pidOf(all))
          }
          progress.add(check)
          check()
        }),
      /** Sends the rest, half-closes, and resolves with how the connection ended and the echo received. */
      finish: async () => {
        socket.end(payload.subarray(half))
        const how = await ended
        socket.destroy()
        const all = Buffer.concat(chunks)
        return { how, echo: all.subarray(all.indexOf(10) + 1) }
      }
    }
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

  it.live("kill -9 of a child mid-transfer ends only its connections; the others finish byte-exact; the pool refills", () =>
    withFork({ size: 3 }, (fork, layer) =>
      Effect.gen(function*() {
        const server = yield* Loopback.startServer(Transport.tcp(), layer, Handlers.whoamiEcho)
        const target = Loopback.targetOf(server.address)
        const payloads = Array.from({ length: 3 }, (_, i) => Loopback.bytes(4 * 1024 * 1024, i + 11))
        const clients = yield* Effect.forEach(payloads, (payload) => streamingClient(target, payload))
        // every client is mid-transfer: part of its first half has come back, its second half is not sent yet
        const pids = yield* Effect.promise(() => Promise.all(clients.map((client) => client.echoed(64 * 1024))))
        const victim = pids[0]!
        assert.isTrue(pids.some((pid) => pid !== victim), `all clients on one child: ${pids.join(", ")}`)
        process.kill(victim, "SIGKILL")
        const outcomes = yield* Effect.promise(() => Promise.all(clients.map((client) => client.finish())))
        outcomes.forEach((outcome, i) => {
          if (pids[i] === victim) {
            assert.notStrictEqual(outcome.how, "timeout", `client ${i} on the killed child was never cut off`)
            assert.isBelow(outcome.echo.length, payloads[i]!.length, `client ${i} on the killed child`)
          } else {
            assert.strictEqual(outcome.how, "end", `client ${i}`)
            assert.isTrue(Buffer.from(payloads[i]!).equals(outcome.echo), `client ${i}: echo differs`)
          }
        })
        yield* awaitChildren(fork, (live) => live.length === 3 && !live.includes(victim))
        const reply = yield* Effect.promise(() => Loopback.exchange(target, "after the kill"))
        assert.match(reply.toString(), /^PID \d+ TID 0\nafter the kill$/)
        assert.notStrictEqual(pidOf(reply), victim)
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

/**
 * The test cases the fork and worker strategies share: stream echo over TCP and Unix, 50 concurrent
 * clients spread over the pool, the member's own socket (fast paths), a member that dies next to a
 * connection that goes on, log and stderr forwarding, UDP and Unix datagrams (and a reply that fails), the idle timeout, graceful shutdown seen by a
 * handler, and refusing a handler without a reference. Each strategy's test file registers them
 * once, with its own pool, its own way of naming the member that served a reply, and its own names.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Logger, References } from "effect"
import type { Layer, Scope } from "effect"
import type { NetAddress } from "effect/net"
import { Buffer } from "node:buffer"
import type * as Net from "node:net"
import * as Strategy from "../../src/core/Strategy.ts"
import * as Transport from "../../src/core/Transport.ts"
import * as EchoServer from "../../src/servers/echo/EchoServer.ts"
import * as Handlers from "../fixtures/handlers.ts"
import * as Loopback from "./loopback.ts"

/** Every byte value once. */
export const allBytes = Uint8Array.from({ length: 256 }, (_, i) => i)

const encode = (text: string): Uint8Array => new TextEncoder().encode(text)

/** How one pooled strategy is exercised by the shared cases. */
export interface PoolStrategy {
  /** A word for temp socket names and the small echo payload: `fork`, `worker`. */
  readonly tag: string
  /** What serves a connection, in test names: `child`, `thread`. */
  readonly member: string
  /** Runs `body` with a fresh pool of `size` members, then checks that the pool left nothing behind. */
  readonly withPool: <A, E>(
    size: number,
    body: (layer: Layer.Layer<Strategy.Strategy>) => Effect.Effect<A, E, Scope.Scope>
  ) => Effect.Effect<A, E>
  /** A pool of one that is never started, for the refusal case. */
  readonly unstarted: () => Strategy.Strategy["Service"]
  /** The `PID … TID …` part a `whoami` reply must start with, as a regular expression source. */
  readonly whoami: string
  /** The member that served a `whoami` reply: a child's pid, a worker's thread id. */
  readonly memberOf: (reply: Buffer) => number
  /** The member id that would mean the parent thread served the reply itself. */
  readonly parentId: number
  /** The log annotation that names the member: `pid`, `threadId`. */
  readonly idAnnotation: string
  /** Names of the cases whose wording differs per strategy. */
  readonly names: {
    readonly stream: (transport: string) => string
    readonly datagrams: string
    readonly unixDatagrams: string
    readonly idleTimeout: string
    readonly shutdown: string
  }
}

/** Talks to a `Handlers.fastPathReport` server: waits for `ready`, sends its bytes, parses the report. */
export const fastPathReport = (address: NetAddress.SocketAddress) =>
  Effect.gen(function*() {
    const socket = yield* Effect.promise(() => Loopback.connect(Loopback.targetOf(address)))
    assert.strictEqual((yield* Effect.promise(() => Loopback.readExactly(socket, 6))).toString(), "ready\n")
    const reply = Loopback.readUntilEnd(socket)
    socket.write(Loopback.bytes(Handlers.fastPathBytes, 3))
    const match = /^tryWriteAll (true|false) reads (\d+) buffers (\d+)\n$/.exec((yield* Effect.promise(() => reply)).toString())
    assert.isNotNull(match)
    return { tryWriteAll: match![1] === "true", reads: Number(match![2]), buffers: Number(match![3]) }
  })

/** Registers the shared `it.live` cases for `pool` in the current `describe`. */
export const registerPoolStrategyCases = (pool: PoolStrategy): void => {
  for (const make of [() => Transport.tcp(), () => Transport.unix({ path: Loopback.tempSocketPath(pool.tag) })]) {
    describe(pool.names.stream(make()._tag), () => {
      it.live("echoes small, binary, 8 MiB and half-closed payloads", () =>
        pool.withPool(2, (layer) =>
          Effect.gen(function*() {
            const server = yield* Loopback.startServer(make(), layer, EchoServer.streamHandler)
            const target = Loopback.targetOf(server.address)
            const small = yield* Effect.promise(() => Loopback.exchange(target, `hello, ${pool.tag}`))
            assert.strictEqual(small.toString(), `hello, ${pool.tag}`)
            const binary = yield* Effect.promise(() => Loopback.exchange(target, allBytes))
            assert.deepStrictEqual(new Uint8Array(binary), allBytes)
            const big = Loopback.bytes(8 * 1024 * 1024, 7)
            const bigReply = yield* Effect.promise(() => Loopback.exchange(target, big, 60_000))
            assert.isTrue(Buffer.from(big).equals(bigReply))
          })))

      it.live(`serves 50 concurrent clients from more than one ${pool.member}`, () =>
        pool.withPool(3, (layer) =>
          Effect.gen(function*() {
            const server = yield* Loopback.startServer(make(), layer, Handlers.whoamiEcho)
            const target = Loopback.targetOf(server.address)
            const payloads = Array.from({ length: 50 }, (_, i) => Loopback.bytes(10_000 + i * 997, i + 1))
            const replies = yield* Effect.promise(() => Promise.all(payloads.map((p) => Loopback.exchange(target, p))))
            const members = new Set<number>()
            replies.forEach((reply, i) => {
              assert.match(reply.toString("latin1", 0, 40), new RegExp(`^${pool.whoami}\\n`))
              members.add(pool.memberOf(reply))
              assert.isTrue(Buffer.from(payloads[i]!).equals(reply.subarray(reply.indexOf(10) + 1)), `client ${i}`)
            })
            assert.isFalse(members.has(pool.parentId))
            assert.isAbove(members.size, 1)
          })))
    })
  }

  it.live(`a connection served by a ${pool.member} is its own socket: tryWriteAll takes writes, lent reads reuse one buffer`, () =>
    pool.withPool(1, (layer) =>
      Effect.gen(function*() {
        const server = yield* Loopback.startServer(Transport.tcp(), layer, Handlers.fastPathReport)
        const report = yield* fastPathReport(server.address)
        assert.isTrue(report.tryWriteAll)
        // At most 64 KiB per read: 1 MiB took many reads, all of them into the same buffer once the first read had
        // filled the small buffer a connection starts with (kept small while it idles).
        assert.isAtLeast(report.reads, 16)
        assert.strictEqual(report.buffers, 2)
      })))

  it.live(`a ${pool.member} that dies mid-connection costs only its own connections: one on another ${pool.member} goes on`, () =>
    pool.withPool(2, (layer) =>
      Effect.gen(function*() {
        const failures: Array<string> = []
        const server = yield* Loopback.startServer(Transport.tcp(), layer, Handlers.echoUntilDie, {
          onError: (failure) => Effect.sync(() => failures.push(String(failure.cause)))
        })
        const target = Loopback.targetOf(server.address)
        // Listens for the echo before sending, so that no byte arrives while nobody listens.
        const echo = (socket: Net.Socket, text: string) =>
          Effect.promise(() => {
            const echoed = Loopback.readExactly(socket, text.length)
            socket.write(text)
            return echoed
          }).pipe(Effect.map((reply) => reply.toString()))
        const survivor = yield* Effect.promise(() => Loopback.connect(target))
        assert.strictEqual(yield* echo(survivor, "before"), "before")
        // The least busy member takes the next connection: the other one.
        const victim = yield* Effect.promise(() => Loopback.connect(target))
        assert.strictEqual(yield* echo(victim, "hello"), "hello")
        const gone = Loopback.closed(victim)
        victim.write("die")
        yield* Effect.promise(() => gone)
        assert.strictEqual(yield* echo(survivor, "after"), "after")
        survivor.end()
        yield* Effect.promise(() => Loopback.closed(survivor))
        assert.strictEqual((yield* Effect.promise(() => Loopback.exchange(target, "a new one"))).toString(), "a new one")
        // The peer sees the close as the member dies; the server learns of it a moment later.
        for (let i = 0; i < 250 && failures.length === 0; i++) yield* Effect.sleep("20 millis")
        assert.strictEqual(failures.length, 1, failures.join("\n"))
        assert.include(failures[0], "exited")
      })))

  it.live(`a ${pool.member}'s log lines and stderr reach the server's log, annotated with the ${pool.member}`, () =>
    Effect.gen(function*() {
      const lines: Array<{ readonly message: string; readonly annotations: Record<string, unknown> }> = []
      const capture = Logger.make<unknown, void>((options) => {
        const parts = Array.isArray(options.message) ? options.message : [options.message]
        const annotations = { ...options.fiber.getRef(References.CurrentLogAnnotations) }
        lines.push({ message: parts.map(String).join(" "), annotations })
      })
      const seen = (text: string) => lines.find((line) => line.message.includes(text))
      yield* pool.withPool(1, (layer) =>
        Effect.gen(function*() {
          const server = yield* Loopback.startServer(Transport.tcp(), layer, Handlers.logsAndStderr)
          const reply = yield* Effect.promise(() => Loopback.exchange(Loopback.targetOf(server.address), "x"))
          assert.strictEqual(reply.toString(), "logged")
          const both = () => seen("hello from a member") !== undefined && seen("a line on stderr") !== undefined
          for (let i = 0; i < 250 && !both(); i++) {
            yield* Effect.sleep("20 millis")
          }
        })).pipe(Effect.provide(Logger.layer([capture])))
      const logged = seen("hello from a member")
      const stderr = seen("a line on stderr")
      assert.isDefined(logged, lines.map((line) => line.message).join("\n"))
      assert.strictEqual(logged!.annotations["case"], "logs")
      assert.isDefined(logged!.annotations[pool.idAnnotation])
      assert.isDefined(stderr, lines.map((line) => line.message).join("\n"))
      assert.strictEqual(stderr!.annotations["stream"], "stderr")
      assert.strictEqual(stderr!.annotations[pool.idAnnotation], logged!.annotations[pool.idAnnotation])
    }))

  it.live(pool.names.datagrams, () =>
    pool.withPool(2, (layer) =>
      Effect.gen(function*() {
        const server = yield* Loopback.startServer(Transport.udp(), layer, Handlers.whoamiDatagram)
        const port = (server.address as { port: number }).port
        const replies = yield* Effect.promise(() =>
          Promise.all(Array.from({ length: 20 }, (_, i) => Loopback.udpRequest(port, encode(`d${i}`))))
        )
        const members = new Set<number>()
        replies.forEach((reply, i) => {
          assert.match(reply.toString(), new RegExp(`^${pool.whoami} d${i}$`))
          members.add(pool.memberOf(reply))
        })
        assert.isAbove(members.size, 1)
        const echo = yield* Loopback.startServer(Transport.udp(), layer, EchoServer.datagramHandler)
        const echoPort = (echo.address as { port: number }).port
        const echoed = yield* Effect.promise(() => Loopback.udpRequest(echoPort, allBytes))
        assert.deepStrictEqual(new Uint8Array(echoed), allBytes)
      })))

  it.live(`a datagram reply the server cannot send fails in the ${pool.member}, as it would in-process`, () =>
    pool.withPool(1, (layer) =>
      Effect.gen(function*() {
        const server = yield* Loopback.startServer(Transport.udp(), layer, Handlers.oversizedReply)
        const port = (server.address as { port: number }).port
        const reply = yield* Effect.promise(() => Loopback.udpRequest(port, encode("x")))
        assert.strictEqual(reply.toString(), "too large: SendFailed")
      })))

  it.live(pool.names.unixDatagrams, () =>
    pool.withPool(2, (layer) =>
      Effect.gen(function*() {
        const path = Loopback.tempSocketPath(`${pool.tag}-dgram`)
        yield* Loopback.startServer(Transport.unixDatagram({ path }), layer, Handlers.whoamiDatagram)
        // 8 at once: Linux queues at most net.unix.max_dgram_qlen (10) datagrams on a Unix socket.
        const replies = yield* Effect.promise(() =>
          Promise.all(Array.from({ length: 8 }, (_, i) => Loopback.unixDatagramRequest(path, encode(`u${i}`))))
        )
        const members = new Set<number>()
        replies.forEach((reply, i) => {
          assert.match(reply.toString(), new RegExp(`^${pool.whoami} u${i}$`))
          members.add(pool.memberOf(reply))
        })
        assert.isFalse(members.has(pool.parentId))
        assert.isAbove(members.size, 1)
        const echoPath = Loopback.tempSocketPath(`${pool.tag}-dgram-echo`)
        yield* Loopback.startServer(Transport.unixDatagram({ path: echoPath }), layer, EchoServer.datagramHandler)
        const echoed = yield* Effect.promise(() => Loopback.unixDatagramRequest(echoPath, allBytes))
        assert.deepStrictEqual(new Uint8Array(echoed), allBytes)
      })))

  it.live(pool.names.idleTimeout, () =>
    pool.withPool(1, (layer) =>
      Effect.gen(function*() {
        const server = yield* Loopback.startServer(Transport.tcp(), layer, EchoServer.streamHandler, {
          idleTimeout: "200 millis"
        })
        const socket = yield* Effect.promise(() => Loopback.connect(Loopback.targetOf(server.address)))
        socket.write("ping")
        assert.strictEqual((yield* Effect.promise(() => Loopback.readExactly(socket, 4))).toString(), "ping")
        yield* Effect.promise(() => Loopback.closed(socket, 10_000))
      })))

  it.live(pool.names.shutdown, () =>
    pool.withPool(2, (layer) =>
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
      const error = yield* pool.unstarted().run(Effect.never as never, Handlers.unreferenced).pipe(Effect.flip)
      assert.instanceOf(error, Strategy.StrategyError)
      assert.include(error.message, "Handler.stream(fn, { module: import.meta.url, export:")
    }))
}

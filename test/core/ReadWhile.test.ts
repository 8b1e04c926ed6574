import { assert, describe, it } from "@effect/vitest"
import { Cause, Deferred, Effect, Exit, Pull } from "effect"
import { Buffer } from "node:buffer"
import * as Connection from "../../src/core/Connection.ts"
import * as Handler from "../../src/core/Handler.ts"
import * as Strategy from "../../src/core/Strategy.ts"
import * as Transport from "../../src/core/Transport.ts"
import * as WorkerStrategy from "../../src/core/WorkerStrategy.ts"
import * as EchoServer from "../../src/servers/echo/EchoServer.ts"
import * as Handlers from "../fixtures/handlers.ts"
import * as Loopback from "../utils/loopback.ts"

const lineStep = Handlers.lineLengthStep

describe("Connection.readWhile", () => {
  for (const { name, layer } of [
    { name: "in the read event", layer: () => Strategy.layerFiber() },
    { name: "in the read event of a worker that owns the socket", layer: () => WorkerStrategy.layer({ size: 1 }) }
  ]) {
    it.live(`steps through batches until the step returns a value, then the fiber gets it: ${name}`, () =>
      Effect.gen(function*() {
        const server = yield* Loopback.startServer(Transport.tcp(), layer(), Handlers.lineLength)
        const socket = yield* Effect.promise(() => Loopback.connect(Loopback.targetOf(server.address)))
        // several writes with pauses: the step sees separate reads and answers only at the newline
        for (const part of ["abc", "defg", "hi\n"]) {
          socket.write(part)
          yield* Effect.sleep("30 millis")
        }
        const reply = yield* Effect.promise(() => Loopback.readExactly(socket, 2))
        socket.destroy()
        assert.strictEqual(reply.toString(), "10")
      }), 30_000)
  }

  it.live("steps through bytes that arrived before it was called, fails with Done at end of stream", () =>
    Effect.gen(function*() {
      const outcome = yield* Deferred.make<{ first: number; second: Exit.Exit<number, Connection.ConnectionError | Cause.Done> }>()
      const handler = Handler.stream((connection) =>
        Effect.gen(function*() {
          // let the client's line and its FIN arrive first
          yield* Effect.sleep("150 millis")
          const first = yield* connection.readWhile(lineStep())
          const second = yield* Effect.exit(connection.readWhile(lineStep()))
          yield* Deferred.succeed(outcome, { first, second })
        }))
      const server = yield* Loopback.startServer(Transport.tcp(), Strategy.layerFiber(), handler)
      const socket = yield* Effect.promise(() => Loopback.connect(Loopback.targetOf(server.address)))
      socket.end("hello\n")
      const { first, second } = yield* Deferred.await(outcome).pipe(Effect.timeout("5 seconds"))
      socket.destroy()
      assert.strictEqual(first, 6)
      assert.isTrue(Exit.isFailure(second) && Cause.hasFails(second.cause))
      const error = Exit.isFailure(second) ? Cause.findErrorOption(second.cause) : undefined
      assert.isTrue(error !== undefined && error._tag === "Some" && Connection.isEndOfStream(error.value))
    }))

  it.live("a step that throws fails the handler with that defect; the server goes on", () =>
    Effect.gen(function*() {
      const failures = yield* Deferred.make<Cause.Cause<unknown>>()
      const handler = Handler.stream((connection) =>
        connection.readWhile((): number | undefined => {
          throw new Error("step broke")
        }).pipe(Effect.onError((cause) => Deferred.succeed(failures, cause)), Effect.andThen(connection.writeAll(["unreachable"]))))
      const server = yield* Loopback.startServer(Transport.tcp(), Strategy.layerFiber(), handler)
      const target = Loopback.targetOf(server.address)
      const socket = yield* Effect.promise(() => Loopback.connect(target))
      socket.write("x")
      const cause = yield* Deferred.await(failures).pipe(Effect.timeout("5 seconds"))
      socket.destroy()
      assert.isTrue(Cause.hasDies(cause))
      assert.include(String(Cause.squash(cause)), "step broke")
    }))

  it.live("readWhileLent after a plain read lends owned bytes and loses nothing", () =>
    Effect.gen(function*() {
      // The first read starts the connection on Node's own buffers, so it cannot move to reused ones later.
      const handler = Handler.stream((connection) =>
        Effect.andThen(Effect.flatMap(connection.read, connection.writeAll), EchoServer.echoConnection(connection)))
      const server = yield* Loopback.startServer(Transport.tcp(), Strategy.layerFiber(), handler)
      const payload = Loopback.bytes(4 * 1024 * 1024, 77)
      const reply = yield* Effect.promise(() => Loopback.exchange(Loopback.targetOf(server.address), payload, 30_000))
      assert.isTrue(Buffer.from(payload).equals(reply))
    }), 30_000)

  it.live("bytes a lending step hands to its fiber stay intact while other connections read", () =>
    Effect.gen(function*() {
      // Small reads of every connection go into one shared buffer: what a step returns must not be overwritten by the
      // next connection's read while the fiber still holds it.
      const handler = Handler.stream((connection) =>
        Effect.gen(function*() {
          const batch = yield* connection.readWhileLent((batch) => batch)
          yield* Effect.sleep("20 millis")
          yield* connection.writeAll(batch)
        }).pipe(Effect.forever, Pull.catchDone(() => connection.end)))
      const server = yield* Loopback.startServer(Transport.tcp(), Strategy.layerFiber(), handler)
      const target = Loopback.targetOf(server.address)
      const clients = 8
      const rounds = 10
      const replies = yield* Effect.forEach(
        Array.from({ length: clients }, (_, client) => client),
        (client) =>
          Effect.promise(async () => {
            const socket = await Loopback.connect(target)
            const seen: Array<string> = []
            for (let round = 0; round < rounds; round++) {
              const message = `client ${client} round ${round};`
              socket.write(message)
              seen.push((await Loopback.readExactly(socket, message.length)).toString())
            }
            socket.destroy()
            return seen
          }),
        { concurrency: "unbounded" }
      )
      replies.forEach((seen, client) =>
        assert.deepStrictEqual(seen, Array.from({ length: rounds }, (_, round) => `client ${client} round ${round};`)))
    }), 30_000)

  it.live("an interrupted readWhile leaves later bytes to the next read", () =>
    Effect.gen(function*() {
      const handler = Handler.stream((connection) =>
        Effect.gen(function*() {
          // nothing arrives in time: the wait is interrupted while parked
          const timedOut = yield* Effect.exit(connection.readWhile(lineStep()).pipe(Effect.timeout("100 millis")))
          assert.isTrue(Exit.isFailure(timedOut))
          yield* connection.writeAll(["ready"])
          const batch = yield* connection.read
          yield* connection.writeAll(batch)
          yield* connection.end
        }))
      const server = yield* Loopback.startServer(Transport.tcp(), Strategy.layerFiber(), handler)
      const socket = yield* Effect.promise(() => Loopback.connect(Loopback.targetOf(server.address)))
      const ready = yield* Effect.promise(() => Loopback.readExactly(socket, 5))
      assert.strictEqual(ready.toString(), "ready")
      socket.write("after\n")
      const echoed = yield* Effect.promise(() => Loopback.readExactly(socket, 6))
      socket.destroy()
      assert.strictEqual(echoed.toString(), "after\n")
    }))
})

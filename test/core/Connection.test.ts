import { assert, describe, it } from "@effect/vitest"
import { Cause, Deferred, Effect } from "effect"
import * as Strategy from "../../src/core/Strategy.ts"
import * as Transport from "../../src/core/Transport.ts"
import * as WorkerStrategy from "../../src/core/WorkerStrategy.ts"
import * as Handlers from "../fixtures/handlers.ts"
import * as Loopback from "../utils/loopback.ts"

const tcp = () => Loopback.listenerLayer(Transport.tcp())
const implementations = [
  { name: "fiber", layer: () => Strategy.layerFiber(), listener: tcp },
  { name: "worker", layer: () => WorkerStrategy.layer({ size: 1 }), listener: tcp },
  // without a socket to move, the worker gets the connection relayed over a port by the main thread
  { name: "worker (relayed)", layer: () => WorkerStrategy.layer({ size: 1 }), listener: () => Loopback.withoutSockets(tcp()) }
]

describe("Connection", () => {
  describe("stopReading", () => {
    for (const { name, layer, listener } of implementations) {
      // the probe handler answers what its reads saw, then half-closes
      const probe = (handler: typeof Handlers.stopReadingProbe, send: string, answer: string) =>
        Effect.gen(function*() {
          const server = yield* Loopback.startServerOn(listener(), layer(), handler)
          const socket = yield* Effect.promise(() => Loopback.connect(Loopback.targetOf(server.address)))
          socket.write(send)
          assert.strictEqual((yield* Effect.promise(() => Loopback.readExactly(socket, answer.length))).toString(), answer)
          assert.strictEqual(yield* Effect.promise(() => Loopback.closed(socket)), "end")
        })

      it.live(`${name}: ends a read that waits and every later read, as the peer's half-close would`, () =>
        probe(Handlers.stopReadingProbe, "a", "open\nwaiting=done later=done\n"), 30_000)

      it.live(`${name}: before the first read, ends that read even when the peer has sent bytes`, () =>
        probe(Handlers.stopBeforeReadProbe, "unread", "first=done\n"), 30_000)
    }
  })

  describe("closed", () => {
    for (const { name, layer, listener } of implementations) {
      it.live(`${name}: completes when the peer resets the connection, not when it half-closes`, () =>
        Effect.gen(function*() {
          const failures = yield* Deferred.make<string>()
          const server = yield* Loopback.startServerOn(listener(), layer(), Handlers.closeWatch, {
            // the half-closed connection's handler waits on `closed` until the server stops it
            shutdownMode: "immediate",
            onError: (failure) => Deferred.succeed(failures, String(Cause.squash(failure.cause))).pipe(Effect.asVoid)
          })
          const target = Loopback.targetOf(server.address)

          const halfClosing = yield* Effect.promise(() => Loopback.connect(target))
          halfClosing.write("a")
          const first = yield* Effect.promise(() => Loopback.readExactly(halfClosing, "open closed=false\n".length))
          assert.strictEqual(first.toString(), "open closed=false\n")
          halfClosing.end()
          const atEnd = yield* Effect.promise(() => Loopback.readExactly(halfClosing, "eof closed=false\n".length))
          assert.strictEqual(atEnd.toString(), "eof closed=false\n")
          halfClosing.destroy()

          const resetting = yield* Effect.promise(() => Loopback.connect(target))
          resetting.write("b")
          yield* Effect.promise(() => Loopback.readExactly(resetting, "open closed=false\n".length))
          resetting.resetAndDestroy()
          assert.include(yield* Deferred.await(failures).pipe(Effect.timeout("10 seconds")), "closed seen")
        }), 30_000)
    }
  })
})

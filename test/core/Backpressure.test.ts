import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect } from "effect"
import * as Net from "node:net"
import * as Handler from "../../src/core/Handler.ts"
import * as Strategy from "../../src/core/Strategy.ts"
import * as Transport from "../../src/core/Transport.ts"
import * as Loopback from "../utils/loopback.ts"
import * as Processes from "../utils/processes.ts"

const MiB = 1024 * 1024

describe("read backpressure", () => {
  for (const { name, args } of [
    { name: "a slow reader", args: [] },
    { name: "an echo to a client that never reads (lent reads)", args: ["echo"] },
    { name: "the web server, pipelined GETs from a client that never reads the responses", args: ["web"] }
  ]) {
  it.live(`a client pushing 200 MiB at ${name} does not grow the server's memory by more than a few MiB`, () =>
    Effect.gen(function*() {
      const server = yield* Processes.start("test/fixtures/slowReaderServer.ts", args, { env: { NODE_OPTIONS: "--expose-gc" } })
      const port = Number((yield* Effect.promise(() => server.waitFor(Processes.listeningPort)))[1])
      const samples: Array<{ rss: number; arrayBuffers: number; consumed: number }> = []
      server.child.stdout!.on("data", (chunk: Buffer) => {
        for (const line of chunk.toString().split("\n")) {
          const m = line.match(/^memory (\d+) (\d+) (\d+)$/)
          if (m) samples.push({ rss: Number(m[1]), arrayBuffers: Number(m[2]), consumed: Number(m[3]) })
        }
      })
      // the baseline: the newest sample once the server has printed a few (a loaded machine may take a while)
      for (let waited = 0; samples.length < 3 && waited < 10_000; waited += 50) yield* Effect.sleep("50 millis")
      assert.isAtLeast(samples.length, 3, "the server printed no memory samples")
      const baseline = samples.at(-1)!
      // Push 200 MiB as fast as the connection takes it, for at most 8 seconds.
      const pushed = yield* Effect.promise(() =>
        new Promise<number>((resolve, reject) => {
          const socket = Net.connect({ host: "127.0.0.1", port })
          const get = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
          const block = args[0] === "web" ? Buffer.from(get.repeat(Math.floor(MiB / get.length)), "latin1") : Buffer.alloc(MiB, 7)
          let written = 0
          const deadline = setTimeout(() => {
            socket.destroy()
            resolve(written)
          }, 8_000)
          const pump = () => {
            while (written < 200 * MiB) {
              written += block.length
              if (!socket.write(block)) return socket.once("drain", pump)
            }
            socket.end(() => {
              clearTimeout(deadline)
              socket.destroy()
              resolve(written)
            })
          }
          socket.once("connect", pump)
          socket.once("error", reject)
        })
      )
      yield* Effect.sleep("200 millis")
      const during = samples.filter((s) => s !== baseline && samples.indexOf(s) > samples.indexOf(baseline))
      const peakBuffers = Math.max(...during.map((s) => s.arrayBuffers))
      const consumed = samples.at(-1)!.consumed
      // The slow reader consumed only part of what was offered: backpressure was actually exercised.
      if (args.length === 0) {
        assert.isBelow(consumed, pushed)
        assert.isAbove(consumed, 0)
      } else {
        // the server stops taking bytes once its replies back up: the client got nowhere near 200 MiB out
        assert.isBelow(pushed, 200 * MiB)
      }
      // What the server holds in buffers stays within a few MiB of where it started.
      console.log(`retained buffers: baseline ${baseline.arrayBuffers} B, peak ${peakBuffers} B; consumed ${consumed} of ${pushed} B`)
      assert.isBelow(peakBuffers - baseline.arrayBuffers, 8 * MiB, `peak ${peakBuffers} vs baseline ${baseline.arrayBuffers}`)
    }), 60_000)
  }
})

describe("write backpressure without effects (tryWriteAll)", () => {
  it.live("refuses once the peer stops reading, writes again after the send buffer drains, and refuses after end", () =>
    Effect.gen(function*() {
      const block = Loopback.bytes(64 * 1024, 5)
      const report = yield* Deferred.make<{ accepted: number; afterDrain: boolean; afterClose: boolean }>()
      const handler = Handler.stream((connection) =>
        Effect.gen(function*() {
          // The client reads nothing yet: the kernel buffers fill and the socket's queue passes its mark.
          let accepted = 0
          while (accepted < 4096 && connection.tryWriteAll([block])) accepted++
          // `writeAll` waits for the drain that the client's reading brings.
          yield* connection.writeAll(["end-of-burst"])
          const afterDrain = connection.tryWriteAll(["after-drain"])
          // after a half-close nothing more may be written; `end` flushes what was, so the check below is exact
          yield* connection.end
          const afterClose = connection.tryWriteAll(["after-end"])
          yield* Deferred.succeed(report, { accepted, afterDrain, afterClose })
        }))
      const server = yield* Loopback.startServer(Transport.tcp(), Strategy.layerFiber(), handler)
      const socket = yield* Effect.promise(() => Loopback.connect(Loopback.targetOf(server.address)))
      yield* Effect.sleep("300 millis")
      const received = new Promise<Buffer>((resolve) => {
        const chunks: Array<Buffer> = []
        socket.on("data", (c: Buffer) => chunks.push(c))
        socket.on("close", () => resolve(Buffer.concat(chunks)))
      })
      const result = yield* Deferred.await(report).pipe(Effect.timeout("10 seconds"))
      const data = yield* Effect.promise(() => received)
      // Bounded: a few hundred KiB to a few MiB went out before it refused, far below the 256 MiB it tried.
      assert.isAbove(result.accepted, 0)
      assert.isBelow(result.accepted, 4096)
      assert.isTrue(result.afterDrain)
      assert.isFalse(result.afterClose)
      // Nothing written through it was lost or reordered.
      assert.strictEqual(data.length, result.accepted * block.length + "end-of-burst".length + "after-drain".length)
      assert.strictEqual(data.subarray(data.length - "after-drain".length).toString(), "after-drain")
      assert.isTrue(Buffer.from(block).equals(data.subarray(0, block.length)))
    }), 30_000)
})

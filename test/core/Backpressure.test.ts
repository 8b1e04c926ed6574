import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Net from "node:net"
import * as Processes from "../utils/processes.ts"

const MiB = 1024 * 1024

describe("read backpressure", () => {
  it.live("a client pushing 200 MiB at a slow reader does not grow the server's memory by more than a few MiB", () =>
    Effect.gen(function*() {
      const server = yield* Processes.start("test/fixtures/slowReaderServer.ts", [], { env: { NODE_OPTIONS: "--expose-gc" } })
      const port = Number((yield* Effect.promise(() => server.waitFor(Processes.listeningPort)))[1])
      const samples: Array<{ rss: number; arrayBuffers: number; consumed: number }> = []
      server.child.stdout!.on("data", (chunk: Buffer) => {
        for (const line of chunk.toString().split("\n")) {
          const m = line.match(/^memory (\d+) (\d+) (\d+)$/)
          if (m) samples.push({ rss: Number(m[1]), arrayBuffers: Number(m[2]), consumed: Number(m[3]) })
        }
      })
      yield* Effect.sleep("300 millis")
      const baseline = samples.at(-1)!
      // Push 200 MiB as fast as the connection takes it, for at most 8 seconds.
      const pushed = yield* Effect.promise(() =>
        new Promise<number>((resolve, reject) => {
          const socket = Net.connect({ host: "127.0.0.1", port })
          const block = Buffer.alloc(MiB, 7)
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
      assert.isBelow(consumed, pushed)
      assert.isAbove(consumed, 0)
      // What the server holds in buffers stays within a few MiB of where it started.
      console.log(`retained buffers: baseline ${baseline.arrayBuffers} B, peak ${peakBuffers} B; consumed ${consumed} of ${pushed} B`)
      assert.isBelow(peakBuffers - baseline.arrayBuffers, 8 * MiB, `peak ${peakBuffers} vs baseline ${baseline.arrayBuffers}`)
    }), 60_000)
})

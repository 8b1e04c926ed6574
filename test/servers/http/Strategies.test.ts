import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import type { Layer } from "effect"
import * as ForkStrategy from "../../../src/core/ForkStrategy.ts"
import * as Strategy from "../../../src/core/Strategy.ts"
import * as Transport from "../../../src/core/Transport.ts"
import * as WorkerStrategy from "../../../src/core/WorkerStrategy.ts"
import * as Apps from "../../fixtures/httpApps.ts"
import * as Loopback from "../../utils/loopback.ts"
import * as Http from "./support.ts"

const strategies: ReadonlyArray<readonly [string, () => Layer.Layer<Strategy.Strategy>]> = [
  ["sequential", () => Strategy.layerSequential],
  ["fiber", () => Strategy.layerFiber()],
  ["fork pool", () => ForkStrategy.layerPool({ size: 2 })],
  ["worker pool", () => WorkerStrategy.layer({ size: 2 })]
]

describe("HttpServer under every strategy", () => {
  for (const [name, layer] of strategies) {
    it.live(`${name}: keep-alive, pipelining, bodies, 500 and parse errors`, () =>
      Effect.gen(function*() {
        const server = yield* Loopback.startServer(Transport.tcp(), layer(), Apps.app)
        const port = (server.address as { readonly port: number }).port
        const client = yield* Effect.promise(() => Http.connect(port))
        let batch = ""
        for (let i = 0; i < 100; i++) batch += Http.get(`/n/${i}`)
        client.send(batch)
        const responses = yield* Effect.promise(() => client.responses(100, [], 20_000))
        responses.forEach((response, i) => assert.strictEqual(response.body, `path /n/${i}`))
        client.send(
          "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n" +
            "POST /text HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"
        )
        const more = yield* Effect.promise(() => client.responses(102))
        assert.strictEqual(more[100]!.body, "abcdef")
        assert.strictEqual(more[101]!.status, 100)
        client.send("hi" + Http.get("/fail") + Http.get("/whoami") + "BAD\r\n\r\n")
        const all = yield* Effect.promise(() => client.responses(106))
        assert.strictEqual(all[102]!.body, "got hi")
        assert.strictEqual(all[103]!.status, 500)
        assert.match(all[104]!.body, /^PID \d+ TID \d+$/)
        assert.strictEqual(all[105]!.status, 400)
        yield* Effect.promise(() => client.closed())
        // a second connection at the same time as a third: both served
        const [a, b] = yield* Effect.promise(() => Promise.all([Http.connect(port), Http.connect(port)]))
        a.send(Http.get("/hello", "Connection: close\r\n"))
        b.send(Http.get("/hello", "Connection: close\r\n"))
        const [ra, rb] = yield* Effect.promise(() => Promise.all([a.responses(1), b.responses(1)]))
        assert.strictEqual(ra[0]!.body, "hello")
        assert.strictEqual(rb[0]!.body, "hello")
      }))
  }
})

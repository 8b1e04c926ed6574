import * as NodeWS from "@effect/platform-node/NodeWS"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Processes from "../utils/processes.ts"
import * as Http from "../servers/http/support.ts"

const exchange = (port: number, raw: string) =>
  Effect.promise(async () => {
    const client = await Http.connect(port)
    client.send(raw)
    const [response] = await client.responses(1)
    client.destroy()
    return response!
  })

const post = (path: string, json: string) =>
  `POST ${path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: ${json.length}\r\n\r\n${json}`

describe("examples/api-server.ts", () => {
  for (const strategy of ["fiber", "fork", "worker"]) {
    it.live(`--strategy ${strategy}: the HttpApi, the stream and the WebSocket answer; SIGTERM exits 0`, () =>
      Effect.gen(function*() {
        const program = yield* Processes.start("examples/api-server.ts", ["--port", "0", "--strategy", strategy, "--workers", "1"])
        const port = Number((yield* Effect.promise(() => program.waitFor(Processes.listeningPort)))[1])
        const list = yield* exchange(port, Http.get("/todos"))
        assert.strictEqual(JSON.parse(list.body).length, 2)
        const missing = yield* exchange(port, Http.get("/todos/9"))
        assert.strictEqual(missing.status, 404)
        assert.deepStrictEqual(JSON.parse(missing.body), { _tag: "TodoNotFound", id: 9 })
        const created = yield* exchange(port, post("/todos", "{\"title\":\"write tests\"}"))
        assert.strictEqual(created.status, 201)
        assert.deepStrictEqual(JSON.parse(created.body), { id: 3, title: "write tests", done: false })
        // the Schema refuses an empty title
        assert.strictEqual((yield* exchange(port, post("/todos", "{\"title\":\"\"}"))).status, 400)
        const stream = yield* exchange(port, Http.get("/todos/stream"))
        assert.isTrue(stream.chunked)
        assert.strictEqual(stream.body.trim().split("\n").length, 2)
        const echoed = yield* Effect.promise(() =>
          new Promise<string>((resolve, reject) => {
            const ws = new NodeWS.WebSocket(`ws://127.0.0.1:${port}/echo`)
            ws.on("open", () => ws.send("shout"))
            ws.on("message", (data) => {
              resolve(String(data))
              ws.close()
            })
            ws.on("error", reject)
          })
        )
        assert.strictEqual(echoed, "SHOUT")
        program.signal("SIGTERM")
        assert.strictEqual(yield* Processes.exitWithin(program, 10_000), 0)
      }), 60_000)
  }
})

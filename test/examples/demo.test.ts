import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as ChatClient from "../../src/servers/chat/ChatClient.ts"
import * as Loopback from "../utils/loopback.ts"
import * as Processes from "../utils/processes.ts"

const portLine = (title: string) => new RegExp(`^${title.replace(/[()]/g, "\\$&")}\\s+listening on 127\\.0\\.0\\.1:(\\d+)$`)

describe("examples/demo.ts (npm start)", () => {
  it.live("runs every demo server, each answers, and Ctrl-C stops them all with exit 0", () =>
    Effect.gen(function*() {
      const demo = yield* Processes.start("examples/demo.ts", ["--ephemeral"])
      const port = (title: string) => Effect.promise(() => demo.waitFor(portLine(title))).pipe(Effect.map((m) => Number(m[1])))
      const tcp = yield* port("echo (tcp)")
      const udp = yield* port("echo (udp)")
      const web = yield* port("web (http)")
      const chat = yield* port("chat (tcp, memory hub)")
      const unix = (yield* Effect.promise(() => demo.waitFor(/^echo \(unix\)\s+listening on (\/.+)$/)))[1]!

      assert.strictEqual((yield* Effect.promise(() => Loopback.exchange({ port: tcp }, "tcp"))).toString(), "tcp")
      assert.strictEqual((yield* Effect.promise(() => Loopback.exchange({ path: unix }, "unix"))).toString(), "unix")
      const datagram = yield* Effect.promise(() => Loopback.udpRequest(udp, new TextEncoder().encode("udp")))
      assert.strictEqual(datagram.toString(), "udp")
      const response = yield* Effect.promise(() => fetch(`http://127.0.0.1:${web}/`))
      assert.strictEqual(response.status, 200)
      assert.strictEqual(yield* Effect.promise(() => response.text()), "Hello from Epoll Server")
      const client = yield* ChatClient.connect({ port: chat, name: "alice" })
      assert.strictEqual(client.identity, "alice@127.0.0.1")
      assert.isTrue(demo.stdout.some((line) => line.includes(`join the chat: npx tsx examples/chat.ts --name alice --port ${chat}`)))

      demo.child.kill("SIGINT")
      assert.strictEqual(yield* Effect.promise(() => demo.exited), 0)
      assert.include(demo.stdout, "all servers stopped")
    }))
})

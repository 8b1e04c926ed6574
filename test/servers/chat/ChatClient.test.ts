import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Stream } from "effect"
import * as Tls from "../../../src/core/Tls.ts"
import * as Transport from "../../../src/core/Transport.ts"
import * as ChatClient from "../../../src/servers/chat/ChatClient.ts"
import * as Certificates from "../../utils/certificates.ts"
import * as Loopback from "../../utils/loopback.ts"
import { startChat, wait } from "./chatClient.ts"

const connectTo = (target: Loopback.Target, name: string) =>
  ChatClient.connect("path" in target ? { path: target.path, name } : { port: target.port, name })

describe("ChatClient", () => {
  describe("connect", () => {
    it.live("logs in, says, and receives what others say", () =>
      Effect.gen(function*() {
        const chat = yield* startChat()
        const raw = yield* chat.client("raw")
        const client = yield* connectTo(chat.target, "alice")
        assert.strictEqual(client.identity, "alice@127.0.0.1")
        assert.strictEqual(client.address, "127.0.0.1")
        assert.strictEqual(client.count, 2)
        const firstTwo = yield* client.messages.pipe(Stream.take(2), Stream.runCollect, Effect.forkChild)
        yield* client.say("hi raw")
        assert.deepStrictEqual(yield* wait(() => raw.nextMatching((m) => m.type === "message")), {
          type: "message",
          from: "alice@127.0.0.1",
          text: "hi raw"
        })
        raw.send({ type: "say", text: "hi alice" })
        raw.destroy()
        assert.deepStrictEqual(yield* Fiber.join(firstTwo), [
          { type: "message", from: "raw@127.0.0.1", text: "hi alice" },
          { type: "left", client: "raw@127.0.0.1", count: 1 }
        ])
      }))

    it.live("works over a Unix path", () =>
      Effect.gen(function*() {
        const chat = yield* startChat({ transport: Transport.unix({ path: Loopback.tempSocketPath("chat-client") }) })
        const client = yield* connectTo(chat.target, "alice")
        assert.strictEqual(client.identity, "alice@local")
      }))

    it.live("a refused login fails with Rejected and the wire code", () =>
      Effect.gen(function*() {
        const chat = yield* startChat()
        yield* connectTo(chat.target, "alice")
        const error = yield* connectTo(chat.target, "alice").pipe(Effect.flip)
        assert.strictEqual(error.reason, "Rejected")
        assert.strictEqual(error.code, "name_taken")
      }))

    it.live("an invalid name fails before connecting; an empty text is not sent", () =>
      Effect.gen(function*() {
        const chat = yield* startChat()
        assert.strictEqual((yield* connectTo(chat.target, "a@b").pipe(Effect.flip)).reason, "InvalidInput")
        const client = yield* connectTo(chat.target, "alice")
        assert.strictEqual((yield* client.say("").pipe(Effect.flip)).reason, "InvalidInput")
      }))

    it.live("no server: ConnectFailed", () =>
      Effect.gen(function*() {
        const chat = yield* Effect.scoped(startChat())
        const error = yield* connectTo(chat.target, "alice").pipe(Effect.flip)
        assert.strictEqual(error.reason, "ConnectFailed")
      }))

    it.live("over TLS: clients trusting the CA chat; one trusting another CA fails with ConnectFailed", () =>
      Effect.gen(function*() {
        const certs = yield* Certificates.make
        const tls = yield* Tls.make({ key: certs.server.key, cert: certs.server.cert })
        const chat = yield* startChat({ tls })
        const port = (chat.target as { readonly port: number }).port
        const alice = yield* ChatClient.connect({ port, name: "alice", tls: { ca: { path: certs.ca.certPath } } })
        const bob = yield* ChatClient.connect({ port, name: "bob", tls: { ca: certs.ca.cert, servername: "localhost" } })
        assert.strictEqual(bob.count, 2)
        const heard = yield* alice.messages.pipe(Stream.filter((m) => m.type === "message"), Stream.take(1), Stream.runCollect, Effect.forkChild)
        yield* bob.say("over tls")
        assert.deepStrictEqual(yield* Fiber.join(heard), [{ type: "message", from: "bob@127.0.0.1", text: "over tls" }])
        const refused = yield* ChatClient.connect({ port, name: "eve", tls: { ca: certs.otherCa.cert } }).pipe(Effect.flip)
        assert.strictEqual(refused.reason, "ConnectFailed")
        assert.include(refused.message, "certificate")
      }))

    it.live("messages end after the server's shutdown", () =>
      Effect.gen(function*() {
        const chat = yield* startChat()
        const client = yield* connectTo(chat.target, "alice")
        const all = yield* client.messages.pipe(Stream.runCollect, Effect.forkChild)
        yield* chat.room.shutdown
        assert.deepStrictEqual(yield* Fiber.join(all), [{ type: "shutdown" }])
      }))
  })
})

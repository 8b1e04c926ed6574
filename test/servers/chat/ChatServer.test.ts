import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Transport from "../../../src/core/Transport.ts"
import * as Loopback from "../../utils/loopback.ts"
import { frame, RawClient, startChat, wait } from "./chatClient.ts"

describe("ChatServer", () => {
  describe("login", () => {
    it.live("welcomes with name@address and the count, and tells the others", () =>
      Effect.gen(function*() {
        const chat = yield* startChat()
        const alice = yield* chat.client("alice")
        assert.deepStrictEqual(alice.received[0], { type: "welcome", name: "alice@127.0.0.1", address: "127.0.0.1", count: 1 })
        const bob = yield* chat.client()
        bob.send({ type: "login", name: "bob", extra: "ignored" })
        assert.deepStrictEqual(yield* wait(() => bob.next()), {
          type: "welcome",
          name: "bob@127.0.0.1",
          address: "127.0.0.1",
          count: 2
        })
        assert.deepStrictEqual(yield* wait(() => alice.next()), { type: "joined", client: "bob@127.0.0.1", count: 2 })
      }))

    it.live("uses `local` as the address on a Unix listener", () =>
      Effect.gen(function*() {
        const chat = yield* startChat({ transport: Transport.unix({ path: Loopback.tempSocketPath("chat") }) })
        const alice = yield* chat.client("alice")
        assert.deepStrictEqual(alice.received[0], { type: "welcome", name: "alice@local", address: "local", count: 1 })
      }))

    for (const name of ["", "a@b", "Server", "SERVER", "tab\there", "x".repeat(33)]) {
      it.live(`bad_name closes the connection: ${JSON.stringify(name)}`, () =>
        Effect.gen(function*() {
          const chat = yield* startChat()
          const client = yield* chat.client()
          client.send({ type: "login", name })
          const reply = yield* wait(() => client.next())
          assert.strictEqual(reply.type === "error" && reply.code, "bad_name")
          yield* wait(() => client.closed())
        }))
    }

    it.live("a 32-character name is fine", () =>
      Effect.gen(function*() {
        const chat = yield* startChat()
        const client = yield* chat.client("é".repeat(32))
        assert.strictEqual(client.received[0]?.type, "welcome")
      }))

    it.live("name_taken closes the second connection; the first stays", () =>
      Effect.gen(function*() {
        const chat = yield* startChat()
        const first = yield* chat.client("alice")
        const second = yield* chat.client()
        second.send({ type: "login", name: "alice" })
        const reply = yield* wait(() => second.next())
        assert.strictEqual(reply.type === "error" && reply.code, "name_taken")
        yield* wait(() => second.closed())
        const bob = yield* chat.client("bob")
        assert.deepStrictEqual(bob.received[0], { type: "welcome", name: "bob@127.0.0.1", address: "127.0.0.1", count: 2 })
        assert.isFalse(first.ended)
      }))

    it.live("not_logged_in: say before login closes", () =>
      Effect.gen(function*() {
        const chat = yield* startChat()
        const client = yield* chat.client()
        client.send({ type: "say", text: "hi" })
        const reply = yield* wait(() => client.next())
        assert.strictEqual(reply.type === "error" && reply.code, "not_logged_in")
        yield* wait(() => client.closed())
      }))

    it.live("a second login is bad_message and the connection stays", () =>
      Effect.gen(function*() {
        const chat = yield* startChat()
        const alice = yield* chat.client("alice")
        const bob = yield* chat.client("bob")
        alice.send({ type: "login", name: "again" })
        const reply = yield* wait(() => alice.nextMatching((m) => m.type === "error"))
        assert.strictEqual(reply.type === "error" && reply.code, "bad_message")
        alice.send({ type: "say", text: "still here" })
        assert.deepStrictEqual(yield* wait(() => bob.nextMatching((m) => m.type === "message")), {
          type: "message",
          from: "alice@127.0.0.1",
          text: "still here"
        })
      }))

    it.live("login_timeout closes a silent connection", () =>
      Effect.gen(function*() {
        const chat = yield* startChat({ room: { loginTimeout: "200 millis" } })
        const client = yield* chat.client()
        const reply = yield* wait(() => client.next())
        assert.strictEqual(reply.type === "error" && reply.code, "login_timeout")
        yield* wait(() => client.closed())
      }))
  })

  describe("messages", () => {
    it.live("relays say to everyone but the sender", () =>
      Effect.gen(function*() {
        const chat = yield* startChat()
        const alice = yield* chat.client("alice")
        const bob = yield* chat.client("bob")
        const carol = yield* chat.client("carol")
        alice.send({ type: "say", text: "hello" })
        for (const receiver of [bob, carol]) {
          assert.deepStrictEqual(yield* wait(() => receiver.nextMatching((m) => m.type === "message")), {
            type: "message",
            from: "alice@127.0.0.1",
            text: "hello"
          })
        }
        bob.send({ type: "say", text: "marker" })
        const next = yield* wait(() => alice.nextMatching((m) => m.type === "message"))
        assert.deepStrictEqual(next, { type: "message", from: "bob@127.0.0.1", text: "marker" })
      }))

    for (
      const [label, payload] of [
        ["invalid JSON", "{nope"],
        ["not an object", "[1,2]"],
        ["unknown type", JSON.stringify({ type: "shout", text: "x" })],
        ["empty text", JSON.stringify({ type: "say", text: "" })],
        ["text too long", JSON.stringify({ type: "say", text: "x".repeat(4097) })]
      ] as const
    ) {
      it.live(`bad_message (${label}) drops the frame and keeps the connection`, () =>
        Effect.gen(function*() {
          const chat = yield* startChat()
          const alice = yield* chat.client("alice")
          const bob = yield* chat.client("bob")
          alice.sendRaw(frame(payload))
          alice.send({ type: "say", text: "after" })
          const reply = yield* wait(() => alice.nextMatching((m) => m.type === "error"))
          assert.strictEqual(reply.type === "error" && reply.code, "bad_message")
          assert.deepStrictEqual(yield* wait(() => bob.nextMatching((m) => m.type === "message")), {
            type: "message",
            from: "alice@127.0.0.1",
            text: "after"
          })
        }))
    }

    it.live("invalid UTF-8 is bad_message", () =>
      Effect.gen(function*() {
        const chat = yield* startChat()
        const alice = yield* chat.client("alice")
        alice.sendRaw(Uint8Array.of(0, 0, 0, 2, 0xc3, 0x28))
        const reply = yield* wait(() => alice.nextMatching((m) => m.type === "error"))
        assert.strictEqual(reply.type === "error" && reply.code, "bad_message")
        assert.isFalse(alice.ended)
      }))

    it.live("500 messages from one sender arrive in order at 3 receivers", () =>
      Effect.gen(function*() {
        const chat = yield* startChat()
        const sender = yield* chat.client("sender")
        const receivers = [yield* chat.client("r1"), yield* chat.client("r2"), yield* chat.client("r3")]
        for (let i = 0; i < 500; i++) sender.send({ type: "say", text: `m${i}` })
        for (const receiver of receivers) {
          const messages = yield* wait(() => receiver.collect("message", 500))
          assert.deepStrictEqual(messages.map((m) => m.type === "message" && m.text), Array.from({ length: 500 }, (_, i) => `m${i}`))
        }
      }))

    it.live("frames split byte by byte, and many frames in one write", () =>
      Effect.gen(function*() {
        const chat = yield* startChat()
        const bob = yield* chat.client("bob")
        const alice = yield* chat.client()
        const wire = Buffer.concat([
          frame({ type: "login", name: "alice" }),
          frame({ type: "say", text: "one" }),
          frame({ type: "say", text: "twø" })
        ])
        for (const byte of wire) {
          alice.sendRaw(Uint8Array.of(byte))
          yield* Effect.sleep("1 millis")
        }
        assert.strictEqual((yield* wait(() => alice.next())).type, "welcome")
        const texts = yield* wait(() => bob.collect("message", 2))
        assert.deepStrictEqual(texts.map((m) => m.type === "message" && m.text), ["one", "twø"])
        alice.sendRaw(Buffer.concat([frame({ type: "say", text: "three" }), frame({ type: "say", text: "four" })]))
        const more = yield* wait(() => bob.collect("message", 2))
        assert.deepStrictEqual(more.map((m) => m.type === "message" && m.text), ["three", "four"])
      }))
  })

  describe("framing errors", () => {
    it.live("a 0xFFFFFFF0 length claim closes that client with frame_too_large; others are unaffected", () =>
      Effect.gen(function*() {
        const chat = yield* startChat()
        const alice = yield* chat.client("alice")
        const bob = yield* chat.client("bob")
        const heapBefore = process.memoryUsage().arrayBuffers
        bob.sendRaw(Uint8Array.of(0xff, 0xff, 0xff, 0xf0, 1, 2, 3))
        const reply = yield* wait(() => bob.nextMatching((m) => m.type === "error"))
        assert.deepStrictEqual(reply, { type: "error", code: "frame_too_large" })
        yield* wait(() => bob.closed())
        // Nowhere near the 4 GiB claimed.
        assert.isBelow(process.memoryUsage().arrayBuffers - heapBefore, 64 * 1024 * 1024)
        assert.deepStrictEqual(yield* wait(() => alice.nextMatching((m) => m.type === "left")), {
          type: "left",
          client: "bob@127.0.0.1",
          count: 1
        })
        const carol = yield* chat.client("carol")
        alice.send({ type: "say", text: "fine" })
        assert.deepStrictEqual(yield* wait(() => carol.nextMatching((m) => m.type === "message")), {
          type: "message",
          from: "alice@127.0.0.1",
          text: "fine"
        })
      }))

    it.live("empty_frame closes, also before login", () =>
      Effect.gen(function*() {
        const chat = yield* startChat()
        const client = yield* chat.client()
        client.sendRaw(Uint8Array.of(0, 0, 0, 0))
        assert.deepStrictEqual(yield* wait(() => client.next()), { type: "error", code: "empty_frame" })
        yield* wait(() => client.closed())
      }))

    it.live("maxFrameBytes is configurable: exactly at the limit passes, one more closes", () =>
      Effect.gen(function*() {
        const chat = yield* startChat({ room: { maxFrameBytes: 64 } })
        const alice = yield* chat.client("alice")
        const bob = yield* chat.client("bob")
        const fill = (size: number) => {
          const base = JSON.stringify({ type: "say", text: "" })
          return JSON.stringify({ type: "say", text: "x".repeat(size - base.length) })
        }
        alice.sendRaw(frame(fill(64)))
        assert.strictEqual((yield* wait(() => bob.nextMatching((m) => m.type === "message"))).type, "message")
        alice.sendRaw(frame(fill(65)))
        assert.deepStrictEqual(yield* wait(() => alice.nextMatching((m) => m.type === "error")), {
          type: "error",
          code: "frame_too_large"
        })
        yield* wait(() => alice.closed())
      }))
  })

  describe("disconnects", () => {
    it.live("an abrupt reset gives exactly one left", () =>
      Effect.gen(function*() {
        const chat = yield* startChat()
        const alice = yield* chat.client("alice")
        const bob = yield* chat.client("bob")
        bob.socket.resetAndDestroy()
        assert.deepStrictEqual(yield* wait(() => alice.nextMatching((m) => m.type !== "joined")), {
          type: "left",
          client: "bob@127.0.0.1",
          count: 1
        })
        // A marker from a new client proves nothing else (a second left) was queued in between.
        const carol = yield* chat.client("carol")
        carol.send({ type: "say", text: "marker" })
        const rest = yield* wait(() => alice.nextMatching((m) => m.type === "message"))
        assert.strictEqual(rest.type === "message" && rest.text, "marker")
        assert.strictEqual(alice.received.filter((m) => m.type === "left").length, 1)
        assert.deepStrictEqual([...(yield* chat.room.stats).members].sort(), ["alice@127.0.0.1", "carol@127.0.0.1"])
      }))

    it.live("a clean close (EOF) gives exactly one left and frees the name", () =>
      Effect.gen(function*() {
        const chat = yield* startChat()
        const alice = yield* chat.client("alice")
        const bob = yield* chat.client("bob")
        bob.socket.end()
        assert.deepStrictEqual(yield* wait(() => alice.nextMatching((m) => m.type === "left")), {
          type: "left",
          client: "bob@127.0.0.1",
          count: 1
        })
        const again = yield* chat.client("bob")
        assert.strictEqual(again.received[0]?.type, "welcome")
      }))

    it.live("a client that never reads is disconnected as slow_consumer; the others keep receiving", () =>
      Effect.gen(function*() {
        const chat = yield* startChat({ room: { maxQueuedFrames: 64 } })
        const sender = yield* chat.client("sender")
        const reader = yield* chat.client("reader")
        const stalled = yield* chat.client("stalled")
        stalled.socket.pause()
        const text = "y".repeat(4000)
        const total = 2000
        for (let i = 0; i < total; i++) sender.send({ type: "say", text: `${i} ${text}` })
        yield* wait(() => reader.seen((all) => all.some((m) => m.type === "left"), 20_000))
        assert.deepStrictEqual(reader.received.find((m) => m.type === "left"), {
          type: "left",
          client: "stalled@127.0.0.1",
          count: 2
        })
        // What the kernel buffered for it may still arrive, then the connection ends.
        stalled.socket.resume()
        yield* wait(() => stalled.closed(10_000))
        assert.strictEqual((yield* chat.room.stats).members.length, 2)
        const messages = yield* wait(() => reader.collect("message", total, 30_000))
        assert.strictEqual(messages.length, total)
        assert.isTrue(messages.every((m, i) => m.type === "message" && m.text.startsWith(`${i} `)))
      }), 60_000)

    it.live("a receiver that keeps stalling gets everything in order (direct writes, queue, direct, ...)", () =>
      Effect.gen(function*() {
        // Far more than the kernel buffers on loopback, sent in bursts while the receiver pauses and resumes: frames
        // keep switching between direct writes and the queue (bounded above the total here), and none may overtake.
        const chat = yield* startChat({ room: { maxQueuedFrames: 4000 } })
        const sender = yield* chat.client("sender")
        const stalling = yield* chat.client("stalling")
        const text = "z".repeat(4000)
        const total = 3000
        const toggler = setInterval(() => stalling.socket.isPaused() ? stalling.socket.resume() : stalling.socket.pause(), 15)
        for (let i = 0; i < total; i += 100) {
          for (let j = i; j < i + 100; j++) sender.send({ type: "say", text: `${j} ${text}` })
          yield* Effect.sleep("10 millis")
        }
        clearInterval(toggler)
        stalling.socket.resume()
        const all = yield* wait(() => stalling.collect("message", total, 30_000))
        assert.isTrue(all.every((m, i) => m.type === "message" && m.text.startsWith(`${i} `)))
        assert.deepStrictEqual((yield* chat.room.stats).members.length, 2)
      }), 60_000)

    it.live("200 concurrent clients all receive a broadcast", () =>
      Effect.gen(function*() {
        const chat = yield* startChat()
        const clients = yield* Effect.forEach(
          Array.from({ length: 200 }, (_, i) => `c${i}`),
          (name) => chat.client(name),
          { concurrency: 50 }
        )
        const sender = yield* chat.client("sender")
        sender.send({ type: "say", text: "to all" })
        yield* Effect.forEach(clients, (client) =>
          Effect.map(
            wait(() => client.nextMatching((m) => m.type === "message", 15_000)),
            (m) => assert.deepStrictEqual(m, { type: "message", from: "sender@127.0.0.1", text: "to all" })
          ), { concurrency: "unbounded" })
        assert.strictEqual((yield* chat.room.stats).members.length, 201)
      }), 60_000)
  })

  describe("shutdown", () => {
    it.live("a graceful server shutdown alone tells every client shutdown (Server.Shutdown), then closes", () =>
      Effect.gen(function*() {
        const chat = yield* startChat()
        const alice = yield* chat.client("alice")
        const bob = yield* chat.client("bob")
        const anonymous = yield* chat.client()
        // A connection still waiting in the accept queue is not served at all once the listener stops.
        while ((yield* chat.room.stats).connections < 3) yield* Effect.sleep("5 millis")
        yield* chat.server.shutdown
        for (const client of [alice, bob, anonymous]) {
          assert.deepStrictEqual(yield* wait(() => client.nextMatching((m) => m.type === "shutdown")), { type: "shutdown" })
          yield* wait(() => client.closed())
        }
        assert.deepStrictEqual(yield* chat.room.stats, { connections: 0, members: [] })
      }))

    it.live("sends shutdown to everyone, logged in or not, then closes", () =>
      Effect.gen(function*() {
        const chat = yield* startChat()
        const alice = yield* chat.client("alice")
        const anonymous = yield* chat.client()
        yield* chat.room.shutdown
        assert.deepStrictEqual(yield* wait(() => alice.nextMatching((m) => m.type === "shutdown")), { type: "shutdown" })
        assert.deepStrictEqual(yield* wait(() => anonymous.next()), { type: "shutdown" })
        yield* wait(() => alice.closed())
        yield* wait(() => anonymous.closed())
        const late = yield* wait(() => RawClient.connect(chat.target).catch(() => undefined))
        if (late !== undefined) {
          assert.deepStrictEqual(yield* wait(() => late.next()), { type: "shutdown" })
          late.destroy()
        }
      }))
  })
})

import { assert, describe, it } from "@effect/vitest"
import { Context, Effect } from "effect"
import type { Scope } from "effect"
import * as ChildProcess from "node:child_process"
import * as Net from "node:net"
import * as ChatHub from "../../../src/servers/chat/ChatHub.ts"
import * as Processes from "../../utils/processes.ts"
import { RawClient, startChat, wait } from "./chatClient.ts"

const redisAvailable = ChildProcess.spawnSync("which", ["redis-server"]).status === 0

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = Net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as Net.AddressInfo).port
      server.close(() => resolve(port))
    })
  })

/** A throwaway redis-server on `port`, stopped with the scope (or earlier by `stop`). */
const startRedis = (port: number) =>
  Effect.acquireRelease(
    Effect.promise(() =>
      new Promise<{ readonly stop: () => Promise<void> }>((resolve, reject) => {
        const child = ChildProcess.spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
          stdio: ["ignore", "pipe", "pipe"]
        })
        const exited = new Promise<void>((done) => child.once("exit", () => done()))
        const stop = () => {
          if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
          return exited
        }
        const timer = setTimeout(() => reject(new Error("redis-server did not start")), 10_000)
        child.stdout!.on("data", (chunk: Buffer) => {
          if (chunk.toString().includes("Ready to accept connections")) {
            clearTimeout(timer)
            resolve({ stop })
          }
        })
      })
    ),
    (redis) => Effect.promise(() => redis.stop())
  )

const redisHub = (port: number): Effect.Effect<Context.Context<ChatHub.ChatHub>, never, Scope.Scope> =>
  Effect.map(
    ChatHub.makeRedis({ url: `redis://127.0.0.1:${port}`, prefix: `test-${port}`, heartbeat: "200 millis" }),
    (hub) => Context.make(ChatHub.ChatHub, hub)
  )

/** A fresh redis-server and two chat servers over it, all stopped with the scope. */
const twoServersOverRedis = Effect.gen(function*() {
  const port = yield* Effect.promise(freePort)
  const redis = yield* startRedis(port)
  const a = yield* startChat({ hub: yield* redisHub(port) })
  const b = yield* startChat({ hub: yield* redisHub(port) })
  return { port, redis, a, b }
})

/**
 * Says `label N` from `sender` until `receiver` (on another server) gets one, at most 50 times: true once one
 * arrives. Cross-server delivery resumes only when the hub's subscriber is back, and what was said before is lost.
 */
const deliveredOnceBack = (sender: RawClient, receiver: RawClient, label: string) =>
  Effect.gen(function*() {
    for (let attempt = 0; attempt < 50; attempt++) {
      sender.send({ type: "say", text: `${label} ${attempt}` })
      const delivered = yield* wait(() =>
        receiver.nextMatching((m) => m.type === "message" && m.text.startsWith(label), 300).then(() => true, () => false)
      )
      if (delivered) return true
    }
    return false
  })

describe("ChatHub", () => {
  describe("layerMemory", () => {
    it.live("two servers on one memory hub are one room", () =>
      Effect.gen(function*() {
        const hub = Context.make(ChatHub.ChatHub, yield* ChatHub.makeMemory)
        const a = yield* startChat({ hub })
        const b = yield* startChat({ hub })
        const alice = yield* a.client("alice")
        const bob = yield* b.client("bob")
        assert.strictEqual(bob.received[0]?.type === "welcome" && bob.received[0].count, 2)
        assert.deepStrictEqual(yield* wait(() => alice.next()), { type: "joined", client: "bob@127.0.0.1", count: 2 })
        bob.send({ type: "say", text: "across" })
        assert.deepStrictEqual(yield* wait(() => alice.next()), { type: "message", from: "bob@127.0.0.1", text: "across" })
        const dup = yield* b.client()
        dup.send({ type: "login", name: "alice" })
        const reply = yield* wait(() => dup.next())
        assert.strictEqual(reply.type === "error" && reply.code, "name_taken")
        bob.destroy()
        assert.deepStrictEqual(yield* wait(() => alice.nextMatching((m) => m.type === "left")), {
          type: "left",
          client: "bob@127.0.0.1",
          count: 1
        })
      }))
  })

  describe.skipIf(!redisAvailable)("layerRedis", () => {
    it.live("two servers through a real Redis behave as one room", () =>
      Effect.gen(function*() {
        const port = yield* Effect.promise(freePort)
        yield* startRedis(port)
        const a = yield* startChat({ hub: yield* redisHub(port) })
        const b = yield* startChat({ hub: yield* redisHub(port) })
        const alice = yield* a.client("alice")
        const carol = yield* a.client("carol")
        const bob = yield* b.client("bob")
        assert.strictEqual(bob.received[0]?.type === "welcome" && bob.received[0].count, 3)
        assert.deepStrictEqual(yield* wait(() => alice.nextMatching((m) => m.type === "joined" && m.client === "bob@127.0.0.1")), {
          type: "joined",
          client: "bob@127.0.0.1",
          count: 3
        })
        bob.send({ type: "say", text: "from b" })
        alice.send({ type: "say", text: "from a" })
        assert.deepStrictEqual(yield* wait(() => alice.nextMatching((m) => m.type === "message")), {
          type: "message",
          from: "bob@127.0.0.1",
          text: "from b"
        })
        assert.deepStrictEqual(yield* wait(() => bob.nextMatching((m) => m.type === "message")), {
          type: "message",
          from: "alice@127.0.0.1",
          text: "from a"
        })
        const dup = yield* b.client()
        dup.send({ type: "login", name: "carol" })
        const reply = yield* wait(() => dup.next())
        assert.strictEqual(reply.type === "error" && reply.code, "name_taken")
        carol.destroy()
        assert.deepStrictEqual(yield* wait(() => bob.nextMatching((m) => m.type === "left")), {
          type: "left",
          client: "carol@127.0.0.1",
          count: 2
        })
      }), 30_000)

    it.live("examples/chat.ts --hub redis: two server processes are one room", () =>
      Effect.gen(function*() {
        const port = yield* Effect.promise(freePort)
        yield* startRedis(port)
        const args = ["--name", "server", "--port", "0", "--hub", "redis", "--redis-url", `redis://127.0.0.1:${port}`]
        const serverA = yield* Processes.start("examples/chat.ts", args)
        const serverB = yield* Processes.start("examples/chat.ts", args)
        const portA = Number((yield* wait(() => serverA.waitFor(Processes.listeningPort)))[1])
        const portB = Number((yield* wait(() => serverB.waitFor(Processes.listeningPort)))[1])
        const alice = yield* wait(() => RawClient.connect({ port: portA }))
        yield* wait(() => alice.login("alice"))
        const bob = yield* wait(() => RawClient.connect({ port: portB }))
        assert.strictEqual((yield* wait(() => bob.login("bob"))).count, 2)
        bob.send({ type: "say", text: "between processes" })
        assert.deepStrictEqual(yield* wait(() => alice.nextMatching((m) => m.type === "message")), {
          type: "message",
          from: "bob@127.0.0.1",
          text: "between processes"
        })
        serverB.child.kill("SIGTERM")
        assert.deepStrictEqual(yield* wait(() => bob.nextMatching((m) => m.type === "shutdown")), { type: "shutdown" })
        assert.deepStrictEqual(yield* wait(() => alice.nextMatching((m) => m.type === "left")), {
          type: "left",
          client: "bob@127.0.0.1",
          count: 1
        })
        assert.strictEqual(yield* wait(() => serverB.exited), 0)
        alice.destroy()
        bob.destroy()
      }), 60_000)

    it.live("an outage keeps local chat going, and cross-server delivery resumes when Redis is back", () =>
      Effect.gen(function*() {
        const { port, redis, a, b } = yield* twoServersOverRedis
        const alice = yield* a.client("alice")
        const carol = yield* a.client("carol")
        const bob = yield* b.client("bob")
        yield* wait(() => alice.nextMatching((m) => m.type === "joined" && m.client === "bob@127.0.0.1"))

        yield* Effect.promise(() => redis.stop())
        carol.send({ type: "say", text: "during the outage" })
        assert.deepStrictEqual(yield* wait(() => alice.nextMatching((m) => m.type === "message")), {
          type: "message",
          from: "carol@127.0.0.1",
          text: "during the outage"
        })
        const dave = yield* a.client("dave")
        assert.strictEqual(dave.received[0]?.type, "welcome")

        yield* startRedis(port)
        // Retry until the subscriber is back: a message before that is lost (no replay), by design.
        assert.isTrue(yield* deliveredOnceBack(alice, bob, "after recovery"))
        // Presence was re-registered: a new login on b counts a's members again (alice, carol, dave, bob, erin).
        const erin = yield* b.client("erin")
        assert.strictEqual(erin.received[0]?.type === "welcome" && erin.received[0].count, 5)
      }), 60_000)

    it.live("a Redis restart under load loses no local message; cross-server delivery comes back", () =>
      Effect.gen(function*() {
        const { port, redis: first, a, b } = yield* twoServersOverRedis
        const names = ["alice", "bob", "carol"]
        const locals = yield* Effect.forEach(names, (name) => a.client(name))
        const dave = yield* b.client("dave")
        yield* wait(() => locals[0]!.seen((all) => all.some((m) => m.type === "joined" && m.client === "dave@127.0.0.1")))

        // Every local client says `count` numbered lines, one every 2 ms; Redis dies a third of the way in and
        // comes back (same port, empty) while they go on.
        const count = 300
        const sending = Effect.promise(async () => {
          for (let i = 0; i < count; i++) {
            locals.forEach((client, k) => client.send({ type: "say", text: `${names[k]} ${i}` }))
            await new Promise((resolve) => setTimeout(resolve, 2))
          }
        })
        const restart = Effect.gen(function*() {
          yield* Effect.sleep("200 millis")
          yield* Effect.promise(() => first.stop())
          yield* Effect.sleep("300 millis")
          yield* startRedis(port)
        })
        yield* Effect.all([sending, restart], { concurrency: "unbounded" })

        // Each local client got every line of the other two, in the order they were said.
        for (const [k, receiver] of locals.entries()) {
          const from = (sender: string) =>
            receiver.received.flatMap((m) => m.type === "message" && m.from === `${sender}@127.0.0.1` ? [m.text] : [])
          yield* wait(() => receiver.seen(() => names.every((sender, j) => j === k || from(sender).length >= count), 20_000))
          for (const [j, sender] of names.entries()) {
            if (j === k) continue
            assert.deepStrictEqual(from(sender), Array.from({ length: count }, (_, i) => `${sender} ${i}`), `${names[k]} from ${sender}`)
          }
        }

        // Across servers, both ways, once the subscribers are back (a message before that is not replayed).
        assert.isTrue(yield* deliveredOnceBack(dave, locals[0]!, "b to a"), "b to a")
        assert.isTrue(yield* deliveredOnceBack(locals[0]!, dave, "a to b"), "a to b")
      }), 60_000)
  })
})

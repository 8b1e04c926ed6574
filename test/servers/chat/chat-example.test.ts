import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Stream } from "effect"
import * as ChatClient from "../../../src/servers/chat/ChatClient.ts"
import * as Certificates from "../../utils/certificates.ts"
import * as Processes from "../../utils/processes.ts"
import { RawClient, wait } from "./chatClient.ts"

const file = "examples/chat.ts"

describe("examples/chat.ts", () => {
  it.live("server and CLI client exchange messages with a raw client; a stdin line stops the server", () =>
    Effect.gen(function*() {
      const server = yield* Processes.start(file, ["--name", "server", "--port", "0"])
      const port = Number((yield* wait(() => server.waitFor(Processes.listeningPort)))[1])
      const raw = yield* wait(() => RawClient.connect({ port }))
      yield* wait(() => raw.login("raw"))
      const alice = yield* Processes.start(file, ["--name", "alice", "--port", String(port)])
      yield* wait(() => alice.waitFor(/\(Welcome alice@127\.0\.0\.1, 2 online\)/))
      assert.deepStrictEqual(yield* wait(() => raw.next()), { type: "joined", client: "alice@127.0.0.1", count: 2 })
      alice.child.stdin!.write("hello from the cli\n")
      assert.deepStrictEqual(yield* wait(() => raw.next()), {
        type: "message",
        from: "alice@127.0.0.1",
        text: "hello from the cli"
      })
      raw.send({ type: "say", text: "hello cli" })
      yield* wait(() => alice.waitFor(/^#\[raw@127\.0\.0\.1\]>> hello cli$/))
      // In a pipe the prompt ends up on a line of its own, before the incoming message.
      assert.include(alice.stdout, "[alice@127.0.0.1]> ")
      const bob = yield* wait(() => RawClient.connect({ port }))
      yield* wait(() => bob.login("bob"))
      yield* wait(() => alice.waitFor(/^\(Connected: bob@127\.0\.0\.1, 3 online\)$/))
      bob.destroy()
      yield* wait(() => alice.waitFor(/^\(Now hung up: bob@127\.0\.0\.1\)$/))
      server.child.stdin!.write("\n")
      assert.deepStrictEqual(yield* wait(() => raw.nextMatching((m) => m.type === "shutdown")), { type: "shutdown" })
      yield* wait(() => alice.waitFor(/The server is shutting down/))
      yield* wait(() => alice.waitFor(/Disconnected/))
      assert.strictEqual(yield* wait(() => server.exited), 0)
      assert.strictEqual(yield* wait(() => alice.exited), 0)
    }), 60_000)

  it.live("SIGTERM and SIGINT stop the server with exit 0, clients told; a missing --name is a one-line error", () =>
    Effect.gen(function*() {
      for (const signal of ["SIGTERM", "SIGINT"] as const) {
        const server = yield* Processes.start(file, ["--name", "server", "--port", "0"])
        const port = Number((yield* wait(() => server.waitFor(Processes.listeningPort)))[1])
        const raw = yield* wait(() => RawClient.connect({ port }))
        yield* wait(() => raw.login("raw"))
        server.child.kill(signal)
        assert.deepStrictEqual(yield* wait(() => raw.next()), { type: "shutdown" })
        yield* wait(() => raw.closed())
        assert.strictEqual(yield* wait(() => server.exited), 0)
      }
      const result = yield* Processes.run(file, [])
      assert.notStrictEqual(result.code, 0)
      const lines = result.stderr.filter((line) => line.trim() !== "")
      assert.strictEqual(lines.length, 1, lines.join("\n"))
      assert.match(lines[0]!, /^error: --name: required/)
    }), 60_000)

  it.live("the client says so when the server dies without a goodbye", () =>
    Effect.gen(function*() {
      const server = yield* Processes.start(file, ["--name", "server", "--port", "0"])
      const port = Number((yield* wait(() => server.waitFor(Processes.listeningPort)))[1])
      const alice = yield* Processes.start(file, ["--name", "alice", "--port", String(port)])
      yield* wait(() => alice.waitFor(/\(Welcome alice@127\.0\.0\.1, 1 online\)/))
      server.child.kill("SIGKILL")
      yield* wait(() => alice.exited)
      // A closed connection is a normal end, a reset an error; either way one clear line says the server is gone.
      const said = [...alice.stdout, ...alice.stderr].join("\n")
      assert.match(said, /\(Disconnected: the server closed the connection\)|error: the connection to the chat server was lost/)
    }), 60_000)

  it.live("--tls-cert/--tls-key serve TLS; a client with --tls-ca chats over it, one trusting another CA cannot connect", () =>
    Effect.gen(function*() {
      const certs = yield* Certificates.make
      const server = yield* Processes.start(file, ["--name", "server", "--port", "0", ...Certificates.flagsOf(certs.server)])
      const port = Number((yield* wait(() => server.waitFor(Processes.listeningPort)))[1])
      const bob = yield* ChatClient.connect({ port, name: "bob", tls: { ca: certs.ca.cert } })
      const alice = yield* Processes.start(file, ["--name", "alice", "--port", String(port), "--tls-ca", certs.ca.certPath])
      yield* wait(() => alice.waitFor(/\(Welcome alice@127\.0\.0\.1, 2 online\)/))
      const said = yield* bob.messages.pipe(Stream.filter((m) => m.type === "message"), Stream.take(1), Stream.runCollect, Effect.forkChild)
      alice.child.stdin!.write("hello over tls\n")
      assert.deepStrictEqual(yield* Fiber.join(said), [{ type: "message", from: "alice@127.0.0.1", text: "hello over tls" }])
      const refused = yield* Processes.run(file, ["--name", "eve", "--port", String(port), "--tls-ca", certs.otherCa.certPath])
      assert.notStrictEqual(refused.code, 0)
      assert.match(refused.stderr.join("\n"), /^error: cannot connect: .*certificate/m)
    }), 60_000)

  it.live("the client says so when no server listens", () =>
    Effect.gen(function*() {
      const result = yield* Processes.run(file, ["--name", "alice", "--port", "1"])
      assert.notStrictEqual(result.code, 0)
      assert.match(result.stderr.join("\n"), /^error: cannot connect/m)
    }), 60_000)
})

import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import type { Scope } from "effect"
import type * as Net from "node:net"
import * as Loopback from "../utils/loopback.ts"
import * as Processes from "../utils/processes.ts"

/** A connection that got its 1-byte echo back, or `undefined` when the server closed it unserved. */
const echoClient = (port: number): Promise<Net.Socket | undefined> =>
  Loopback.connect({ port }).then((socket) => {
    socket.on("error", () => {})
    socket.write("x")
    return Promise.race([
      Loopback.readExactly(socket, 1, 10_000).then(() => socket),
      Loopback.closed(socket, 10_000).then(() => undefined)
    ]).catch(() => undefined)
  })

const echoes = (socket: Net.Socket, text: string): Promise<boolean> => {
  socket.write(text)
  return Loopback.readExactly(socket, text.length).then((reply) => reply.toString() === text)
}

/** The echo server as a child process under a limit of `fileLimit` open files. */
const startLimited = (fileLimit: number): Effect.Effect<{ program: Processes.Program; port: number }, never, Scope.Scope> =>
  Effect.gen(function*() {
    const program = yield* Processes.start("examples/echo-server.ts", ["--port", "0"], { fileLimit })
    const port = Number((yield* Effect.promise(() => program.waitFor(Processes.listeningPort)))[1])
    return { program, port }
  })

const linesMatching = (program: Processes.Program, pattern: RegExp) => program.stderr.filter((line) => pattern.test(line))

const exhausted = /out of file descriptors \(EMFILE\)/
const available = /file descriptors available again/

/** Waits (bounded) until the program has logged a line matching `pattern`. */
const awaitLog = (program: Processes.Program, pattern: RegExp) =>
  Effect.gen(function*() {
    for (let i = 0; i < 100 && linesMatching(program, pattern).length === 0; i++) yield* Effect.sleep("100 millis")
    assert.isAbove(linesMatching(program, pattern).length, 0, `no log line ${pattern}; stderr:\n${program.stderr.join("\n")}`)
  })

describe("StreamListener", () => {
  describe("out of file descriptors", () => {
    it.live("logs it once, serves the open connections, and accepts again when descriptors free up", () =>
      Effect.gen(function*() {
        const { program, port } = yield* startLimited(64)
        // Open connections until the server has no descriptor left for the next one.
        const served: Array<Net.Socket> = []
        let refused = 0
        for (let i = 0; i < 200 && refused === 0; i++) {
          const socket = yield* Effect.promise(() => echoClient(port))
          if (socket === undefined) refused++
          else served.push(socket)
        }
        assert.strictEqual(refused, 1, "the server never ran out of descriptors")
        assert.isAbove(served.length, 10)
        // A storm of refused peers: each is closed unserved, and the log says so once, not once per peer.
        for (let i = 0; i < 20; i++) assert.isUndefined(yield* Effect.promise(() => echoClient(port)))
        yield* awaitLog(program, exhausted)
        assert.strictEqual(linesMatching(program, exhausted).length, 1, program.stderr.join("\n"))
        assert.match(linesMatching(program, exhausted)[0]!, /limit=64/)

        // The connections it has are served as before.
        for (const socket of served) assert.isTrue(yield* Effect.promise(() => echoes(socket, "still here")))

        // Descriptors free up (once the server has seen these close): new peers are served again.
        for (const socket of served.splice(0, 5)) socket.destroy()
        let again: Net.Socket | undefined
        for (let i = 0; i < 50 && again === undefined; i++) {
          yield* Effect.sleep("100 millis")
          again = yield* Effect.promise(() => echoClient(port))
        }
        assert.isDefined(again, "a new client was not served after descriptors were freed")
        assert.isTrue(yield* Effect.promise(() => echoes(again!, "back")))
        yield* awaitLog(program, available)
        for (const socket of [...served, again!]) socket.destroy()
        assert.strictEqual(program.child.exitCode, null, "the server exited")
      }), 60_000)
  })
})

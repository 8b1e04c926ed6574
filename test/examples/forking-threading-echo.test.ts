import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Loopback from "../utils/loopback.ts"
import * as Processes from "../utils/processes.ts"

describe("examples/forking-echo.ts", () => {
  it.live("two clients get replies from child processes, then the program exits 0", () =>
    Effect.gen(function*() {
      const result = yield* Processes.run("examples/forking-echo.ts", [], 60_000)
      assert.strictEqual(result.code, 0, result.stderr.join("\n"))
      const replies = result.stdout.filter((line) => line.startsWith("Client "))
      assert.strictEqual(replies.length, 2, result.stdout.join("\n"))
      const parent = Number(/parent PID (\d+)/.exec(result.stdout.join("\n"))?.[1])
      for (const line of replies) {
        const match = /^Client \d received: PID (\d+) echoes: Hello echo server!$/.exec(line)
        assert.isNotNull(match, line)
        assert.notStrictEqual(Number(match![1]), parent)
      }
    }))
})

describe("examples/threading-echo.ts", () => {
  it.live("three clients get replies naming worker threads, then the program exits 0", () =>
    Effect.gen(function*() {
      const result = yield* Processes.run("examples/threading-echo.ts", [], 60_000)
      assert.strictEqual(result.code, 0, result.stderr.join("\n"))
      const replies = result.stdout.filter((line) => line.startsWith("Client "))
      assert.strictEqual(replies.length, 3, result.stdout.join("\n"))
      replies.forEach((line, i) => assert.match(line, new RegExp(`^Client ${i + 1} received: worker thread [1-9]\\d*: Hello from Client ${i + 1}$`)))
    }))
})

describe("examples/echo-server.ts with --strategy fork and worker", () => {
  for (const strategy of ["fork", "worker"]) {
    it.live(`serves TCP with --strategy ${strategy} --workers 2 and exits 0 on SIGTERM`, () =>
      Effect.gen(function*() {
        const program = yield* Processes.start("examples/echo-server.ts", ["--port", "0", "--strategy", strategy, "--workers", "2"])
        const port = Number((yield* Effect.promise(() => program.waitFor(Processes.listeningPort)))[1])
        const reply = yield* Effect.promise(() => Loopback.exchange({ port }, `via ${strategy}`))
        assert.strictEqual(reply.toString(), `via ${strategy}`)
        program.child.kill("SIGTERM")
        assert.strictEqual(yield* Effect.promise(() => program.exited), 0)
      }))
  }
})

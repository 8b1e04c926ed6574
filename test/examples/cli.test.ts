import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Processes from "../utils/processes.ts"

// Every example program, with flags its usage must list.
const programs = [
  ["examples/echo-server.ts", ["--transport", "--strategy", "--host", "--port", "--path", "--workers"]],
  ["examples/web-server.ts", ["--strategy", "--host", "--port", "--workers"]],
  ["examples/api-server.ts", ["--strategy", "--host", "--port", "--workers"]],
  ["examples/chat.ts", ["--name", "--host", "--port", "--path", "--hub", "--redis-url"]],
  ["examples/demo.ts", ["--ephemeral"]],
  ["examples/forking-echo.ts", []],
  ["examples/threading-echo.ts", []]
] as const

describe("the example programs' command lines", () => {
  for (const [file, flags] of programs) {
    it.live(`${file} --help prints the usage and exits 0 without starting anything`, () =>
      Effect.gen(function*() {
        const result = yield* Processes.run(file, ["--help"])
        assert.strictEqual(result.code, 0, result.stderr.join("\n"))
        const usage = result.stdout.join("\n")
        assert.include(usage, "USAGE")
        for (const flag of [...flags, "--help"]) assert.include(usage, flag)
        assert.notInclude(usage, "listening on")
        assert.notInclude(usage, "received")
        assert.deepStrictEqual(result.stderr.filter((line) => line.trim() !== ""), [])
      }))

    it.live(`${file} with an unknown flag gives a one-line error naming it and a non-zero exit`, () =>
      Effect.gen(function*() {
        const line = yield* Processes.expectOneLineError(file, ["--bogus"], "Unknown option '--bogus'")
        assert.match(line, /^error: /)
      }))
  }

  for (
    const [file, args, expected] of [
      ["examples/echo-server.ts", ["--port"], "--port: missing value, expected an integer from 0 to 65535"],
      ["examples/echo-server.ts", ["--port", "1", "--port", "2"], "--port: given more than once"],
      ["examples/echo-server.ts", ["--prot", "1"], "Unknown option '--prot' (did you mean --port?)"],
      ["examples/echo-server.ts", ["tcp"], "unexpected argument \"tcp\""],
      ["examples/echo-server.ts", ["--path", ""], "--path: missing value, expected a non-empty value"],
      ["examples/chat.ts", ["--name", "server", "--hub", "pg"], "--hub: expected one of memory, redis, got \"pg\""],
      ["examples/demo.ts", ["--ephemeral=maybe"], "--ephemeral"],
      ["examples/forking-echo.ts", ["extra"], "unexpected argument \"extra\""]
    ] as const
  ) {
    it.live(`${file} ${args.join(" ")} gives the one-line error ${JSON.stringify(expected)}`, () =>
      Effect.gen(function*() {
        yield* Processes.expectOneLineError(file, args, expected)
      }))
  }
})

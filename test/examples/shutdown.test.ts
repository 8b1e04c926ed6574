import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import type * as Net from "node:net"
import * as Loopback from "../utils/loopback.ts"
import * as Processes from "../utils/processes.ts"
import { RawClient, wait } from "../servers/chat/chatClient.ts"
import * as Http from "../servers/http/support.ts"

// Every bound below is a hang guard: an idle client used to hold a shutdown for the whole drain timeout (10 s).
const bound = 5_000

const portOf = (program: Processes.Program, pattern: RegExp = Processes.listeningPort) =>
  Effect.map(Effect.promise(() => program.waitFor(pattern)), (match) => Number(match[1]))

/** A stream client that has had one echo and now sends nothing. */
const idleEchoClient = (target: Loopback.Target) =>
  Effect.promise(async () => {
    const socket = await Loopback.connect(target)
    socket.write("ping")
    assert.strictEqual((await Loopback.readExactly(socket, 4)).toString(), "ping")
    return socket
  })

/** A keep-alive HTTP client that has had one response and now sends nothing. */
const idleHttpClient = (port: number) =>
  Effect.promise(async () => {
    const client = await Http.connect(port)
    client.send(Http.get("/"))
    const [response] = await client.responses(1)
    assert.strictEqual(response!.status, 200)
    return client
  })

/** A logged-in chat client that says nothing. */
const idleChatClient = (port: number) =>
  Effect.promise(async () => {
    const client = await RawClient.connect({ port })
    await client.login("idle")
    return client
  })

/** A free port, the strategy, and pools of two. */
const pooled = (strategy: string) => ["--port", "0", "--strategy", strategy, "--workers", "2"]

const endOf = (socket: Net.Socket) => Effect.promise(() => Loopback.closed(socket))

describe("examples stop at once on a signal when their clients are idle", () => {
  for (
    const [strategy, signal] of [
      ["sequential", "SIGINT"],
      ["fiber", "SIGTERM"],
      ["fork", "SIGINT"],
      ["worker", "SIGTERM"]
    ] as const
  ) {
    it.live(`echo-server --strategy ${strategy}: ${signal} with an idle TCP client exits 0 and closes it`, () =>
      Effect.gen(function*() {
        const program = yield* Processes.start("examples/echo-server.ts", pooled(strategy))
        const socket = yield* idleEchoClient({ port: yield* portOf(program) })
        program.signal(signal)
        assert.strictEqual(yield* Processes.exitWithin(program, bound), 0)
        assert.strictEqual(yield* endOf(socket), "end")
      }))
  }

  it.live("echo-server --strategy fork: Ctrl-C to the whole process group (a terminal's) exits 0", () =>
    Effect.gen(function*() {
      const program = yield* Processes.start("examples/echo-server.ts", pooled("fork"), { group: true })
      const socket = yield* idleEchoClient({ port: yield* portOf(program) })
      program.signal("SIGINT")
      assert.strictEqual(yield* Processes.exitWithin(program, bound), 0)
      assert.strictEqual(yield* endOf(socket), "end")
    }))

  // under worker the main thread relays a Unix-stream connection: the worker's end of the relay must stop reading too
  for (const strategy of ["fiber", "worker"] as const) {
    it.live(`echo-server --transport unix --strategy ${strategy}: SIGINT with an idle client exits 0`, () =>
      Effect.gen(function*() {
        const path = Loopback.tempSocketPath("shutdown")
        const program = yield* Processes.start("examples/echo-server.ts", [
          "--transport",
          "unix",
          "--path",
          path,
          "--strategy",
          strategy,
          "--workers",
          "2"
        ])
        yield* Effect.promise(() => program.waitFor(new RegExp(`^listening on ${path}$`)))
        const socket = yield* idleEchoClient({ path })
        program.signal("SIGINT")
        assert.strictEqual(yield* Processes.exitWithin(program, bound), 0)
        assert.strictEqual(yield* endOf(socket), "end")
      }))
  }

  it.live("echo-server --transport udp: SIGINT exits 0", () =>
    Effect.gen(function*() {
      const program = yield* Processes.start("examples/echo-server.ts", ["--transport", "udp", "--port", "0"])
      const port = yield* portOf(program)
      const reply = yield* Effect.promise(() => Loopback.udpRequest(port, new TextEncoder().encode("dgram")))
      assert.strictEqual(reply.toString(), "dgram")
      program.signal("SIGINT")
      assert.strictEqual(yield* Processes.exitWithin(program, bound), 0)
    }))

  for (const strategy of ["sequential", "fiber", "fork", "worker"] as const) {
    it.live(`web-server --strategy ${strategy}: SIGINT with an idle keep-alive client exits 0 and closes it`, () =>
      Effect.gen(function*() {
        const program = yield* Processes.start("examples/web-server.ts", pooled(strategy))
        const client = yield* idleHttpClient(yield* portOf(program))
        program.signal("SIGINT")
        assert.strictEqual(yield* Processes.exitWithin(program, bound), 0)
        yield* Effect.promise(() => client.closed())
      }))
  }

  it.live("chat --name server: SIGINT with an idle client exits 0 after telling it goodbye", () =>
    Effect.gen(function*() {
      const program = yield* Processes.start("examples/chat.ts", ["--name", "server", "--port", "0"])
      const client = yield* idleChatClient(yield* portOf(program))
      program.signal("SIGINT")
      assert.strictEqual(yield* Processes.exitWithin(program, bound), 0)
      assert.deepStrictEqual(yield* wait(() => client.nextMatching((m) => m.type === "shutdown")), { type: "shutdown" })
      yield* wait(() => client.closed())
    }))

  it.live("demo (npm start): SIGTERM with an idle client on every stream server exits 0", () =>
    Effect.gen(function*() {
      const program = yield* Processes.start("examples/demo.ts", ["--ephemeral"])
      const line = (title: string) =>
        new RegExp(`^${title.replace(/[()]/g, "\\$&")}\\s+listening on 127\\.0\\.0\\.1:(\\d+)$`)
      const echo = yield* idleEchoClient({ port: yield* portOf(program, line("echo (tcp)")) })
      const path = (yield* Effect.promise(() => program.waitFor(/^echo \(unix\)\s+listening on (\/.+)$/)))[1]!
      const unix = yield* idleEchoClient({ path })
      const web = yield* idleHttpClient(yield* portOf(program, line("web (http)")))
      const chat = yield* idleChatClient(yield* portOf(program, line("chat (tcp, memory hub)")))
      program.signal("SIGTERM")
      assert.strictEqual(yield* Processes.exitWithin(program, bound), 0)
      assert.strictEqual(yield* endOf(echo), "end")
      assert.strictEqual(yield* endOf(unix), "end")
      yield* Effect.promise(() => web.closed())
      yield* wait(() => chat.closed())
    }))
})

/** A large payload with a pattern, so that a received prefix can be checked byte for byte. */
const payload = (() => {
  const bytes = Buffer.alloc(16 * 1024 * 1024)
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + (i >>> 12)) & 255
  return bytes
})()

/** How the connection of a blocked echo client ended, and what came back over it. */
interface EchoOutcome {
  readonly received: Buffer
  readonly ending: "end" | "reset"
}

/**
 * A client with an echo in flight: it sends `payload` in chunks and, once the first bytes came back, stops reading, so
 * that the echo blocks with a batch in hand. Resolves once the server has stopped taking bytes (the kernel has taken
 * nothing more from us for a while): `finish` then reads on until the server ends the connection.
 */
const blockedEchoClient = (port: number) =>
  Effect.promise(async () => {
    const socket = await Loopback.connect({ port })
    const chunks: Array<Buffer> = []
    const outcome = new Promise<EchoOutcome>((resolve) => {
      socket.once("end", () => resolve({ received: Buffer.concat(chunks), ending: "end" }))
      // Writing the rest of the payload fails once the server is gone (EPIPE): only a reset counts.
      socket.on("error", (error: NodeJS.ErrnoException) => {
        if (error.code === "ECONNRESET") resolve({ received: Buffer.concat(chunks), ending: "reset" })
      })
    })
    const echoing = new Promise<void>((resolve) =>
      socket.on("data", (chunk: Buffer) => {
        chunks.push(chunk)
        resolve()
      })
    )
    let written = 0
    const writeMore = () => {
      while (written < payload.length) {
        const end = Math.min(written + 64 * 1024, payload.length)
        const more = socket.write(payload.subarray(written, end))
        written = end
        if (!more) return void socket.once("drain", writeMore)
      }
    }
    writeMore()
    await echoing
    socket.pause()
    // what the kernel took from us so far: `bytesWritten` counts a write as soon as it is queued
    const taken = () => socket.bytesWritten - socket.writableLength
    let last = -1
    let still = 0
    for (let polls = 0; polls < 200 && still < 3; polls++) {
      await Http.sleep(50)
      still = taken() === last ? still + 1 : 0
      last = taken()
    }
    assert.isBelow(taken(), payload.length, "the server took the whole payload: nothing is in flight")
    return {
      socket,
      finish: Effect.promise(() => {
        socket.resume()
        return outcome
      })
    }
  })

/** The echo is what was sent, up to some point, and the connection ended in order. */
const assertOrderlyEcho = (outcome: EchoOutcome) => {
  assert.strictEqual(outcome.ending, "end")
  assert.isAbove(outcome.received.length, 0)
  const sent = payload.subarray(0, outcome.received.length)
  assert.isTrue(outcome.received.equals(sent), "the echo is a prefix of what was sent")
}

describe("echo-server: an echo under way when the signal comes is finished", () => {
  for (
    const [strategy, group] of [
      ["sequential", false],
      ["fiber", false],
      ["fork", false],
      ["worker", false],
      ["fork", true]
    ] as const
  ) {
    const to = group ? "Ctrl-C to the whole process group (a terminal's; fork children drain too)" : "SIGINT"
    it.live(`--strategy ${strategy}, ${to}: the client gets back what the server read, then an orderly end`, () =>
      Effect.gen(function*() {
        const program = yield* Processes.start("examples/echo-server.ts", pooled(strategy), { group })
        const client = yield* blockedEchoClient(yield* portOf(program))
        program.signal("SIGINT")
        const exit = yield* Effect.forkChild(Processes.exitWithin(program, bound), { startImmediately: true })
        assertOrderlyEcho(yield* client.finish)
        assert.strictEqual(yield* Fiber.join(exit), 0)
      }), 30_000)
  }
})

describe("a second signal during the drain stops at once", () => {
  for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
    it.live(`a second ${signal} while an echo waits on a client that does not read exits ${code}`, () =>
      Effect.gen(function*() {
        const program = yield* Processes.start("examples/echo-server.ts", ["--port", "0"])
        const client = yield* blockedEchoClient(yield* portOf(program))
        program.signal(signal)
        yield* Effect.promise(() => waitForStderr(program, /stopping gracefully/))
        // The drain waits for the client, which still reads nothing.
        assert.strictEqual(yield* Processes.exitWithin(program, 300), "still running")
        program.signal(signal)
        assert.strictEqual(yield* Processes.exitWithin(program, bound), code)
        client.socket.destroy()
      }), 30_000)
  }
})

const waitForStderr = (program: Processes.Program, pattern: RegExp) =>
  new Promise<void>((resolve, reject) => {
    const timer = setInterval(() => {
      if (program.stderr.some((line) => pattern.test(line))) done()
      else if (program.child.exitCode !== null) done(new Error(`exited before printing ${pattern}`))
    }, 20)
    const done = (error?: Error) => {
      clearInterval(timer)
      if (error) reject(error)
      else resolve()
    }
  })

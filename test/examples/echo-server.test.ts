import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Path from "node:path"
import * as Certificates from "../utils/certificates.ts"
import * as Loopback from "../utils/loopback.ts"
import * as Processes from "../utils/processes.ts"
import * as TlsPeers from "../utils/tlsPeers.ts"

const file = "examples/echo-server.ts"

describe("examples/echo-server.ts", () => {
  it.live("serves TCP on --port 0, prints where it listens, and exits 0 on SIGTERM", () =>
    Effect.gen(function*() {
      const program = yield* Processes.start(file, ["--port", "0"])
      const port = Number((yield* Effect.promise(() => program.waitFor(Processes.listeningPort)))[1])
      const reply = yield* Effect.promise(() => Loopback.exchange({ port }, "through the example"))
      assert.strictEqual(reply.toString(), "through the example")
      program.child.kill("SIGTERM")
      assert.strictEqual(yield* Effect.promise(() => program.exited), 0)
    }))

  it.live("serves UDP and Unix datagrams", () =>
    Effect.gen(function*() {
      const udp = yield* Processes.start(file, ["--transport", "udp", "--port", "0"])
      const port = Number((yield* Effect.promise(() => udp.waitFor(Processes.listeningPort)))[1])
      const reply = yield* Effect.promise(() => Loopback.udpRequest(port, new TextEncoder().encode("dgram")))
      assert.strictEqual(reply.toString(), "dgram")
      const path = Loopback.tempSocketPath("example-dgram")
      const unix = yield* Processes.start(file, ["--transport", "unix-dgram", "--path", path])
      yield* Effect.promise(() => unix.waitFor(new RegExp(`^listening on ${path}$`)))
      const unixReply = yield* Effect.promise(() => Loopback.unixDatagramRequest(path, new TextEncoder().encode("local")))
      assert.strictEqual(unixReply.toString(), "local")
      unix.child.kill("SIGINT")
      assert.strictEqual(yield* Effect.promise(() => unix.exited), 0)
    }))

  it.live("serves a Unix stream path with the sequential strategy", () =>
    Effect.gen(function*() {
      const path = Loopback.tempSocketPath("example")
      const program = yield* Processes.start(file, ["--transport", "unix", "--path", path, "--strategy", "sequential"])
      yield* Effect.promise(() => program.waitFor(new RegExp(`^listening on ${path}$`)))
      const reply = yield* Effect.promise(() => Loopback.exchange({ path }, "unix stream"))
      assert.strictEqual(reply.toString(), "unix stream")
    }))

  it.live("--tls-cert/--tls-key: serves TLS; SIGHUP reloads the files for new connections", () =>
    Effect.gen(function*() {
      const certs = yield* Certificates.make
      const certPath = Path.join(certs.dir, "live.crt")
      const keyPath = Path.join(certs.dir, "live.key")
      Fs.copyFileSync(certs.server.certPath, certPath)
      Fs.copyFileSync(certs.server.keyPath, keyPath)
      const program = yield* Processes.start(file, ["--port", "0", "--tls-cert", certPath, "--tls-key", keyPath])
      const port = Number((yield* Effect.promise(() => program.waitFor(Processes.listeningPort)))[1])
      const reply = yield* Effect.promise(() => TlsPeers.exchange({ port }, "through tls", { ca: certs.ca.cert }))
      assert.strictEqual(reply.data.toString(), "through tls")
      assert.strictEqual(reply.serial, certs.server.serial)
      Fs.copyFileSync(certs.renewed.certPath, certPath)
      Fs.copyFileSync(certs.renewed.keyPath, keyPath)
      program.child.kill("SIGHUP")
      yield* Effect.promise(() => program.waitForStderr(/TLS certificate reloaded/))
      const after = yield* Effect.promise(() => TlsPeers.exchange({ port }, "renewed", { ca: certs.ca.cert }))
      assert.strictEqual(after.serial, certs.renewed.serial)
      program.child.kill("SIGTERM")
      assert.strictEqual(yield* Effect.promise(() => program.exited), 0)
    }))

  it.live("--tls-cert without --tls-key, or with UDP, or a missing file: a one-line error", () =>
    Effect.gen(function*() {
      const certs = yield* Certificates.make
      yield* Processes.expectOneLineError(file, ["--tls-cert", certs.server.certPath], "--tls-key: required with --tls-cert")
      yield* Processes.expectOneLineError(
        file,
        ["--transport", "udp", ...Certificates.flagsOf(certs.server)],
        "TLS needs --transport tcp or unix"
      )
      yield* Processes.expectOneLineError(
        file,
        ["--tls-cert", certs.server.certPath, "--tls-key", `${certs.dir}/missing.key`],
        "missing.key"
      )
    }))

  for (const [args, expected] of [
    [["--port", "99999"], "--port: expected an integer from 0 to 65535"],
    [["--port", "abc"], "--port: expected an integer"],
    [["--transport", "carrier-pigeon"], "--transport: expected one of tcp, udp, unix, unix-dgram"],
    [["--strategy", "magic"], "--strategy: expected one of"],
    [["--bogus", "1"], "Unknown option '--bogus'"],
    [["--workers", "0"], "--workers: expected an integer from 1"]
  ] as const) {
    it.live(`bad arguments ${args.join(" ")} give a one-line error and a non-zero exit`, () =>
      Effect.gen(function*() {
        const line = yield* Processes.expectOneLineError(file, args, expected)
        assert.match(line, /^error: /)
      }))
  }

  it.live("a busy port gives a one-line error and a non-zero exit", () =>
    Effect.gen(function*() {
      const busy = Net.createServer()
      const port = yield* Effect.promise(() =>
        new Promise<number>((resolve) => busy.listen(0, "127.0.0.1", () => resolve((busy.address() as Net.AddressInfo).port)))
      )
      const expected = [`cannot listen on 127.0.0.1:${port}`, "EADDRINUSE"]
      yield* Processes.expectOneLineError(file, ["--port", String(port)], expected).pipe(
        Effect.ensuring(Effect.sync(() => busy.close()))
      )
    }))
})

describe("examples/echo-server.ts output", () => {
  it.live("keeps stdout for the program's own lines: logs go to stderr", () =>
    Effect.gen(function*() {
      const program = yield* Processes.start(file, ["--port", "0"])
      yield* Effect.promise(() => program.waitFor(Processes.listeningPort))
      program.child.kill("SIGINT")
      yield* Effect.promise(() => program.exited)
      assert.deepStrictEqual(program.stdout.filter((line) => line !== ""), [program.stdout[0]])
      assert.isTrue(program.stderr.some((line) => line.includes("message=serving")))
    }))
})

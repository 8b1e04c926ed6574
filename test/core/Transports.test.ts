import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { Buffer } from "node:buffer"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Listener from "../../src/core/Listener.ts"
import * as Strategy from "../../src/core/Strategy.ts"
import * as StreamListener from "../../src/core/StreamListener.ts"
import * as DatagramListener from "../../src/core/DatagramListener.ts"
import * as Transport from "../../src/core/Transport.ts"
import * as EchoServer from "../../src/servers/echo/EchoServer.ts"
import * as Loopback from "../utils/loopback.ts"

const allBytes = Uint8Array.from({ length: 256 }, (_, i) => i)

describe("stream transports", () => {
  for (const make of [() => Transport.tcp(), () => Transport.unix({ path: Loopback.tempSocketPath("echo") })]) {
    const name = make()._tag
    describe(name, () => {
      it.live("round-trips a message and closes after the client half-closes", () =>
        Effect.gen(function*() {
          const server = yield* Loopback.startServer(make(), Strategy.layerFiber(), EchoServer.streamHandler)
          const reply = yield* Effect.promise(() => Loopback.exchange(Loopback.targetOf(server.address), "hello, echo"))
          assert.strictEqual(reply.toString(), "hello, echo")
        }))

      it.live("echoes all 256 byte values unchanged", () =>
        Effect.gen(function*() {
          const server = yield* Loopback.startServer(make(), Strategy.layerFiber(), EchoServer.streamHandler)
          const reply = yield* Effect.promise(() => Loopback.exchange(Loopback.targetOf(server.address), allBytes))
          assert.deepStrictEqual(new Uint8Array(reply), allBytes)
        }))

      it.live("echoes an 8 MiB payload", () =>
        Effect.gen(function*() {
          const server = yield* Loopback.startServer(make(), Strategy.layerFiber(), EchoServer.streamHandler)
          const payload = Loopback.bytes(8 * 1024 * 1024, 7)
          const reply = yield* Effect.promise(() => Loopback.exchange(Loopback.targetOf(server.address), payload, 60_000))
          assert.strictEqual(reply.length, payload.length)
          assert.isTrue(Buffer.from(payload).equals(reply))
        }))

      it.live("4 clients streaming 16 MiB each at once get their own bytes back, in order", () =>
        Effect.gen(function*() {
          // The echo reads into buffers it reuses; this checks that no write ever sees a buffer
          // that a later read has refilled, with several busy connections and full send buffers.
          const server = yield* Loopback.startServer(make(), Strategy.layerFiber(), EchoServer.streamHandler)
          const target = Loopback.targetOf(server.address)
          const payloads = Array.from({ length: 4 }, (_, i) => Loopback.bytes(16 * 1024 * 1024, 101 + i))
          const replies = yield* Effect.promise(() => Promise.all(payloads.map((p) => Loopback.exchange(target, p, 60_000))))
          replies.forEach((reply, i) => assert.isTrue(Buffer.from(payloads[i]!).equals(reply), `client ${i}`))
        }), 90_000)

      it.live("serves 50 concurrent clients, each getting its own bytes back", () =>
        Effect.gen(function*() {
          const server = yield* Loopback.startServer(make(), Strategy.layerFiber(), EchoServer.streamHandler)
          const target = Loopback.targetOf(server.address)
          const payloads = Array.from({ length: 50 }, (_, i) => Loopback.bytes(10_000 + i * 997, i + 1))
          const replies = yield* Effect.promise(() => Promise.all(payloads.map((p) => Loopback.exchange(target, p))))
          replies.forEach((reply, i) => assert.isTrue(Buffer.from(payloads[i]!).equals(reply), `client ${i}`))
        }))

      it.live("half-close: the client ends its side and still receives the whole echo, then EOF", () =>
        Effect.gen(function*() {
          const server = yield* Loopback.startServer(make(), Strategy.layerFiber(), EchoServer.streamHandler)
          const socket = yield* Effect.promise(() => Loopback.connect(Loopback.targetOf(server.address)))
          const payload = Loopback.bytes(1024 * 1024, 3)
          const received = new Promise<{ data: Buffer; ended: boolean }>((resolve) => {
            const chunks: Array<Buffer> = []
            socket.on("data", (c: Buffer) => chunks.push(c))
            socket.on("end", () => resolve({ data: Buffer.concat(chunks), ended: true }))
          })
          socket.end(payload)
          const result = yield* Effect.promise(() => received)
          socket.destroy()
          assert.isTrue(result.ended)
          assert.isTrue(Buffer.from(payload).equals(result.data))
        }))

      it.live("an abrupt reset by one client does not disturb the others", () =>
        Effect.gen(function*() {
          const server = yield* Loopback.startServer(make(), Strategy.layerFiber(), EchoServer.streamHandler)
          const target = Loopback.targetOf(server.address)
          const steady = yield* Effect.promise(() => Loopback.connect(target))
          const rude = yield* Effect.promise(() => Loopback.connect(target))
          rude.write(Loopback.bytes(256 * 1024, 9))
          if ("resetAndDestroy" in rude && target && !("path" in target)) rude.resetAndDestroy()
          else rude.destroy()
          steady.write("still here")
          const echoed = yield* Effect.promise(() => Loopback.readExactly(steady, "still here".length))
          assert.strictEqual(echoed.toString(), "still here")
          steady.destroy()
          const after = yield* Effect.promise(() => Loopback.exchange(target, "after the reset"))
          assert.strictEqual(after.toString(), "after the reset")
        }))
    })
  }
})

describe("datagram transports", () => {
  it.live("UDP over IPv4 round-trips every byte value", () =>
    Effect.gen(function*() {
      const server = yield* Loopback.startServer(Transport.udp(), Strategy.layerFiber(), EchoServer.datagramHandler)
      const port = (server.address as { port: number }).port
      const reply = yield* Effect.promise(() => Loopback.udpRequest(port, allBytes))
      assert.deepStrictEqual(new Uint8Array(reply), allBytes)
    }))

  it.live("UDP over IPv6 round-trips", () =>
    Effect.gen(function*() {
      const server = yield* Loopback.startServer(Transport.udp({ host: "::1" }), Strategy.layerFiber(), EchoServer.datagramHandler)
      assert.strictEqual(server.address._tag, "InetAddressV6")
      const port = (server.address as { port: number }).port
      const reply = yield* Effect.promise(() => Loopback.udpRequest(port, new TextEncoder().encode("six"), "::1"))
      assert.strictEqual(reply.toString(), "six")
    }))

  it.live("UDP echoes many datagrams from many clients", () =>
    Effect.gen(function*() {
      const server = yield* Loopback.startServer(Transport.udp(), Strategy.layerFiber(), EchoServer.datagramHandler)
      const port = (server.address as { port: number }).port
      const payloads = Array.from({ length: 50 }, (_, i) => Loopback.bytes(100 + i, i + 1))
      const replies = yield* Effect.promise(() => Promise.all(payloads.map((p) => Loopback.udpRequest(port, p))))
      replies.forEach((reply, i) => assert.isTrue(Buffer.from(payloads[i]!).equals(reply)))
    }))

  it.live("Unix datagram round-trips every byte value and removes its path on close", () =>
    Effect.gen(function*() {
      const path = Loopback.tempSocketPath("dgram")
      yield* Effect.scoped(Effect.gen(function*() {
        yield* Loopback.startServer(Transport.unixDatagram({ path }), Strategy.layerFiber(), EchoServer.datagramHandler)
        const reply = yield* Effect.promise(() => Loopback.unixDatagramRequest(path, allBytes))
        assert.deepStrictEqual(new Uint8Array(reply), allBytes)
      }))
      assert.isFalse(Fs.existsSync(path))
    }))
})

describe("binding", () => {
  it.live("a TCP port in use is a BindError with kind AddressInUse", () =>
    Effect.gen(function*() {
      const first = yield* StreamListener.make(Transport.tcp())
      const port = (first.address as { port: number }).port
      const error = yield* StreamListener.make(Transport.tcp({ port })).pipe(Effect.flip)
      assert.instanceOf(error, Listener.BindError)
      assert.strictEqual(error.kind, "AddressInUse")
      assert.include(error.message, `127.0.0.1:${port}`)
    }))

  it.live("reusePort lets two TCP listeners bind the same port; without it the port is refused", () =>
    Effect.gen(function*() {
      const first = yield* StreamListener.make(Transport.tcp({ reusePort: true }))
      const port = (first.address as { port: number }).port
      const second = yield* StreamListener.make(Transport.tcp({ port, reusePort: true }))
      assert.strictEqual((second.address as { port: number }).port, port)
      // Without the option the same port is refused.
      const refused = yield* StreamListener.make(Transport.tcp({ port })).pipe(Effect.flip)
      assert.strictEqual(refused.kind, "AddressInUse")
    }))

  it.live("a UDP port in use is a BindError with kind AddressInUse", () =>
    Effect.gen(function*() {
      const first = yield* DatagramListener.make(Transport.udp())
      const port = (first.address as { port: number }).port
      const error = yield* DatagramListener.make(Transport.udp({ port })).pipe(Effect.flip)
      assert.strictEqual(error.kind, "AddressInUse")
    }))

  it.live("a stale Unix socket file nobody listens on is replaced", () =>
    Effect.gen(function*() {
      const path = Loopback.tempSocketPath("stale")
      // Leave a socket file behind, as a crashed server would.
      const stale = Net.createServer()
      yield* Effect.promise(() => new Promise<void>((resolve) => stale.listen(path, resolve)))
      // A clean close unlinks the file; keep a hard link to put it back, as a crash would leave it.
      Fs.linkSync(path, `${path}.keep`)
      yield* Effect.promise(() => new Promise<void>((resolve) => stale.close(() => resolve())))
      Fs.renameSync(`${path}.keep`, path)
      assert.isTrue(Fs.lstatSync(path).isSocket())
      const listener = yield* StreamListener.make(Transport.unix({ path }))
      assert.strictEqual(listener.address._tag, "UnixPathAddress")
    }))

  it.live("a Unix path with a live server is a BindError with kind PathInUse", () =>
    Effect.gen(function*() {
      const path = Loopback.tempSocketPath("live")
      yield* StreamListener.make(Transport.unix({ path }))
      const error = yield* StreamListener.make(Transport.unix({ path })).pipe(Effect.flip)
      assert.strictEqual(error.kind, "PathInUse")
      const dgramPath = Loopback.tempSocketPath("live-dgram")
      yield* DatagramListener.make(Transport.unixDatagram({ path: dgramPath }))
      const dgramError = yield* DatagramListener.make(Transport.unixDatagram({ path: dgramPath })).pipe(Effect.flip)
      assert.strictEqual(dgramError.kind, "PathInUse")
    }))

  it.live("a path that is a regular file is never removed", () =>
    Effect.gen(function*() {
      const path = Loopback.tempSocketPath("file")
      Fs.writeFileSync(path, "precious")
      const error = yield* StreamListener.make(Transport.unix({ path })).pipe(Effect.flip)
      assert.strictEqual(error.kind, "PathInUse")
      assert.strictEqual(Fs.readFileSync(path, "utf8"), "precious")
    }))
})

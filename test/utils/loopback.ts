/**
 * Loopback clients for tests: raw `node:net`, `node:dgram` and Unix-datagram peers, each bounded
 * by a timeout so a broken server fails the test instead of hanging it.
 */
import { Context, Effect, Layer, Scope, Stream } from "effect"
import type { NetAddress } from "effect/net"
import { DgramSocket } from "node-unix-socket"
import { Buffer } from "node:buffer"
import * as Dgram from "node:dgram"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import type * as Handler from "../../src/core/Handler.ts"
import * as Listener from "../../src/core/Listener.ts"
import * as Server from "../../src/core/Server.ts"
import type * as Strategy from "../../src/core/Strategy.ts"
import * as StreamListener from "../../src/core/StreamListener.ts"
import * as DatagramListener from "../../src/core/DatagramListener.ts"
import * as Transport from "../../src/core/Transport.ts"

/** Where a stream client connects. */
export type Target = { readonly port: number; readonly host?: string } | { readonly path: string }

/** The connect target of a bound address. */
export const targetOf = (address: NetAddress.SocketAddress): Target =>
  address._tag === "UnixPathAddress" ? { path: address.path } : { host: "127.0.0.1", port: address.port }

/** A fresh temp path for a Unix socket. */
export const tempSocketPath = (name: string): string => {
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "netkit-"))
  return Path.join(dir, `${name}.sock`)
}

const connectOptions = (target: Target): Net.NetConnectOpts =>
  "path" in target ? { path: target.path } : { host: target.host ?? "127.0.0.1", port: target.port }

/** Connects, sends `payload`, half-closes, and collects everything until the server closes. */
export const exchange = (target: Target, payload: Uint8Array | string, timeoutMs = 20_000): Promise<Buffer> =>
  sendAndCollect(Net.connect(connectOptions(target)), payload, timeoutMs)

/** Sends `payload` on `socket`, half-closes, and collects everything until the server closes. */
export const sendAndCollect = (socket: Net.Socket, payload: Uint8Array | string, timeoutMs = 20_000): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`exchange timed out after ${timeoutMs} ms (${Buffer.concat(chunks).length} bytes received)`))
    }, timeoutMs)
    socket.on("data", (chunk: Buffer) => chunks.push(chunk))
    socket.on("error", (error) => {
      clearTimeout(timer)
      reject(error)
    })
    socket.on("end", () => {
      clearTimeout(timer)
      socket.destroy()
      resolve(Buffer.concat(chunks))
    })
    socket.end(payload)
  })

/** Opens a connection and resolves once connected. */
export const connect = (target: Target, timeoutMs = 10_000): Promise<Net.Socket> =>
  opened(Net.connect(connectOptions(target)), "connect", timeoutMs)

/** Resolves with `socket` once it emits `event` (`connect`, `secureConnect`); rejects on an error or after `timeoutMs`. */
export const opened = <S extends Net.Socket>(socket: S, event: string, timeoutMs = 10_000): Promise<S> =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`${event} timed out`))
    }, timeoutMs)
    socket.once(event, () => {
      clearTimeout(timer)
      resolve(socket)
    })
    socket.once("error", (error) => {
      clearTimeout(timer)
      reject(error)
    })
  })

/** Reads from an open socket until `length` bytes arrived. */
export const readExactly = (socket: Net.Socket, length: number, timeoutMs = 10_000): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    let size = 0
    const done = (error?: Error) => {
      clearTimeout(timer)
      socket.off("data", onData)
      socket.off("end", onEnd)
      if (error) reject(error)
      else resolve(Buffer.concat(chunks))
    }
    const onData = (chunk: Buffer) => {
      chunks.push(chunk)
      size += chunk.length
      if (size >= length) done()
    }
    const onEnd = () => done(new Error(`connection ended after ${size} of ${length} bytes`))
    const timer = setTimeout(() => done(new Error(`read timed out after ${size} of ${length} bytes`)), timeoutMs)
    socket.on("data", onData)
    socket.on("end", onEnd)
  })

/** Collects everything the socket receives until the server ends it. */
export const readUntilEnd = (socket: Net.Socket, timeoutMs = 20_000): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    const timer = setTimeout(() => reject(new Error("the server did not end the connection in time")), timeoutMs)
    socket.on("data", (chunk: Buffer) => chunks.push(chunk))
    socket.once("end", () => {
      clearTimeout(timer)
      resolve(Buffer.concat(chunks))
    })
  })

/** Resolves when the socket is closed by the server (end or error). */
export const closed = (socket: Net.Socket, timeoutMs = 10_000): Promise<"end" | "error"> =>
  new Promise((resolve, reject) => {
    if (socket.destroyed) return resolve("end")
    const timer = setTimeout(() => reject(new Error("socket was not closed in time")), timeoutMs)
    socket.resume()
    socket.once("end", () => {
      clearTimeout(timer)
      resolve("end")
    })
    socket.once("error", () => {
      clearTimeout(timer)
      resolve("error")
    })
    socket.once("close", () => {
      clearTimeout(timer)
      resolve("end")
    })
  })

/** Sends one UDP datagram and waits for one reply. */
export const udpRequest = (port: number, payload: Uint8Array, host = "127.0.0.1", timeoutMs = 5_000): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const socket = Dgram.createSocket(host.includes(":") ? "udp6" : "udp4")
    const timer = setTimeout(() => {
      socket.close()
      reject(new Error("udp reply timed out"))
    }, timeoutMs)
    socket.once("message", (message) => {
      clearTimeout(timer)
      socket.close()
      resolve(message)
    })
    socket.send(payload, port, host)
  })

/** Sends one Unix datagram from a bound temp path and waits for one reply. */
export const unixDatagramRequest = (path: string, payload: Uint8Array, timeoutMs = 5_000): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const own = tempSocketPath("client")
    const socket = new DgramSocket()
    socket.bind(own)
    const finish = () => {
      clearTimeout(timer)
      socket.close()
      Fs.rmSync(own, { force: true })
    }
    const timer = setTimeout(() => {
      finish()
      reject(new Error("unix datagram reply timed out"))
    }, timeoutMs)
    socket.once("data", (message: Buffer) => {
      finish()
      resolve(message)
    })
    const buffer = Buffer.from(payload)
    socket.sendTo(buffer, 0, buffer.length, path, (error) => {
      if (error) {
        finish()
        reject(error)
      }
    })
  })

/** A listener layer for any transport. */
export const listenerLayer = (transport: Transport.Transport): Layer.Layer<Listener.Listener, Listener.BindError> =>
  Transport.isStream(transport) ? StreamListener.layer(transport) : DatagramListener.layer(transport)

/**
 * The same listener, except that its connections carry no socket for another process or thread: what a
 * listener not built on Node sockets would yield.
 */
export const withoutSockets = (
  layer: Layer.Layer<Listener.Listener, Listener.BindError>
): Layer.Layer<Listener.Listener, Listener.BindError> => {
  const strip = (incoming: Listener.Incoming): Listener.Incoming =>
    incoming._tag === "IncomingDatagram" ? incoming : {
      _tag: "IncomingConnection",
      id: incoming.id,
      transport: incoming.transport,
      localAddress: incoming.localAddress,
      remoteAddress: incoming.remoteAddress,
      peer: incoming.peer,
      open: incoming.open,
      reject: incoming.reject
    }
  return Layer.effect(
    Listener.Listener,
    Effect.map(Listener.Listener, (listener) =>
      Listener.Listener.of({
        ...listener,
        accept: Effect.map(listener.accept, strip),
        incoming: Stream.map(listener.incoming, strip)
      }))
  ).pipe(Layer.provide(layer))
}

/**
 * Starts a server serving `handler` in the test's scope and returns it. Releasing the scope shuts it down.
 */
export const startServer = <E>(
  transport: Transport.Transport,
  strategy: Layer.Layer<Strategy.Strategy>,
  handler: Handler.Handler<E, never>,
  options?: Server.Options
): Effect.Effect<Server.Server["Service"], Listener.BindError, Scope.Scope> =>
  startServerOn(listenerLayer(transport), strategy, handler, options)

/** `startServer` over a listener layer of your own. */
export const startServerOn = <E>(
  listener: Layer.Layer<Listener.Listener, Listener.BindError>,
  strategy: Layer.Layer<Strategy.Strategy>,
  handler: Handler.Handler<E, never>,
  options?: Server.Options
): Effect.Effect<Server.Server["Service"], Listener.BindError, Scope.Scope> =>
  Effect.gen(function*() {
    const context = yield* Layer.build(
      Server.layer(options).pipe(Layer.provide([listener, strategy]))
    )
    const instance = Context.get(context, Server.Server)
    yield* Effect.forkScoped(instance.serve(handler).pipe(Effect.orDie), { startImmediately: true })
    return instance
  })

/** Random bytes of a given size, deterministic per seed. */
export const bytes = (size: number, seed = 1): Uint8Array => {
  const out = new Uint8Array(size)
  let x = seed * 2654435761 >>> 0
  for (let i = 0; i < size; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    out[i] = x & 0xff
  }
  return out
}

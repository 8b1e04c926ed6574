/**
 * Test helpers for the chat server: a raw frame client on `node:net` (it speaks the wire protocol byte for byte,
 * independent of `ChatClient`) and a server started in the test's scope.
 */
import { Context, Effect, Layer, Result } from "effect"
import type { Scope } from "effect"
import * as Net from "node:net"
import * as Server from "../../../src/core/Server.ts"
import * as Strategy from "../../../src/core/Strategy.ts"
import * as StreamListener from "../../../src/core/StreamListener.ts"
import type * as Tls from "../../../src/core/Tls.ts"
import * as Transport from "../../../src/core/Transport.ts"
import * as ChatMessage from "../../../src/protocol/ChatMessage.ts"
import * as LengthPrefixedFraming from "../../../src/protocol/LengthPrefixedFraming.ts"
import * as ChatHub from "../../../src/servers/chat/ChatHub.ts"
import * as ChatServer from "../../../src/servers/chat/ChatServer.ts"
import * as Loopback from "../../utils/loopback.ts"

export const frame = (json: unknown): Uint8Array =>
  LengthPrefixedFraming.encodeFrame(new TextEncoder().encode(typeof json === "string" ? json : JSON.stringify(json)))

/** A raw chat client: frames in, parsed server messages queued in arrival order. */
export class RawClient {
  readonly received: Array<ChatMessage.ServerMessage> = []
  private cursor = 0
  private readonly decoder = LengthPrefixedFraming.makeDecoder({ maxFrameBytes: 1 << 20 })
  private waiters = new Set<() => void>()
  ended = false
  readonly socket: Net.Socket

  constructor(socket: Net.Socket) {
    this.socket = socket
    socket.on("data", (chunk: Buffer) => {
      const frames = Result.getOrThrow(this.decoder.push(chunk))
      for (const f of frames) this.received.push(Result.getOrThrow(ChatMessage.decodeServerMessage(f)))
      this.wake()
    })
    const onEnd = () => {
      this.ended = true
      this.wake()
    }
    socket.on("end", onEnd)
    socket.on("close", onEnd)
    socket.on("error", onEnd)
  }

  static connect = (target: Loopback.Target): Promise<RawClient> =>
    Loopback.connect(target).then((socket) => new RawClient(socket))

  private wake() {
    for (const waiter of [...this.waiters]) waiter()
  }

  send(message: unknown): void {
    this.socket.write(frame(message))
  }

  sendRaw(bytes: Uint8Array): void {
    this.socket.write(bytes)
  }

  /** Resolves when `check` returns a value (re-checked on every arrival), or rejects after the timeout. */
  private until<A>(check: () => A | undefined, what: string, timeoutMs: number): Promise<A> {
    return new Promise((resolve, reject) => {
      const attempt = () => {
        const value = check()
        if (value !== undefined) {
          clearTimeout(timer)
          this.waiters.delete(attempt)
          resolve(value)
        }
      }
      const timer = setTimeout(() => {
        this.waiters.delete(attempt)
        reject(new Error(`timed out waiting for ${what}; received ${JSON.stringify(this.received.slice(this.cursor))}`))
      }, timeoutMs)
      this.waiters.add(attempt)
      attempt()
    })
  }

  /** Waits until `predicate` holds for everything received so far (taking nothing). */
  seen(predicate: (received: ReadonlyArray<ChatMessage.ServerMessage>) => boolean, timeoutMs = 5_000): Promise<true> {
    return this.until(() => predicate(this.received) ? true : undefined, "a condition", timeoutMs)
  }

  /** The next message not yet taken. */
  next(timeoutMs = 5_000): Promise<ChatMessage.ServerMessage> {
    return this.until(() => this.cursor < this.received.length ? this.received[this.cursor++] : undefined, "a message", timeoutMs)
  }

  /** Skips messages until one matches. */
  nextMatching(predicate: (m: ChatMessage.ServerMessage) => boolean, timeoutMs = 5_000) {
    return this.until(() => {
      while (this.cursor < this.received.length) {
        const m = this.received[this.cursor++]!
        if (predicate(m)) return m
      }
      return undefined
    }, "a matching message", timeoutMs)
  }

  /** Collects `n` messages of a type, in order. */
  async collect(type: ChatMessage.ServerMessage["type"], n: number, timeoutMs = 10_000) {
    const out: Array<ChatMessage.ServerMessage> = []
    const deadline = Date.now() + timeoutMs
    while (out.length < n) out.push(await this.nextMatching((m) => m.type === type, Math.max(1, deadline - Date.now())))
    return out
  }

  /** Resolves once the server closed the connection. */
  closed(timeoutMs = 5_000): Promise<true> {
    return this.until(() => this.ended ? true : undefined, "the connection to close", timeoutMs)
  }

  /** Logs in and returns the welcome. */
  async login(name: string): Promise<ChatMessage.Welcome> {
    this.send({ type: "login", name })
    const welcome = await this.next()
    if (welcome.type !== "welcome") throw new Error(`expected welcome, got ${JSON.stringify(welcome)}`)
    return welcome
  }

  destroy() {
    this.socket.destroy()
  }
}

/** A running chat server for a test. */
export interface ChatFixture {
  readonly target: Loopback.Target
  readonly room: ChatServer.ChatRoom["Service"]
  readonly server: Server.Server["Service"]
  readonly client: (name?: string) => Effect.Effect<RawClient, never, Scope.Scope>
}

/**
 * Starts a chat server (fiber strategy) in the test's scope. When the scope closes, the room shuts down first
 * (everyone gets `shutdown`), then the server.
 */
export const startChat = (options?: {
  readonly room?: ChatServer.Options | undefined
  readonly transport?: Transport.StreamTransport | undefined
  readonly hub?: Context.Context<ChatHub.ChatHub> | undefined
  /** Serve over TLS (raw clients cannot connect then). */
  readonly tls?: Tls.Config | undefined
}): Effect.Effect<ChatFixture, never, Scope.Scope> =>
  Effect.gen(function*() {
    const transport = options?.transport ?? Transport.tcp()
    const listener = options?.tls === undefined
      ? Loopback.listenerLayer(transport)
      : StreamListener.layer(transport, { tls: options.tls })
    const serverContext = yield* Layer.build(
      Server.layer().pipe(Layer.provide([listener, Strategy.layerFiber()]))
    ).pipe(Effect.orDie)
    const server = Context.get(serverContext, Server.Server)
    const hub = options?.hub ?? Context.make(ChatHub.ChatHub, yield* ChatHub.makeMemory)
    const roomContext = yield* Layer.build(ChatServer.layer(options?.room).pipe(Layer.provide(Layer.succeedContext(hub))))
    const room = Context.get(roomContext, ChatServer.ChatRoom)
    yield* Effect.forkScoped(
      server.serve(ChatServer.handler).pipe(Effect.provideContext(roomContext), Effect.orDie),
      { startImmediately: true }
    )
    yield* Effect.addFinalizer(() => room.shutdown)
    const target = Loopback.targetOf(server.address)
    return {
      target,
      room,
      server,
      client: (name) =>
        Effect.acquireRelease(
          Effect.promise(async () => {
            const client = await RawClient.connect(target)
            if (name !== undefined) await client.login(name)
            return client
          }),
          (client) => Effect.sync(() => client.destroy())
        )
    }
  })

/** Awaits a promise in a test. */
export const wait = <A>(promise: () => Promise<A>): Effect.Effect<A> => Effect.promise(promise)

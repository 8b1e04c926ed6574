/**
 * `HttpServerRequest.upgrade`: the connection of a protocol-switch request becomes an effect `Socket`.
 *
 * The request loop has stopped parsing at the end of that request (the parser holds what the client sent after it),
 * so nothing the client sends in the new protocol is read as HTTP. As with effect's Node server, nothing is sent
 * before the socket is used: acquiring its reader (or writing) discards the rest of the request body, answers
 * `101 Switching Protocols` and hands over the held bytes, then the connection's own bytes.
 *
 * - `Upgrade: websocket`: the handshake and the framing are the `ws` library's (as in `NodeHttpServer`), over a
 *   `Duplex` of the connection, so it works the same under every strategy.
 * - Any other protocol: a raw socket over the connection; `upgradeWith({ headers })` adds headers to the `101`.
 */
import { Cause, Deferred, Effect, Exit, Fiber, Result } from "effect"
import type { Context, Scope } from "effect"
import type { NonEmptyReadonlyArray } from "effect/Array"
import type { Headers, HttpServerRequest } from "effect/http"
import { HttpServerError } from "effect/http"
import { Socket } from "effect/socket"
import { Buffer } from "node:buffer"
import { Duplex } from "node:stream"
import type { WebSocket, WebSocketServer } from "@effect/platform-node/NodeWS"
import * as Connection from "../../../core/Connection.ts"
import { encodeResponseHead } from "../../../protocol/http/ResponseHead.ts"
import { drain } from "../../http/internal/connectionState.ts"
import { StopReason } from "../../http/internal/supervisor.ts"
import type { Exchange } from "./exchange.ts"

/** What upgrades need of their server: its WebSocket server, made on first use. */
export interface UpgradeContext {
  readonly webSocketServer: Effect.Effect<WebSocketServer>
}

// The transport sets these, and a body cannot follow the `101`.
const reservedHeaders = new Set(["connection", "upgrade", "content-length", "transfer-encoding"])

const upgradeError = (request: HttpServerRequest.HttpServerRequest, description: string, cause?: unknown) =>
  new HttpServerError.HttpServerError({
    reason: new HttpServerError.InternalError({ request, description, cause })
  })

const openError = (message: string, cause?: unknown) =>
  new Socket.SocketError({
    reason: new Socket.SocketOpenError({ kind: "Unknown", cause: cause ?? new Error(message) })
  })

const closeCode = (exit: Exit.Exit<unknown, unknown>): number =>
  Exit.isSuccess(exit) ? 1000 : Cause.hasInterruptsOnly(exit.cause) ? 1001 : 1011

/**
 * Makes the body of the switch request read to its end (discarding what the application left), marks the exchange
 * switched and returns the bytes the client sent after the request. Fails when the body cannot be read to its end.
 */
const switchOver = (exchange: Exchange): Effect.Effect<Uint8Array, Socket.SocketError> =>
  Effect.flatMap(Effect.orElseSucceed(drain(exchange.state), () => false), (complete) => {
    if (!complete) return Effect.fail(openError("the request body did not end before the protocol switch"))
    exchange.switched = true
    exchange.switchedDone ??= Deferred.makeUnsafe<void>()
    // the request is over; the new protocol's conversation has no HTTP deadline
    exchange.state.setDeadline(0, StopReason.Request)
    return Effect.succeed(exchange.state.parser.takeRemaining())
  })

const finishSwitch = (exchange: Exchange): void => {
  if (exchange.switchedDone !== undefined) Deferred.doneUnsafe(exchange.switchedDone, Exit.void)
}

/** The socket of `request.upgradeWith({ headers })`. */
export const upgradeWith = (
  exchange: Exchange,
  request: HttpServerRequest.HttpServerRequest,
  headers: Headers.Headers,
  context: UpgradeContext
): Effect.Effect<Socket.Socket, HttpServerError.HttpServerError> => {
  if (!exchange.head.upgrade) return Effect.fail(upgradeError(request, "not an upgradeable ServerRequest"))
  if (exchange.switched) return Effect.fail(upgradeError(request, "the connection was upgraded already"))
  const protocol = exchange.headers.upgrade
  if (protocol === undefined || protocol.toLowerCase() === "websocket") {
    return Object.keys(headers).length === 0
      ? webSocket(exchange, request, context)
      : Effect.fail(upgradeError(request, "WebSocket upgrades do not support custom response headers"))
  }
  const fields: Array<readonly [string, string]> = [["Connection", "Upgrade"], ["Upgrade", protocol]]
  for (const name in headers) {
    if (reservedHeaders.has(name)) return Effect.fail(upgradeError(request, `Upgrade responses cannot set the ${name} header`))
    fields.push([name, headers[name]!])
  }
  const head = encodeResponseHead({ status: 101, headers: fields })
  if (Result.isFailure(head)) return Effect.fail(upgradeError(request, "Invalid upgrade response header", head.failure))
  return Effect.succeed(rawSocket(exchange, head.success))
}

/** A raw socket over the connection: `101` with `head`, then the held bytes, then the connection's. */
const rawSocket = (exchange: Exchange, head: Uint8Array): Socket.Socket => {
  const connection = exchange.state.connection
  let leftover: Uint8Array | undefined
  let users = 0
  const open: Effect.Effect<void, Socket.SocketError> = Effect.runSync(Effect.cached(
    Effect.flatMap(switchOver(exchange), (rest) => {
      leftover = rest.length > 0 ? rest : undefined
      const out = exchange.state.out
      exchange.state.out = []
      out.push(head)
      return Effect.mapError(connection.writeAll(out), (cause) => openError("the 101 could not be written", cause))
    })
  ))
  // the conversation is over once every reader and writer the application took is released
  const use = <A>(acquire: Effect.Effect<A, Socket.SocketError>): Effect.Effect<A, Socket.SocketError, Scope.Scope> =>
    Effect.acquireRelease(
      Effect.tap(acquire, () => Effect.sync(() => users++)),
      () =>
        Effect.suspend(() => {
          if (--users > 0) return Effect.void
          return Effect.andThen(connection.end, Effect.sync(() => finishSwitch(exchange)))
        })
    )
  const pull: Effect.Effect<NonEmptyReadonlyArray<Uint8Array>, Socket.SocketError> = Effect.suspend(() => {
    if (leftover !== undefined) {
      const first = leftover
      leftover = undefined
      return Effect.succeed([first] as const)
    }
    return Effect.mapError(connection.read, (error) =>
      new Socket.SocketError({
        reason: Connection.isEndOfStream(error)
          ? new Socket.SocketCloseError({ code: 1000 })
          : new Socket.SocketReadError({ cause: error })
      }))
  })
  const writeError = (cause: unknown) => new Socket.SocketError({ reason: new Socket.SocketWriteError({ cause }) })
  const writer: Socket.Writer = {
    write: (chunk) =>
      Effect.andThen(
        open,
        Socket.isCloseEvent(chunk) ? connection.close : Effect.mapError(connection.write(chunk), writeError)
      ),
    writeAll: (chunks) => Effect.andThen(open, Effect.mapError(connection.writeAll(chunks), writeError))
  }
  return Socket.make({
    reader: use(Effect.as(open, { pull, upgrade: Socket.SocketUpgradeError.unsupported })),
    writer: Effect.orDie(use(Effect.succeed(writer)))
  })
}

/** A WebSocket over the connection, with `ws` doing the handshake on the first use of the socket. */
const webSocket = (
  exchange: Exchange,
  request: HttpServerRequest.HttpServerRequest,
  context: UpgradeContext
): Effect.Effect<Socket.Socket, HttpServerError.HttpServerError> =>
  Socket.fromWebSocket(Effect.acquireRelease(
    Effect.gen(function*() {
      const server = yield* context.webSocketServer
      const services = yield* Effect.context<never>()
      const rest = yield* switchOver(exchange)
      const duplex = new ConnectionDuplex(exchange.state.connection, services, () => finishSwitch(exchange))
      const nodeRequest = { method: exchange.method, url: request.url, headers: exchange.headers, socket: duplex }
      return yield* Effect.callback<WebSocket, Socket.SocketError>((resume) => {
        // a refused handshake answers the client and closes, without calling back
        const onClose = () => resume(Effect.fail(openError("the connection closed before the WebSocket upgrade")))
        duplex.once("close", onClose)
        server.handleUpgrade(nodeRequest as never, duplex as never, Buffer.from(rest), (ws) => {
          duplex.off("close", onClose)
          resume(Effect.succeed(ws))
        })
      })
    }),
    (ws, exit) => Effect.sync(() => ws.close(closeCode(exit)))
  ))

/**
 * A Node `Duplex` over a `Connection`, for libraries that speak to sockets (`ws`): reads are pulled from the
 * connection while the readable side wants more, writes go through the connection with its backpressure.
 */
class ConnectionDuplex extends Duplex {
  readonly #connection: Connection.Connection
  readonly #services: Context.Context<never>
  readonly #onClosed: () => void
  #pump: Fiber.Fiber<void> | undefined = undefined
  #resume: (() => void) | undefined = undefined

  constructor(connection: Connection.Connection, services: Context.Context<never>, onClosed: () => void) {
    super({ allowHalfOpen: true })
    this.#connection = connection
    this.#services = services
    this.#onClosed = onClosed
  }

  #run<A, E>(effect: Effect.Effect<A, E>): Fiber.Fiber<A, E> {
    return Effect.runForkWith(this.#services)(effect)
  }

  override _read(): void {
    const resume = this.#resume
    if (resume !== undefined) {
      this.#resume = undefined
      resume()
      return
    }
    if (this.#pump !== undefined) return
    const wanted = Effect.callback<void>((resume) => {
      this.#resume = () => resume(Effect.void)
    })
    const loop: Effect.Effect<void, Connection.ConnectionError | Cause.Done> = Effect.flatMap(
      this.#connection.read,
      (batch) => {
        let more = true
        for (const chunk of batch) more = this.push(chunk)
        return more ? loop : Effect.andThen(wanted, loop)
      }
    )
    this.#pump = this.#run(Effect.catch(loop, (error) =>
      Effect.sync(() => {
        if (Connection.isEndOfStream(error)) this.push(null)
        else this.destroy(error)
      })))
  }

  override _write(chunk: Uint8Array, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#writeAll([chunk], callback)
  }

  override _writev(
    chunks: Array<{ chunk: Uint8Array; encoding: BufferEncoding }>,
    callback: (error?: Error | null) => void
  ): void {
    this.#writeAll(chunks.map((entry) => entry.chunk), callback)
  }

  #writeAll(chunks: ReadonlyArray<Uint8Array>, callback: (error?: Error | null) => void): void {
    if (this.#connection.tryWriteAll(chunks)) return callback()
    this.#run(this.#connection.writeAll(chunks)).addObserver((exit) =>
      callback(Exit.isSuccess(exit) ? null : new Error(Cause.pretty(exit.cause)))
    )
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#run(this.#connection.end).addObserver(() => callback())
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#pump?.interruptUnsafe()
    this.#run(this.#connection.close).addObserver(() => {
      this.#onClosed()
      callback(error)
    })
  }

  // `ws` tunes the socket it is given; a connection has nothing to tune
  setTimeout(): this {
    return this
  }
  setNoDelay(): this {
    return this
  }
  setKeepAlive(): this {
    return this
  }
}

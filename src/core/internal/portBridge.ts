/**
 * A connection relayed over a `MessagePort`, for a worker thread that cannot own its socket: Node
 * moves only TCP sockets between threads, so a Unix-stream connection stays with the server and
 * the worker gets its bytes through this bridge. Both halves live here:
 * - `relay` (server side) reads and writes the real connection on the worker's behalf;
 * - `connection` (worker side) is the `Connection` the handler sees.
 *
 * Reads are credit-based: the worker sends `Read`, the server then pulls one batch from the socket
 * and transfers it; no `Read`, no socket read, so a slow handler slows its peer down through TCP
 * flow control. Writes carry transferred copies and are acknowledged once the server's socket write
 * completed (after `drain` when the send buffer was full), so a worker cannot outrun its peer;
 * `end` and `close` are acknowledged too, so all of them are applied before the handler's outcome
 * reaches the server. The fast paths fall back to their portable forms: `readWhile` loops in the
 * fiber and `tryWriteAll` always declines.
 */
import { Cause, Deferred, Effect, Queue, Schema, Stream } from "effect"
import type { NonEmptyReadonlyArray } from "effect/Array"
import type { Pull, Scope } from "effect"
import type { MessagePort } from "node:worker_threads"
import * as Connection from "../Connection.ts"
import * as Ipc from "./ipcMessages.ts"

const decodeRequest = Schema.decodeUnknownResult(Ipc.BridgeRequest)
const decodeAnswer = Schema.decodeUnknownResult(Ipc.BridgeAnswer)

/** A chunk ready to transfer: its own buffer when it covers it exactly, else an exact copy. */
const transferable = (chunk: Uint8Array): Uint8Array<ArrayBuffer> =>
  chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength && chunk.buffer instanceof ArrayBuffer
    ? chunk as Uint8Array<ArrayBuffer>
    : Ipc.ownedCopy(chunk)

/**
 * Server side: serves the worker's requests on `port` against `connection` until the scope closes
 * (the job ended), then closes the port.
 */
export const relay = (connection: Connection.Connection, port: MessagePort): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function*() {
    yield* Effect.addFinalizer(() => Effect.sync(() => port.close()))
    const reads = yield* Queue.unbounded<void>()
    const ordered = yield* Queue.unbounded<Exclude<Ipc.BridgeRequest, { readonly _tag: "Read" }>>()
    port.on("message", (raw) => {
      const decoded = decodeRequest(raw)
      if (decoded._tag === "Failure") return
      if (decoded.success._tag === "Read") Queue.offerUnsafe(reads, undefined)
      else Queue.offerUnsafe(ordered, decoded.success)
    })
    const answer = (message: Ipc.BridgeAnswer, transfer: Array<ArrayBuffer> = []) => port.postMessage(message, transfer)
    // Reader: one socket read per unit of credit.
    yield* Effect.forkScoped(Effect.forever(Effect.andThen(Queue.take(reads), Effect.matchEffect(connection.read, {
      onSuccess: (chunks) =>
        Effect.sync(() => {
          const owned = chunks.map(transferable)
          answer({ _tag: "Data", chunks: owned }, owned.map((c) => c.buffer))
        }),
      onFailure: (error) =>
        Effect.sync(() =>
          Connection.isEndOfStream(error)
            ? answer({ _tag: "Eof" })
            : answer({ _tag: "ReadError", error: { reason: error.reason, message: error.message } })
        )
    }))), { startImmediately: true })
    // The worker's `closed`: the socket is gone in both directions.
    yield* Effect.forkScoped(Effect.andThen(connection.closed, Effect.sync(() => answer({ _tag: "Closed" }))), {
      startImmediately: true
    })
    // Writer: writes, half-close and close, in the order the worker sent them.
    const ack = (seq: number) => (effect: Effect.Effect<void, Connection.ConnectionError>) =>
      Effect.matchEffect(effect, {
        onSuccess: () => Effect.sync(() => answer({ _tag: "Ack", seq })),
        onFailure: (error) => Effect.sync(() => answer({ _tag: "Ack", seq, error: error.message }))
      })
    yield* Effect.forkScoped(Effect.forever(Effect.flatMap(Queue.take(ordered), (request) => {
      switch (request._tag) {
        case "Write":
          return ack(request.seq)(connection.writeAll(request.chunks))
        case "End":
          return ack(request.seq)(connection.end)
        case "Close":
          return ack(request.seq)(connection.close)
      }
    })), { startImmediately: true })
  })

const closed = (message: string) => new Connection.ConnectionError({ reason: "Closed", message })

/** Worker side: the job's port as a mailbox: answers to reads in order, acknowledgements by sequence number. */
const mailbox = (port: MessagePort) =>
  Effect.map(Queue.unbounded<Ipc.BridgeAnswer, Connection.ConnectionError>(), (answers) => {
    const acks = new Map<number, Deferred.Deferred<string | undefined, Connection.ConnectionError>>()
    // the connection is gone: the server said so, or closed the job's port
    const gone = Deferred.makeUnsafe<void>()
    let seq = 0
    port.on("message", (raw) => {
      const decoded = decodeAnswer(raw)
      if (decoded._tag === "Failure") return
      const message = decoded.success
      if (message._tag === "Closed") {
        Deferred.doneUnsafe(gone, Effect.void)
      } else if (message._tag === "Ack") {
        const ack = acks.get(message.seq)
        acks.delete(message.seq)
        if (ack) Deferred.doneUnsafe(ack, Effect.succeed(message.error))
      } else {
        Queue.offerUnsafe(answers, message)
      }
    })
    // The server closed the job (connection gone, shutdown): nothing pending will be answered.
    port.on("close", () => {
      Deferred.doneUnsafe(gone, Effect.void)
      const error = closed("the connection was closed by the server")
      Queue.failCauseUnsafe(answers, Cause.fail(error))
      for (const ack of acks.values()) Deferred.doneUnsafe(ack, Effect.fail(error))
      acks.clear()
    })
    /** Sends a request that the server acknowledges; succeeds with the server's error message, if any. */
    const request = (make: (seq: number) => Ipc.BridgeRequest, transfer: ReadonlyArray<ArrayBuffer> = []) =>
      Effect.suspend(() => {
        const ack = Deferred.makeUnsafe<string | undefined, Connection.ConnectionError>()
        const next = ++seq
        acks.set(next, ack)
        port.postMessage(make(next), transfer as Array<ArrayBuffer>)
        return Deferred.await(ack)
      })
    return { answers, request, closed: Deferred.await(gone) }
  })

/**
 * Worker side: the handler's `Connection` over `port`. Closing the scope closes the port.
 */
export const connection = (
  port: MessagePort,
  meta: Ipc.ConnectionMeta
): Effect.Effect<Connection.Connection, never, Scope.Scope> =>
  Effect.gen(function*() {
    yield* Effect.addFinalizer(() => Effect.sync(() => port.close()))
    const { answers, closed: gone, request } = yield* mailbox(port)
    let eof = false
    const read: Pull.Pull<NonEmptyReadonlyArray<Uint8Array>, Connection.ConnectionError> = Effect.suspend(() => {
      if (eof) return Cause.done()
      port.postMessage({ _tag: "Read" } satisfies Ipc.BridgeRequest)
      return Effect.flatMap(Queue.take(answers), (answer): Pull.Pull<NonEmptyReadonlyArray<Uint8Array>, Connection.ConnectionError> => {
        switch (answer._tag) {
          case "Data":
            return answer.chunks.length > 0
              ? Effect.succeed(answer.chunks as unknown as NonEmptyReadonlyArray<Uint8Array>)
              : Effect.fail(closed("empty read"))
          case "Eof":
            eof = true
            return Cause.done()
          case "ReadError":
            return Effect.fail(new Connection.ConnectionError({ reason: answer.error.reason, message: answer.error.message }))
          default:
            return Effect.fail(closed(`unexpected answer ${answer._tag}`))
        }
      })
    }) as Pull.Pull<NonEmptyReadonlyArray<Uint8Array>, Connection.ConnectionError>
    const failedWith = (message: string | undefined) =>
      message === undefined ? Effect.void : Effect.fail(new Connection.ConnectionError({ reason: "WriteFailed", message }))
    const encoder = new TextEncoder()
    const writeAll = (chunks: ReadonlyArray<Uint8Array | string>) =>
      Effect.suspend(() => {
        if (chunks.length === 0) return Effect.void
        // Copies: the handler may keep using its buffers, and a transferred buffer is gone from this thread.
        const owned = chunks.map((chunk) => typeof chunk === "string" ? encoder.encode(chunk) : Ipc.ownedCopy(chunk))
        const buffers = owned.map((c) => c.buffer as ArrayBuffer)
        return Effect.flatMap(request((seq) => ({ _tag: "Write", seq, chunks: owned }), buffers), failedWith)
      })
    // `end` and `close` cannot fail: once the server has applied them, or the connection is gone, they are done.
    const settle = (make: (seq: number) => Ipc.BridgeRequest) => Effect.ignore(request(make))
    const localAddress = Ipc.fromWireAddress(meta.localAddress)
    if (localAddress === undefined) {
      return yield* Effect.die(new Error(`bad local address ${JSON.stringify(meta.localAddress)}`))
    }
    return {
      id: meta.id,
      transport: meta.transport,
      localAddress,
      remoteAddress: Ipc.fromWireInet(meta.remoteAddress),
      peer: meta.peer,
      read,
      readWhile: Connection.readWhileOf(read),
      // the bytes here are this thread's own copies: lending them is lending owned bytes
      readWhileLent: Connection.readWhileOf(read),
      bytes: Stream.fromPull(Effect.succeed(read)),
      write: (chunk) => writeAll([chunk]),
      writeAll,
      // every write waits for the server's acknowledgement, so there is no write that needs no waiting
      tryWriteAll: () => false,
      closed: gone,
      // a read that waits takes this end of stream; a later one sees `eof` (the server's answer to it, if any, is
      // left unread)
      stopReading: Effect.sync(() => {
        if (eof) return
        eof = true
        Queue.offerUnsafe(answers, { _tag: "Eof" })
      }),
      end: settle((seq) => ({ _tag: "End", seq })),
      close: settle((seq) => ({ _tag: "Close", seq }))
    } satisfies Connection.Connection
  })

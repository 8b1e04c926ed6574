/**
 * Entry point of a worker thread of the `worker` strategy. It loads the handler named in
 * `workerData.reference`, says `Ready`, then runs every job it is given. A job arrives with its own
 * `MessagePort`; the handler sees an ordinary `Connection` (or `Datagram`) whose operations are
 * messages on that port, while the main thread owns the socket (see `WorkerStrategy`).
 *
 * Read side: one `Read` message = one unit of credit; the main thread reads the socket only then.
 * Write side: `Write` carries copies of the chunks (transferred, not cloned) and waits for the
 * `Ack` that the main thread sends once its socket write completed (after `drain` when full).
 */
import { Cause, Deferred, Effect, Exit, FiberSet, Layer, Logger, Queue, References, Schema, Stream } from "effect"
import type { NonEmptyReadonlyArray } from "effect/Array"
import type { Pull } from "effect"
import { type MessagePort, parentPort, threadId, workerData } from "node:worker_threads"
import * as Connection from "../Connection.ts"
import * as Datagram from "../Datagram.ts"
import * as Handler from "../Handler.ts"
import * as Server from "../Server.ts"
import * as IpcLog from "./ipcLog.ts"
import * as Ipc from "./ipcMessages.ts"

const post = (message: Ipc.FromWorker) => parentPort?.postMessage(message)

// Log lines go to the main thread, which logs them with this thread's id.
const portLogger = IpcLog.make(post)

const decodeToJob = Schema.decodeUnknownResult(Ipc.ToJob)
const decodeToWorker = Schema.decodeUnknownResult(Ipc.ToWorker)

const closed = (message: string) => new Connection.ConnectionError({ reason: "Closed", message })

/** The job's port as a mailbox: answers to reads in order, acknowledgements by sequence number. */
const portMailbox = (port: MessagePort) => Effect.map(Queue.unbounded<Ipc.ToJob, Connection.ConnectionError>(), (answers) => {
  const acks = new Map<number, Deferred.Deferred<string | undefined, Connection.ConnectionError>>()
  let seq = 0
  port.on("message", (raw) => {
    const decoded = decodeToJob(raw)
    if (decoded._tag === "Failure") return
    const message = decoded.success
    if (message._tag === "Ack") {
      const ack = acks.get(message.seq)
      acks.delete(message.seq)
      if (ack) Deferred.doneUnsafe(ack, Effect.succeed(message.error))
    } else {
      Queue.offerUnsafe(answers, message)
    }
  })
  // The main thread closed the job (connection gone, shutdown): nothing pending will be answered.
  port.on("close", () => {
    Queue.failCauseUnsafe(answers, Cause.fail(closed("the connection was closed by the server")))
    for (const ack of acks.values()) Deferred.doneUnsafe(ack, Effect.fail(closed("the connection was closed by the server")))
    acks.clear()
  })
  const request = (message: Ipc.FromJob, transfer: ReadonlyArray<ArrayBuffer>) =>
    Effect.suspend(() => {
      const ack = Deferred.makeUnsafe<string | undefined, Connection.ConnectionError>()
      acks.set((message as { seq: number }).seq, ack)
      port.postMessage(message, transfer as Array<ArrayBuffer>)
      return Deferred.await(ack)
    })
  return { answers, request, nextSeq: () => ++seq }
})

const makeConnection = (port: MessagePort, meta: Ipc.ConnectionMeta) => Effect.map(portMailbox(port), (mailbox): Connection.Connection => {
  let eof = false
  const read: Pull.Pull<NonEmptyReadonlyArray<Uint8Array>, Connection.ConnectionError> = Effect.suspend(() => {
    if (eof) return Cause.done()
    port.postMessage({ _tag: "Read" } satisfies Ipc.FromJob)
    return Effect.flatMap(Queue.take(mailbox.answers), (answer): Pull.Pull<NonEmptyReadonlyArray<Uint8Array>, Connection.ConnectionError> => {
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
  const encoder = new TextEncoder()
  const writeAll = (chunks: ReadonlyArray<Uint8Array | string>) =>
    Effect.suspend(() => {
      if (chunks.length === 0) return Effect.void
      // Copies: the handler may keep using its buffers, and a transferred buffer is gone from this thread.
      const owned = chunks.map((chunk) => typeof chunk === "string" ? encoder.encode(chunk) : Ipc.ownedCopy(chunk))
      const seq = mailbox.nextSeq()
      return mailbox.request({ _tag: "Write", seq, chunks: owned }, owned.map((c) => c.buffer as ArrayBuffer)).pipe(
        Effect.flatMap((error) =>
          error === undefined ? Effect.void : Effect.fail(new Connection.ConnectionError({ reason: "WriteFailed", message: error }))
        )
      )
    })
  const localAddress = Ipc.fromWireAddress(meta.localAddress)
  return {
    id: meta.id,
    transport: meta.transport,
    localAddress: localAddress!,
    remoteAddress: Ipc.fromWireInet(meta.remoteAddress),
    peer: meta.peer,
    read,
    readWhile: Connection.readWhileOf(read),
    // the bytes here are the worker's own copies: lending them is lending owned bytes
    readWhileLent: Connection.readWhileOf(read),
    bytes: Stream.fromPull(Effect.succeed(read)),
    write: (chunk) => writeAll([chunk]),
    writeAll,
    // every write is acknowledged by the main thread, so there is no write that needs no waiting
    tryWriteAll: () => false,
    end: Effect.sync(() => port.postMessage({ _tag: "End" } satisfies Ipc.FromJob)),
    close: Effect.sync(() => port.postMessage({ _tag: "Close" } satisfies Ipc.FromJob))
  }
})

const makeDatagram = (port: MessagePort, meta: Ipc.DatagramMeta) => Effect.map(portMailbox(port), (mailbox): Datagram.Datagram => ({
    transport: meta.transport,
    payload: meta.payload,
    sender: meta.sender === undefined ? undefined : Ipc.fromWireAddress(meta.sender),
    peer: meta.peer,
    reply: (payload) => {
      const bytes = typeof payload === "string" ? new TextEncoder().encode(payload) : Ipc.ownedCopy(payload)
      return mailbox.request({ _tag: "Reply", seq: mailbox.nextSeq(), payload: bytes }, [bytes.buffer as ArrayBuffer]).pipe(
        Effect.mapError((error) => new Datagram.DatagramError({ reason: "SendFailed", message: error.message })),
        Effect.flatMap((error) =>
          error === undefined ? Effect.void : Effect.fail(new Datagram.DatagramError({ reason: "SendFailed", message: error }))
        )
      )
    }
}))

const program = Effect.gen(function*() {
  const reference = Schema.decodeUnknownSync(Ipc.Reference)((workerData as { reference?: unknown } | null)?.reference)
  const inbox = yield* Queue.unbounded<unknown>()
  parentPort?.on("message", (message) => Queue.offerUnsafe(inbox, message))
  const loaded = yield* Effect.exit(Handler.load(reference))
  if (Exit.isFailure(loaded)) {
    post({ _tag: "LoadFailed", message: Cause.pretty(loaded.cause) })
    return
  }
  const handler = loaded.value
  const running = yield* FiberSet.make<void, never>()
  // The main thread says `Shutdown` when the server stops accepting; handlers here see it as in-process ones do.
  const shutdown = yield* Deferred.make<void>()
  const signal: Server.ShutdownSignal = { requested: Deferred.await(shutdown), isRequested: Deferred.isDone(shutdown) }
  post({ _tag: "Ready" })
  yield* Stream.fromQueue(inbox).pipe(Stream.runForEach((raw) => {
    const decoded = decodeToWorker(raw)
    if (decoded._tag === "Failure") return Effect.logWarning("unexpected message from main thread", decoded.failure.message)
    if (decoded.success._tag === "Shutdown") return Deferred.succeed(shutdown, undefined)
    const job = decoded.success
    const port = job.port as MessagePort
    const work: Effect.Effect<unknown, unknown> = job.connection !== undefined && handler._tag === "StreamHandler"
      ? Effect.flatMap(makeConnection(port, job.connection), handler.handle) as Effect.Effect<unknown, unknown>
      : job.datagram !== undefined && handler._tag === "DatagramHandler"
      ? Effect.flatMap(makeDatagram(port, job.datagram), handler.handle) as Effect.Effect<unknown, unknown>
      : Effect.die(new Error("job does not match the handler kind"))
    return FiberSet.run(running, Effect.exit(Effect.provideService(work, Server.Shutdown, signal)).pipe(
      Effect.flatMap((exit) =>
        Effect.sync(() => {
          const outcome: Ipc.WireOutcome = Exit.isSuccess(exit) ? { _tag: "Completed" } : Ipc.outcomeOfCause(exit.cause)
          port.postMessage({ _tag: "Done", outcome } satisfies Ipc.FromJob)
          port.close()
        })
      )
    )).pipe(Effect.asVoid)
  }))
}).pipe(
  Effect.scoped,
  Effect.annotateLogs({ threadId: String(threadId) }),
  Effect.provide(Layer.mergeAll(Logger.layer([portLogger]), Layer.succeed(References.MinimumLogLevel, "All")))
)

// The main thread ends this thread with `terminate()`; until then it serves.
Effect.runFork(program)

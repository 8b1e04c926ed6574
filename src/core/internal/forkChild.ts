/**
 * Entry point of a fork child (`child_process.fork`). It loads the handler named in `argv[2]`,
 * says `Ready`, then serves whatever the parent sends: socket handles (it owns the connection from
 * then on: bytes never pass through the parent) and datagrams (replies go back over IPC). Each
 * job's outcome and every log line go back to the parent. It stops on `Stop` (after its jobs),
 * on SIGTERM (interrupting them), on a second SIGINT (at once), or when the parent goes away.
 */
// Subpath import: the package index loads every Node module, ~20 MB of heap in every child.
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Deferred, Effect, Exit, FiberSet, Layer, Logger, Queue, References, Schema, Stream } from "effect"
import type * as Net from "node:net"
import type * as Datagram from "../Datagram.ts"
import * as Handler from "../Handler.ts"
import * as Server from "../Server.ts"
import * as IpcLog from "./ipcLog.ts"
import * as Ipc from "./ipcMessages.ts"
import * as NodeConnection from "./nodeConnection.ts"
import * as ProcessExit from "./processExit.ts"

const sendRaw = (message: Ipc.FromChild): Promise<void> =>
  new Promise((resolve) => {
    if (!process.connected || process.send === undefined) return resolve()
    try {
      process.send(message, undefined, {}, () => resolve())
    } catch {
      // The channel closed under us: the parent is gone and will not read this anyway.
      resolve()
    }
  })

const send = (message: Ipc.FromChild): Effect.Effect<void> => Effect.promise(() => sendRaw(message))

// Log lines travel to the parent, which logs them with this child's pid: one log for the server.
const ipcLogger = IpcLog.make((record) => void sendRaw(record))

const decodeReference = Schema.decodeUnknownSync(Ipc.Reference)
const decodeMessage = Schema.decodeUnknownResult(Ipc.ToChild)

const serveConnection = (handler: Handler.StreamHandler<unknown, unknown>, raw: Net.Socket, meta: Ipc.ConnectionMeta) =>
  Effect.gen(function*() {
    // The handle arrives as a fresh net.Socket with Node's default allowHalfOpen (false), which would
    // end our side the moment the peer half-closes; the listener accepted it half-open, so keep that.
    raw.allowHalfOpen = true
    raw.on("error", () => {})
    const localAddress = Ipc.fromWireAddress(meta.localAddress)
    if (localAddress === undefined) return yield* Effect.die(new Error(`bad local address ${JSON.stringify(meta.localAddress)}`))
    const connection = yield* NodeConnection.open(raw, {
      id: meta.id,
      transport: meta.transport,
      localAddress,
      peer: { remoteAddress: Ipc.fromWireInet(meta.remoteAddress), peer: meta.peer },
      idleTimeout: meta.idleTimeoutMillis
    })
    yield* handler.handle(connection) as Effect.Effect<unknown, unknown>
  }).pipe(Effect.scoped)

const serveDatagram = (handler: Handler.DatagramHandler<unknown, unknown>, job: number, meta: Ipc.DatagramMeta) => {
  const datagram: Datagram.Datagram = {
    transport: meta.transport,
    payload: meta.payload,
    sender: meta.sender === undefined ? undefined : Ipc.fromWireAddress(meta.sender),
    peer: meta.peer,
    // The parent owns the socket and sends the reply; delivery is not confirmed (datagrams never are).
    reply: (payload) =>
      send({ _tag: "Reply", job, payload: typeof payload === "string" ? new TextEncoder().encode(payload) : payload })
  }
  return handler.handle(datagram) as Effect.Effect<unknown, unknown>
}

const program = Effect.gen(function*() {
  const reference = decodeReference(JSON.parse(process.argv[2] ?? "null"))
  const inbox = yield* Queue.unbounded<{ readonly message: unknown; readonly handle: unknown }, Cause.Done>()
  process.on("message", (message, handle) => {
    Queue.offerUnsafe(inbox, { message, handle })
  })
  // The parent died or closed the channel: nobody will take our outcomes, stop.
  process.on("disconnect", () => {
    Queue.endUnsafe(inbox)
  })
  const loaded = yield* Effect.exit(Handler.load(reference))
  if (Exit.isFailure(loaded)) {
    yield* send({ _tag: "LoadFailed", message: Cause.pretty(loaded.cause) })
    return yield* Effect.failCause(loaded.cause)
  }
  const handler = loaded.value
  const running = yield* FiberSet.make<void, never>()
  // The parent says `Shutdown` when the server stops accepting; handlers here see it as in-process ones do.
  const shutdown = yield* Deferred.make<void>()
  const signal: Server.ShutdownSignal = { requested: Deferred.await(shutdown), isRequested: Deferred.isDone(shutdown) }
  const finish = (job: number) => (exit: Exit.Exit<unknown, unknown>) =>
    send({ _tag: "Done", job, outcome: Exit.isSuccess(exit) ? { _tag: "Completed" } : Ipc.outcomeOfCause(exit.cause) })
  yield* send({ _tag: "Ready" })
  yield* Stream.fromQueue(inbox).pipe(
    Stream.takeWhile(({ message }) => !(typeof message === "object" && message !== null && (message as { _tag?: unknown })._tag === "Stop")),
    Stream.runForEach(({ message, handle }) => {
      const decoded = decodeMessage(message)
      if (decoded._tag === "Failure") return Effect.logWarning("unexpected message from parent", decoded.failure.message)
      const msg = decoded.success
      switch (msg._tag) {
        case "Connection": {
          if (handler._tag !== "StreamHandler" || handle === undefined) {
            ;(handle as Net.Socket | undefined)?.destroy()
            return send({ _tag: "Done", job: msg.job, outcome: { _tag: "Aborted", reason: "no stream handler or handle" } })
          }
          return FiberSet.run(running, serveConnection(handler, handle as Net.Socket, msg.meta).pipe(
            Effect.provideService(Server.Shutdown, signal),
            Effect.exit,
            Effect.flatMap(finish(msg.job))
          ))
        }
        case "Datagram": {
          if (handler._tag !== "DatagramHandler") {
            return send({ _tag: "Done", job: msg.job, outcome: { _tag: "Aborted", reason: "not a datagram handler" } })
          }
          return FiberSet.run(running, serveDatagram(handler, msg.job, msg.meta).pipe(
            Effect.provideService(Server.Shutdown, signal),
            Effect.exit,
            Effect.flatMap(finish(msg.job))
          ))
        }
        case "Shutdown":
          return Deferred.succeed(shutdown, undefined)
        case "Stop":
          return Effect.void
      }
    })
  )
  yield* FiberSet.awaitEmpty(running)
}).pipe(
  Effect.scoped,
  Effect.annotateLogs({ pid: String(process.pid) }),
  Effect.provide(Layer.mergeAll(Logger.layer([ipcLogger]), Layer.succeed(References.MinimumLogLevel, "All")))
)

/** How long a stopped child may stay up for its connections to finish closing. */
const exitGraceMillis = 1_000

NodeRuntime.runMain(program, {
  disableErrorReporting: true,
  teardown: (exit) => {
    // Nothing more to say to the parent: the channel must not keep a stopped child alive, nor may a
    // handler's leftover timer for longer than the grace.
    process.channel?.unref()
    const code = Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause) ? 0 : 1
    ProcessExit.exitWhenIdle(code, exitGraceMillis)
  }
})

// A terminal's Ctrl-C reaches every process of the group, this child too. The parent turns it into
// a graceful shutdown (`Shutdown`, then `Stop`), so the first SIGINT is the parent's to handle; a
// second one ends the child at once, as it ends the parent. SIGTERM still interrupts the jobs.
// (`runMain` above has installed its interrupt-on-SIGINT listener by now; it is replaced here.)
let interrupts = 0
process.removeAllListeners("SIGINT")
process.on("SIGINT", () => {
  if (interrupts++ > 0) process.exit(130)
})

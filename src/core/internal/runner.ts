/**
 * The entry point of every member of the remote engine (see `remote.ts`): a fork child
 * (`child_process.fork`) or a worker thread. It loads the handler named by its reference, says
 * `Ready`, then serves what the server sends:
 * - a connection arrives with its socket (as the second argument of the IPC message in a child,
 *   transferred in the message's `attached` field in a worker): the member owns it from then on and
 *   serves it with the same `Connection` as the in-process strategies, after the TLS handshake when
 *   the listener serves TLS; a worker that got a bridge port instead (a socket Node cannot move)
 *   serves it over `portBridge.ts` (a TLS session, if any, then ends in the server's thread);
 * - a datagram arrives with its payload; replies go back to the server, which owns the socket.
 * Each job's outcome and every log line go back to the server. It stops on `Stop` (after its jobs),
 * on SIGTERM (a child, interrupting them), on a second SIGINT (a child, at once), or when the server
 * goes away.
 *
 * Only the channel differs between the kinds (`childChannel`, `threadChannel`); the rest is shared.
 */
// Subpath import: the package index loads every Node module, ~20 MB of heap in every member.
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Deferred, Effect, Exit, FiberSet, Layer, Logger, Queue, References, Schema, Stream } from "effect"
import * as Net from "node:net"
import { MessagePort, parentPort, threadId, workerData } from "node:worker_threads"
import type * as Connection from "../Connection.ts"
import * as Datagram from "../Datagram.ts"
import * as Handler from "../Handler.ts"
import * as Server from "../Server.ts"
import type * as Tls from "../Tls.ts"
import * as IpcLog from "./ipcLog.ts"
import * as Ipc from "./ipcMessages.ts"
import * as NodeConnection from "./nodeConnection.ts"
import * as PortBridge from "./portBridge.ts"
import * as TlsHandshake from "./tlsHandshake.ts"
import * as ProcessExit from "./processExit.ts"

/**
 * How this member talks to the server.
 */
interface Channel {
  /** The handler's reference as the server gave it. */
  readonly reference: unknown
  /** Annotations that name this member in its log lines. */
  readonly annotations: Record<string, string>
  /** Sends a message; completes once it is handed to the channel (so that exiting afterwards loses nothing). */
  readonly send: (message: Ipc.FromMember) => Promise<void>
  /** Delivers every message from the server with what came attached (socket, port); `gone` when the server is. */
  readonly listen: (receive: (message: unknown, attached: unknown) => void, gone: () => void) => void
  /** Runs the member's program, then ends the member with its outcome. */
  readonly main: (program: Effect.Effect<void, unknown>) => void
}

/**
 * How long a stopped member may stay up for its connections to finish closing: it ends once its event
 * loop is empty (see `processExit.ts`), at the latest after this.
 */
const exitGraceMillis = 1_000

/** Exit code of a member: 0 after a clean stop or an interruption, 1 after a failure. */
const exitCode = (exit: Exit.Exit<unknown, unknown>): number =>
  Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause) ? 0 : 1

/** A fork child: Node IPC with the parent process; socket handles come as the second argument of a message. */
const childChannel = (): Channel => ({
  reference: JSON.parse(process.argv[2] ?? "null"),
  annotations: { pid: String(process.pid) },
  send: (message) =>
    new Promise((resolve) => {
      if (!process.connected || process.send === undefined) return resolve()
      try {
        process.send(message, undefined, {}, () => resolve())
      } catch {
        // The channel closed under us: the parent is gone and will not read this anyway.
        resolve()
      }
    }),
  listen: (receive, gone) => {
    process.on("message", receive)
    // The parent died or closed the channel: nobody will take our outcomes.
    process.on("disconnect", gone)
  },
  main: (program) => {
    NodeRuntime.runMain(program, {
      disableErrorReporting: true,
      teardown: (exit) => {
        // Nothing more to say to the parent: the channel must not keep a stopped child alive.
        process.channel?.unref()
        ProcessExit.exitWhenIdle(exitCode(exit), exitGraceMillis)
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
  }
})

/** A worker thread: `parentPort`; a socket or bridge port is transferred in the message's `attached` field. */
const threadChannel = (port: MessagePort): Channel => ({
  reference: (workerData as { reference?: unknown } | null)?.reference,
  annotations: { threadId: String(threadId) },
  send: (message) => {
    port.postMessage(message)
    return Promise.resolve()
  },
  listen: (receive, gone) => {
    port.on("message", (message: { readonly attached?: unknown }) => receive(message, message?.attached))
    port.on("close", gone)
  },
  // A worker has no signals of its own: the server stops it with `Stop` or `terminate()`. Exiting in a
  // worker ends the thread only.
  main: (program) =>
    Effect.runFork(program).addObserver((exit) => {
      port.unref()
      ProcessExit.exitWhenIdle(exitCode(exit), exitGraceMillis)
    })
})

const decodeReference = Schema.decodeUnknownSync(Ipc.Reference)

/** A connection that ended before its handler ran (see `serveConnection`). */
class Unserved {
  readonly reason: string
  constructor(reason: string) {
    this.reason = reason
  }
}
const decodeMessage = Schema.decodeUnknownResult(Ipc.ToMember)

// TLS settings this member was sent, by version: a connection's message carries them the first time, then only
// names the version. A few versions are kept, for connections passed just before a reload.
const maxTlsVersions = 4
const tlsSettings = new Map<number, Tls.Settings>()
const rememberTls = (meta: Ipc.ConnectionMeta): void => {
  if (meta.tls?.settings === undefined) return
  tlsSettings.set(meta.tls.version, meta.tls.settings)
  if (tlsSettings.size > maxTlsVersions) tlsSettings.delete(tlsSettings.keys().next().value!)
}

/** The TLS session over a received socket, when its listener serves TLS: the handshake happens here, in the member. */
const secure = (socket: Net.Socket, meta: Ipc.ConnectionMeta): Effect.Effect<Net.Socket, Connection.ConnectionError> => {
  if (meta.tls === undefined) return Effect.succeed(socket)
  const settings = tlsSettings.get(meta.tls.version)
  if (settings === undefined) return Effect.die(new Error(`no TLS settings of version ${meta.tls.version} were sent`))
  return TlsHandshake.make(socket, { transport: meta.transport, peer: meta.peer, settings: () => settings }).secure
}

/**
 * Opens a socket this member received as a `Connection`, after its TLS handshake if the listener
 * serves TLS.
 */
const openSocket = (socket: Net.Socket, meta: Ipc.ConnectionMeta) =>
  Effect.gen(function*() {
    // A received socket gets Node's defaults, not the listener's: a fork child's arrives with
    // allowHalfOpen false, which would end our side the moment the peer half-closes.
    socket.allowHalfOpen = meta.allowHalfOpen
    socket.on("error", () => {})
    // Nothing is read before the handler's first read (a worker's socket is not reading yet; a
    // child's may be), so that the connection can still choose to read into its own buffers.
    socket.pause()
    const localAddress = Ipc.fromWireAddress(meta.localAddress)
    if (localAddress === undefined) {
      return yield* Effect.die(new Error(`bad local address ${JSON.stringify(meta.localAddress)}`))
    }
    return yield* NodeConnection.open(yield* secure(socket, meta), {
      id: meta.id,
      transport: meta.transport,
      localAddress,
      peer: { remoteAddress: Ipc.fromWireInet(meta.remoteAddress), peer: meta.peer },
      idleTimeout: meta.idleTimeoutMillis
    })
  })

const program = (channel: Channel) =>
  Effect.gen(function*() {
    const send = (message: Ipc.FromMember) => Effect.promise(() => channel.send(message))
    const reference = decodeReference(channel.reference)
    const inbox = yield* Queue.unbounded<{ readonly message: unknown; readonly attached: unknown }, Cause.Done>()
    channel.listen((message, attached) => Queue.offerUnsafe(inbox, { message, attached }), () => Queue.endUnsafe(inbox))
    const loaded = yield* Effect.exit(Handler.load(reference))
    if (Exit.isFailure(loaded)) {
      yield* send({ _tag: "LoadFailed", message: Cause.pretty(loaded.cause) })
      return yield* Effect.failCause(loaded.cause)
    }
    const handler = loaded.value
    const running = yield* FiberSet.make<void, never>()
    // The server says `Shutdown` when it stops accepting; handlers here see it as in-process ones do.
    const shutdown = yield* Deferred.make<void>()
    const signal: Server.ShutdownSignal = {
      requested: Deferred.await(shutdown),
      isRequested: Deferred.isDone(shutdown)
    }
    // Datagram replies waiting for the server's `Replied`.
    const replies = new Map<number, Deferred.Deferred<string | undefined>>()
    let nextReply = 0

    const finish = (job: number) => (exit: Exit.Exit<unknown, unknown>) => {
      const unserved = Exit.isFailure(exit) ? Cause.findErrorOption(exit.cause) : undefined
      const outcome: Ipc.WireOutcome = Exit.isSuccess(exit)
        ? { _tag: "Completed" }
        : unserved?._tag === "Some" && unserved.value instanceof Unserved
        ? { _tag: "Aborted", reason: unserved.value.reason }
        : Ipc.outcomeOfCause(exit.cause)
      return send({ _tag: "Done", job, outcome })
    }
    const runJob = (job: number, work: Effect.Effect<unknown, unknown>) =>
      FiberSet.run(
        running,
        work.pipe(Effect.provideService(Server.Shutdown, signal), Effect.exit, Effect.flatMap(finish(job)))
      )
    const abort = (job: number, reason: string) => send({ _tag: "Done", job, outcome: { _tag: "Aborted", reason } })

    const serveConnection = (message: Ipc.ConnectionJob, attached: unknown) => {
      if (handler._tag !== "StreamHandler") {
        if (attached instanceof Net.Socket) attached.destroy()
        if (attached instanceof MessagePort) attached.close()
        return abort(message.job, "not a stream handler")
      }
      rememberTls(message.meta)
      const connection = attached instanceof Net.Socket
        ? openSocket(attached, message.meta)
        : attached instanceof MessagePort
        ? PortBridge.connection(attached, message.meta)
        : undefined
      if (connection === undefined) return abort(message.job, "no socket came with the connection")
      // A peer that left, or failed its TLS handshake (logged where it happened), before it was served
      // is not a handler failure: the job is aborted, as the server does for connections it opens.
      const work = Effect.scoped(Effect.flatMap(
        Effect.catch(connection, (error) => error.reason === "Closed" ? Effect.fail(new Unserved(error.message)) : Effect.fail(error)),
        handler.handle
      )) as Effect.Effect<unknown, unknown>
      return runJob(message.job, work)
    }

    const serveDatagram = (job: number, meta: Ipc.DatagramMeta) => {
      if (handler._tag !== "DatagramHandler") return abort(job, "not a datagram handler")
      const datagram: Datagram.Datagram = {
        transport: meta.transport,
        payload: meta.payload,
        sender: meta.sender === undefined ? undefined : Ipc.fromWireAddress(meta.sender),
        peer: meta.peer,
        // The server owns the socket: it sends the reply and answers how that went.
        reply: (payload) =>
          Effect.suspend(() => {
            const seq = ++nextReply
            const sent = Deferred.makeUnsafe<string | undefined>()
            replies.set(seq, sent)
            const bytes = typeof payload === "string" ? new TextEncoder().encode(payload) : payload
            return Effect.andThen(send({ _tag: "Reply", job, seq, payload: bytes }), Deferred.await(sent)).pipe(
              Effect.flatMap((error) =>
                error === undefined
                  ? Effect.void
                  : Effect.fail(new Datagram.DatagramError({ reason: "SendFailed", message: error }))
              ),
              Effect.ensuring(Effect.sync(() => replies.delete(seq)))
            )
          })
      }
      return runJob(job, handler.handle(datagram) as Effect.Effect<unknown, unknown>)
    }

    yield* send({ _tag: "Ready" })
    yield* Stream.fromQueue(inbox).pipe(
      Stream.runForEach(({ message, attached }): Effect.Effect<void> => {
        const decoded = decodeMessage(message)
        if (decoded._tag === "Failure") {
          return Effect.logWarning("unexpected message from the server", decoded.failure.message)
        }
        const msg = decoded.success
        switch (msg._tag) {
          case "Connection":
            return Effect.asVoid(serveConnection(msg, attached))
          case "Datagram":
            return Effect.asVoid(serveDatagram(msg.job, msg.meta))
          case "Replied": {
            const sent = replies.get(msg.seq)
            return sent === undefined ? Effect.void : Deferred.succeed(sent, msg.error).pipe(Effect.asVoid)
          }
          case "Shutdown":
            return Deferred.succeed(shutdown, undefined).pipe(Effect.asVoid)
          case "Stop":
            // The server gives no more jobs: finish the running ones, then end.
            return Queue.end(inbox).pipe(Effect.asVoid)
        }
      })
    )
    yield* FiberSet.awaitEmpty(running)
  }).pipe(
    Effect.scoped,
    Effect.annotateLogs(channel.annotations),
    Effect.provide(Layer.mergeAll(
      // Log lines go to the server, which logs them with this member's id: one log for the server.
      Logger.layer([IpcLog.make((record) => void channel.send(record))]),
      Layer.succeed(References.MinimumLogLevel, "All")
    ))
  )

const channel = parentPort !== null ? threadChannel(parentPort) : childChannel()
channel.main(program(channel))

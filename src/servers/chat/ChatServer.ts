/**
 * The chat server (chat wire protocol, version 1): a `ChatRoom` service that holds the room (sessions, logged-in
 * clients, their outbound queues) and a stream `handler` that serves one connection in that room. The frame and
 * message codecs are `LengthPrefixedFraming` and `ChatMessage`; carrying the room across servers is `ChatHub`'s.
 *
 * Every connection has its own bounded outbound queue and its own writer fiber. Whoever sends (a reader relaying a
 * `say`, the hub dispatcher) never waits on a socket, so a stalled reader cannot slow anyone else down: when its
 * queue is full it is disconnected as a `slow_consumer`. A broadcast encodes its frame once and hands the same bytes
 * to everyone. While a connection has nothing queued, its frames gather in a batch that goes out with one
 * `tryWriteAll` once the reads at hand are processed (`setImmediate`: after this turn's I/O callbacks), so the
 * frames many reads relay to one peer cost one write and no fiber wake-up; a socket that cannot take the batch gets
 * it queued for its writer, which takes everything queued at once and writes it with one `writeAll`.
 *
 * Saying goodbye: under a `Server`, every session watches `Server.Shutdown`, so a graceful server shutdown alone
 * sends `shutdown` to every client before the drain ends; `ChatRoom.shutdown` does the same for a room used on its
 * own. Closing is the connection's lingering close (FIN after the last frame, bounded wait for the peer's FIN).
 *
 * The handler needs shared memory with the room, so it runs under the `sequential` and `fiber` strategies only.
 */
import { Cause, Context, Deferred, Duration, Effect, Exit, Fiber, Layer, Queue, Result, Stream } from "effect"
import { NetAddress } from "effect/net"
import * as Connection from "../../core/Connection.ts"
import * as Handler from "../../core/Handler.ts"
import * as Server from "../../core/Server.ts"
import * as ChatMessage from "../../protocol/ChatMessage.ts"
import * as LengthPrefixedFraming from "../../protocol/LengthPrefixedFraming.ts"
import * as ChatHub from "./ChatHub.ts"

/**
 * Default time a new connection has to log in.
 *
 * @category constants
 */
export const defaultLoginTimeout: Duration.Input = "10 seconds"

/**
 * Default most frames queued for one client before it is disconnected as a `slow_consumer`.
 *
 * @category constants
 */
export const defaultMaxQueuedFrames = 1024

/**
 * Default bound on flushing a closing connection's queue (a peer that does not read cannot hold it open longer).
 *
 * @category constants
 */
export const defaultCloseTimeout: Duration.Input = "2 seconds"

/**
 * Room options; all optional.
 *
 * - `maxFrameBytes`: largest accepted frame payload (default 65536).
 * - `loginTimeout`: time to send `login` before `login_timeout` (default 10 s).
 * - `maxQueuedFrames`: per-client outbound queue bound before `slow_consumer` (default 1024).
 * - `closeTimeout`: how long a closing connection may take to flush what is queued for it (default 2 s).
 *
 * @category models
 */
export interface Options {
  readonly maxFrameBytes?: number | undefined
  readonly loginTimeout?: Duration.Input | undefined
  readonly maxQueuedFrames?: number | undefined
  readonly closeTimeout?: Duration.Input | undefined
}

// Why a session ends; `code` is the error frame sent before closing, if any.
type Ending =
  | { readonly _tag: "Eof" }
  | { readonly _tag: "Failed" }
  | { readonly _tag: "Shutdown" }
  | { readonly _tag: "Error"; readonly code: ChatMessage.ErrorCode; readonly detail?: string | undefined }

const eof: Ending = { _tag: "Eof" }
const failed: Ending = { _tag: "Failed" }
const shutdownEnding: Ending = { _tag: "Shutdown" }
const slowConsumer: Ending = { _tag: "Error", code: "slow_consumer" }

interface Session {
  readonly address: string
  readonly connection: Connection.Connection
  readonly queue: Queue.Queue<Uint8Array, Cause.Done>
  readonly ending: Deferred.Deferred<Ending>
  readonly done: Deferred.Deferred<void>
  identity: string | undefined
  /** Frames for the next direct write, in order; only while nothing is queued. */
  batch: Array<Uint8Array> | undefined
  /** Frames went to the queue and the writer has not written them all yet: new frames queue behind them. */
  backlog: boolean
  /** Ending: frames go to the (ended) queue only, never after the last frame. */
  closing: boolean
}

/**
 * A snapshot of the room, for tests and monitoring.
 *
 * @category models
 */
export interface RoomStats {
  /** Open connections, logged in or not. */
  readonly connections: number
  /** Identities logged in on this server. */
  readonly members: ReadonlyArray<string>
}

/**
 * One chat room on one server. `handle` serves a connection until it ends; `shutdown` sends `shutdown` to every
 * connection, closes them and waits (bounded) for them to finish; it is final and also runs when the layer is
 * released.
 *
 * @category services
 */
export class ChatRoom extends Context.Service<ChatRoom, {
  readonly handle: (connection: Connection.Connection) => Effect.Effect<void>
  readonly stats: Effect.Effect<RoomStats>
  readonly shutdown: Effect.Effect<void>
}>()("effect-netkit/servers/chat/ChatRoom") {}

const frameOf = (message: ChatMessage.ServerMessage): Uint8Array =>
  // Server messages are built here from validated parts: a failure is a bug, hence a throw.
  Result.getOrThrow(ChatMessage.encodeServerFrame(message))

const shutdownFrame = frameOf({ type: "shutdown" })

const addressOf = (connection: Connection.Connection): string =>
  connection.transport === "unix" || connection.remoteAddress === undefined
    ? "local"
    : NetAddress.formatIp(connection.remoteAddress.address)

const finish = (session: Session, ending: Ending): void => {
  Deferred.doneUnsafe(session.ending, Exit.succeed(ending))
}

/**
 * Builds a room in the current scope over the current `ChatHub`.
 *
 * @category constructors
 */
export const make = Effect.fnUntraced(function*(options: Options = {}) {
  const hub = yield* ChatHub.ChatHub
  const maxFrameBytes = options.maxFrameBytes ?? LengthPrefixedFraming.defaultMaxFrameBytes
  const loginTimeout = options.loginTimeout ?? defaultLoginTimeout
  const maxQueuedFrames = options.maxQueuedFrames ?? defaultMaxQueuedFrames
  const closeTimeout = options.closeTimeout ?? defaultCloseTimeout
  if (!Number.isInteger(maxQueuedFrames) || maxQueuedFrames < 1) {
    throw new RangeError(`maxQueuedFrames must be a positive integer, got ${maxQueuedFrames}`)
  }
  // Checked now rather than on the first connection.
  LengthPrefixedFraming.makeDecoder({ maxFrameBytes })

  const origin = `${process.pid}-${Math.random().toString(36).slice(2, 10)}`
  const sessions = new Set<Session>()
  const members = new Map<string, Session>()
  let stopping = false

  const enqueue = (session: Session, frame: Uint8Array): boolean => {
    session.backlog = true
    if (Queue.offerUnsafe(session.queue, frame)) return true
    finish(session, slowConsumer)
    return false
  }
  // Writes a session's batch now, or queues it behind nothing else when the socket cannot take it.
  const flush = (session: Session): void => {
    const batch = session.batch
    if (batch === undefined) return
    session.batch = undefined
    if (!session.closing && session.connection.tryWriteAll(batch)) return
    for (const frame of batch) if (!enqueue(session, frame)) return
  }
  let dirty: Array<Session> = []
  const flushDirty = () => {
    const sessions = dirty
    dirty = []
    for (const session of sessions) flush(session)
  }
  // Never waits: a full queue disconnects its owner instead of slowing the sender down.
  const deliver = (session: Session, frame: Uint8Array): void => {
    if (session.batch !== undefined) session.batch.push(frame)
    else if (!session.backlog && !session.closing) {
      session.batch = [frame]
      if (dirty.push(session) === 1) setImmediate(flushDirty)
    } else enqueue(session, frame)
  }
  const broadcast = (frame: Uint8Array, except?: Session | undefined): void => {
    for (const member of members.values()) if (member !== except) deliver(member, frame)
  }

  const join = (session: Session, identity: string) =>
    Effect.gen(function*() {
      if (members.has(identity)) return false
      const claim = yield* hub.claim(identity, origin)
      if (claim._tag === "Taken") return false
      session.identity = identity
      members.set(identity, session)
      deliver(session, frameOf({ type: "welcome", name: identity, address: session.address, count: claim.count }))
      const joined: ChatMessage.Joined = { type: "joined", client: identity, count: claim.count }
      broadcast(frameOf(joined), session)
      yield* hub.publish({ origin, message: joined })
      return true
    }).pipe(Effect.uninterruptible) // a claim made in the hub must end up in `members`, so that `leave` releases it

  // Idempotent: every way a session ends calls it, and only the first one announces `left`.
  const leave = (session: Session) =>
    Effect.suspend(() => {
      const identity = session.identity
      if (identity === undefined || members.get(identity) !== session) return Effect.void
      members.delete(identity)
      return hub.release(identity, origin).pipe(Effect.flatMap((count) => {
        const left: ChatMessage.Left = { type: "left", client: identity, count }
        broadcast(frameOf(left))
        return hub.publish({ origin, message: left })
      }))
    }).pipe(Effect.uninterruptible)

  const say = (session: Session, text: string) =>
    Effect.suspend(() => {
      const message: ChatMessage.Message = { type: "message", from: session.identity!, text }
      broadcast(frameOf(message), session)
      return hub.publish({ origin, message })
    })

  // Events from other servers go to every local member; our own were delivered directly.
  const events = yield* hub.subscribe
  yield* events.pipe(
    Stream.runForEach((event) =>
      Effect.sync(() => {
        if (event.origin !== origin) broadcast(frameOf(event.message))
      })
    ),
    Effect.forkScoped({ startImmediately: true })
  )

  // Runs one frame; returns how the session ends, if this frame ends it.
  const onFrame = (session: Session, frame: Uint8Array): Effect.Effect<Ending | undefined> => {
    const decoded = ChatMessage.decodeClientMessage(frame)
    if (Result.isFailure(decoded)) {
      const error = decoded.failure
      // A second login with a bad name is still a second login.
      if (error.reason === "bad_name" && session.identity === undefined) {
        return Effect.succeed({ _tag: "Error", code: "bad_name", detail: error.detail })
      }
      deliver(session, frameOf(ChatMessage.errorMessage("bad_message", error.detail)))
      return Effect.succeed(undefined)
    }
    const message = decoded.success
    if (message.type === "login") {
      if (session.identity !== undefined) {
        deliver(session, frameOf(ChatMessage.errorMessage("bad_message", "already logged in")))
        return Effect.succeed(undefined)
      }
      const identity = `${message.name}@${session.address}`
      return Effect.map(join(session, identity), (joined): Ending | undefined =>
        joined ? undefined : { _tag: "Error", code: "name_taken", detail: `${identity} is already logged in` })
    }
    if (session.identity === undefined) {
      return Effect.succeed({ _tag: "Error", code: "not_logged_in", detail: "send login first" })
    }
    return Effect.as(say(session, message.text), undefined)
  }

  const readLoop = (session: Session, connection: Connection.Connection): Effect.Effect<Ending> =>
    Effect.gen(function*() {
      const decoder = LengthPrefixedFraming.makeDecoder({ maxFrameBytes })
      const frames: Array<Uint8Array> = []
      while (true) {
        const batch = yield* connection.read
        for (const chunk of batch) {
          frames.length = 0
          // Frames completed before a bad header are valid and run first; the bad length is never allocated.
          const error = decoder.pushInto(chunk, frames)
          for (const frame of frames) {
            const ending = yield* onFrame(session, frame)
            if (ending !== undefined) return ending
          }
          if (error !== undefined && error.reason !== "truncated_frame") {
            return { _tag: "Error", code: error.reason } satisfies Ending
          }
          // A flooding sender must not outrun the writers of healthy receivers: let them take what was just queued
          // before this reader enqueues more, so that only a receiver that really stalls fills its queue.
          if (frames.length > 0) yield* Effect.yieldNow
        }
      }
    }).pipe(Effect.catch((error: Connection.ConnectionError | Cause.Done) =>
      Effect.succeed(Connection.isEndOfStream(error) ? eof : failed)
    ))

  const writeLoop = (session: Session, connection: Connection.Connection) =>
    Effect.gen(function*() {
      while (true) {
        const frames = yield* Queue.takeAll(session.queue)
        yield* connection.writeAll(frames)
        // everything queued is with the socket: new frames may be written directly again
        if (Queue.sizeUnsafe(session.queue) === 0) session.backlog = false
      }
    }).pipe(Effect.catch((error) =>
      // Done: the queue was ended and flushed. A write failure means the peer is gone.
      Effect.sync(() => {
        if (error instanceof Connection.ConnectionError) finish(session, failed)
      })
    ))

  const close = Effect.fnUntraced(function*(
    session: Session,
    connection: Connection.Connection,
    writer: Fiber.Fiber<void>,
    ending: Ending
  ) {
    // from here on frames only queue, so nothing follows the last frame; what was batched goes first
    flush(session)
    session.closing = true
    yield* leave(session)
    if (ending._tag === "Failed") return yield* Fiber.interrupt(writer)
    const last = ending._tag === "Shutdown"
      ? shutdownFrame
      : ending._tag === "Error"
      ? frameOf(ChatMessage.errorMessage(ending.code, ending.detail))
      : undefined
    // The last frame goes after what is queued; a slow consumer's queue is full, so it goes straight to the socket.
    const queued = last === undefined || (ending !== slowConsumer && Queue.offerUnsafe(session.queue, last))
    yield* Queue.end(session.queue)
    if (queued) yield* Effect.timeoutOption(Fiber.await(writer), closeTimeout)
    yield* Fiber.interrupt(writer)
    if (!queued && last !== undefined) {
      yield* connection.write(last).pipe(Effect.timeoutOption(closeTimeout), Effect.ignore)
    }
    // Returning releases the connection: its lingering close sends FIN after these frames and gives the peer a
    // bounded time to read them and close, so the last frame is not lost to a reset.
  })

  const handle = (connection: Connection.Connection): Effect.Effect<void> =>
    Effect.gen(function*() {
      const session: Session = {
        address: addressOf(connection),
        connection,
        queue: yield* Queue.bounded<Uint8Array, Cause.Done>(maxQueuedFrames),
        ending: yield* Deferred.make<Ending>(),
        done: yield* Deferred.make<void>(),
        identity: undefined,
        batch: undefined,
        backlog: false,
        closing: false
      }
      sessions.add(session)
      if (stopping) finish(session, shutdownEnding)
      yield* Effect.gen(function*() {
        const writer = yield* Effect.forkChild(writeLoop(session, connection), { startImmediately: true })
        const loginTimer = yield* Effect.sleep(loginTimeout).pipe(
          Effect.andThen(Effect.sync(() => {
            if (session.identity === undefined) {
              finish(session, { _tag: "Error", code: "login_timeout", detail: "no login in time" })
            }
          })),
          Effect.forkChild({ startImmediately: true })
        )
        const reader = yield* Effect.forkChild(
          Effect.flatMap(readLoop(session, connection), (ending) => Effect.sync(() => finish(session, ending))),
          { startImmediately: true }
        )
        // A graceful server shutdown (also one that began before this connection was served) ends it with goodbye.
        const { requested } = yield* Server.Shutdown
        const ending = yield* Effect.raceFirst(Deferred.await(session.ending), Effect.as(requested, shutdownEnding))
        yield* Fiber.interrupt(reader)
        yield* Fiber.interrupt(loginTimer)
        yield* close(session, connection, writer, ending)
      }).pipe(
        // Interrupted from outside (an immediate server shutdown): still say goodbye, briefly.
        Effect.onInterrupt(() =>
          Effect.andThen(
            Effect.andThen(Effect.sync(() => session.closing = true), leave(session)),
            connection.write(shutdownFrame).pipe(Effect.timeoutOption("100 millis"), Effect.ignore)
          )
        ),
        Effect.ensuring(Effect.suspend(() => {
          sessions.delete(session)
          return Effect.andThen(leave(session), Deferred.succeed(session.done, undefined))
        }))
      )
    })

  const shutdown = Effect.suspend(() => {
    stopping = true
    const all = [...sessions]
    for (const session of all) finish(session, shutdownEnding)
    return Effect.forEach(all, (session) => Deferred.await(session.done), { discard: true }).pipe(
      Effect.timeoutOption(Duration.sum(Duration.fromInputUnsafe(closeTimeout), Duration.seconds(1))),
      Effect.asVoid
    )
  })

  yield* Effect.addFinalizer(() => shutdown)

  return ChatRoom.of({
    handle,
    stats: Effect.sync(() => ({ connections: sessions.size, members: [...members.keys()] })),
    shutdown
  })
})

/**
 * The room as a layer over a `ChatHub`; releasing it shuts the room down (every client gets `shutdown`). Under a
 * `Server`, the server's graceful shutdown already says goodbye (`Server.Shutdown`), whichever is released first.
 *
 * @category layers
 */
export const layer = (options?: Options): Layer.Layer<ChatRoom, never, ChatHub.ChatHub> =>
  Layer.effect(ChatRoom, make(options))

/**
 * The room on the in-process hub: a one-server chat.
 *
 * @category layers
 */
export const layerMemory = (options?: Options): Layer.Layer<ChatRoom> =>
  layer(options).pipe(Layer.provide(ChatHub.layerMemory))

/**
 * Serves one connection in the current `ChatRoom`. Load by reference only where the room lives (same process).
 *
 * @category handlers
 */
export const handler: Handler.StreamHandler<never, ChatRoom> = Handler.stream(
  (connection) => ChatRoom.use((room) => room.handle(connection)),
  { module: import.meta.url, export: "handler", name: "chat" }
)

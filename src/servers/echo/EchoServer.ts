/**
 * Echo handlers: every byte (stream transports) or every datagram (datagram transports) goes
 * back unchanged. When a stream peer half-closes, the echo finishes and then our side closes.
 *
 * Both handlers carry a reference, so every strategy (including `fork` and `worker`) can run them.
 *
 * @since 0.1.0
 */
import { Cause, Effect, Pull } from "effect"
import type { NonEmptyReadonlyArray } from "effect/Array"
import type * as Connection from "../../core/Connection.ts"
import type * as Datagram from "../../core/Datagram.ts"
import * as Handler from "../../core/Handler.ts"
import * as Server from "../../core/Server.ts"
import * as ShutdownWatch from "../internal/shutdownWatch.ts"

/**
 * Echoes one connection: each batch read is written back as one batch, so a read that delivered
 * several chunks costs one write syscall. While the socket takes the writes, the echo happens in
 * the read event itself (`readWhileLent` + `tryWriteAll`), from read buffers the connection reuses;
 * a full send buffer hands the batch to the fiber, which waits for the drain and then goes back to
 * reading.
 *
 * At a graceful shutdown (`Server.Shutdown`) the echo stops reading: a connection waiting for bytes
 * ends at once, one still writing a batch back ends once that batch is written. Either way our side
 * then half-closes, as after the peer's own half-close.
 * @category handlers
 */
export const echoConnection = (connection: Connection.Connection): Effect.Effect<void, Connection.ConnectionError> =>
  Effect.flatMap(Server.Shutdown, (shutdown) => {
    // Whether the fiber holds a batch the socket could not take yet. Set in the read event, so a
    // shutdown sees it even before the fiber resumes; the fast path pays nothing for it.
    let owing = false
    let stopping = false
    const echoNow = (batch: NonEmptyReadonlyArray<Uint8Array>) => {
      if (connection.tryWriteAll(batch)) return undefined
      owing = true
      return batch
    }
    const afterWrite: Pull.Pull<never, Connection.ConnectionError> = Effect.suspend(() => {
      owing = false
      return stopping ? Cause.done() : loop
    })
    const loop: Pull.Pull<never, Connection.ConnectionError> = Effect.flatMap(
      connection.readWhileLent(echoNow),
      (batch) => Effect.andThen(connection.writeAll(batch), afterWrite)
    )
    // Ends the input, so that a read that waits ends at once; a batch still owed is written first, then the loop
    // ends itself. The loop runs in the handler's fiber: a fiber of its own to interrupt would cost every idle
    // connection one more fiber.
    const cancel = ShutdownWatch.onShutdown(shutdown, () => {
      stopping = true
      if (!owing) Effect.runSync(connection.stopReading)
    })
    return Effect.matchCauseEffect(loop, {
      onSuccess: () => connection.end,
      onFailure: (cause) =>
        Pull.isDoneCause(cause) ? connection.end : Effect.failCause(cause as Cause.Cause<Connection.ConnectionError>)
    }).pipe(Effect.ensuring(Effect.sync(cancel)))
  })

/**
 * Echoes one datagram to its sender.
 * @category handlers
 */
export const echoDatagram = (datagram: Datagram.Datagram): Effect.Effect<void, Datagram.DatagramError> =>
  datagram.reply(datagram.payload)

/**
 * The stream echo handler.
 * @category handlers
 */
export const streamHandler = Handler.stream(echoConnection, {
  name: "echo",
  module: import.meta.url,
  export: "streamHandler"
})

/**
 * The datagram echo handler.
 * @category handlers
 */
export const datagramHandler = Handler.datagram(echoDatagram, {
  name: "echo",
  module: import.meta.url,
  export: "datagramHandler"
})

/**
 * Echo handlers: every byte (stream transports) or every datagram (datagram transports) goes
 * back unchanged. When a stream peer half-closes, the echo finishes and then our side closes.
 *
 * Both handlers carry a reference, so every strategy (including `fork` and `worker`) can run them.
 *
 * @since 0.1.0
 */
import { Effect, Pull } from "effect"
import type { NonEmptyReadonlyArray } from "effect/Array"
import type * as Connection from "../../core/Connection.ts"
import type * as Datagram from "../../core/Datagram.ts"
import * as Handler from "../../core/Handler.ts"

/**
 * Echoes one connection: each batch read is written back as one batch, so a read that delivered
 * several chunks costs one write syscall. While the socket takes the writes, the echo happens in
 * the read event itself (`readWhileLent` + `tryWriteAll`), from read buffers the connection reuses;
 * a full send buffer hands the batch to the fiber, which waits for the drain and then goes back to
 * reading.
 * @category handlers
 */
export const echoConnection = (connection: Connection.Connection): Effect.Effect<void, Connection.ConnectionError> => {
  const echoNow = (batch: NonEmptyReadonlyArray<Uint8Array>) => connection.tryWriteAll(batch) ? undefined : batch
  const loop: Pull.Pull<void, Connection.ConnectionError> = Effect.flatMap(
    connection.readWhileLent(echoNow),
    (batch) => Effect.andThen(connection.writeAll(batch), loop)
  )
  return Pull.catchDone(loop, () => connection.end)
}

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

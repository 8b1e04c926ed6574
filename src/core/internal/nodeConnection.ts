/**
 * `Connection` over a Node `net.Socket`, for the in-process strategies and for the fork children and
 * worker threads that received an accepted socket.
 *
 * This reads in flowing mode and pauses the socket at a high-water mark instead of using effect's
 * `NodeSocket` reader, which pulls with paused-mode `read()` (concatenating Node's buffered
 * chunks) and parks every pull in a callback. In the same bench run, small-message round trips
 * went from 0.57x to 0.83x of a raw `socket.pipe` echo and p99 from 1.75 ms to 0.26 ms. A pull
 * that finds data returns it at once; a slow consumer still stops the socket (TCP flow control)
 * once `highWaterMark` bytes wait unread.
 *
 * Reading starts with the handler's first read. `readWhile` runs its step in the data event;
 * `readWhileLent` first moves the connection onto a socket that reads into reused buffers (see
 * `lendingSocket`), so a relay or echo allocates nothing per read.
 */
import { Cause, Duration, Effect, Scope, Stream } from "effect"
import type { NonEmptyReadonlyArray } from "effect/Array"
import { NetAddress } from "effect/net"
import type { Pull } from "effect"
import * as Net from "node:net"
import * as NodeTls from "node:tls"
import * as Connection from "../Connection.ts"
import * as Metrics from "../Metrics.ts"

/** Peer details read once from the raw socket at accept time. */
export interface Peer {
  readonly remoteAddress: NetAddress.InetAddress | undefined
  readonly peer: string
}

/** Reads the peer's address from a raw socket; Unix peers are unnamed. */
export const peerOf = (raw: Net.Socket, transport: "tcp" | "unix"): Peer => {
  if (transport === "unix" || raw.remoteAddress === undefined || raw.remotePort === undefined) {
    return { remoteAddress: undefined, peer: "local" }
  }
  const address = NetAddress.inetAddressFromIpString(raw.remoteAddress, raw.remotePort)
  return address._tag === "Success"
    ? { remoteAddress: address.success, peer: NetAddress.formatSocketAddress(address.success) }
    : { remoteAddress: undefined, peer: `${raw.remoteAddress}:${raw.remotePort}` }
}

/** Bytes read ahead of the handler before the socket is paused. */
export const defaultHighWaterMark = 256 * 1024

const discard = () => {}

/** The size of a lent read buffer: what one read takes at most, as Node's own reads. */
const lentReadBytes = 64 * 1024

/** Free lent buffers a connection keeps for its next reads. */
const maxSpareBuffers = 4

interface UserBufferRead {
  readonly buffer: () => Uint8Array
  readonly callback: (nread: number, buf: Uint8Array) => void
}

/**
 * A socket of ours over `accepted`'s handle that reads into our own buffers, or `undefined` when
 * that cannot be done safely (bytes were read or written already, or there is no handle).
 *
 * Why: every read of a Node socket allocates a fresh 64 KiB buffer, and V8 answers each ~64 MiB of
 * such external memory with a full mark-compact of the heap. With an Effect program's heap that GC
 * is what bounds bulk throughput (a raw echo that merely imports `effect` falls to ~0.75x). Node's
 * `onread` option reads into buffers we supply instead, but `net.Server` offers it to no accepted
 * socket, so we build the socket ourselves over the accepted handle, as `net.Server` does itself.
 * The old socket object gives up its handle and is destroyed, which keeps the server's count of
 * connections right. A socket that a fork child or worker thread received has a handle of its own
 * there, so the same works on it (the member pauses it on arrival, so nothing was read yet).
 * A TLS socket's handle is the TLS session over the TCP handle, which a plain
 * socket cannot read: TLS connections read owned bytes (its own buffers are decrypted into anyway).
 */
const lendingSocket = (accepted: Net.Socket, onread: UserBufferRead): Net.Socket | undefined => {
  const internal = accepted as unknown as { _handle: unknown }
  const handle = internal._handle
  // `_handle` is Node's own field: should it ever change shape, lend owned bytes instead
  if (
    accepted instanceof NodeTls.TLSSocket || typeof handle !== "object" || handle === null || accepted.bytesRead > 0 ||
    accepted.readableLength > 0 || accepted.writableLength > 0
  ) return undefined
  internal._handle = null
  const socket = new Net.Socket({
    handle,
    allowHalfOpen: accepted.allowHalfOpen,
    readable: true,
    writable: true,
    onread
  } as Net.SocketConstructorOpts)
  accepted.destroy()
  return socket
}

/** How long a closing connection may take to flush its last writes and see the peer's FIN. */
const lingerMillis = 5_000

const closedError = new Connection.ConnectionError({ reason: "Closed", message: "connection is closed" })

/** `open` on a connection whose peer went away while it waited to be served. */
export const closedBeforeOpen = new Connection.ConnectionError({
  reason: "Closed",
  message: "the peer closed the connection before it was served"
})

type Batch = NonEmptyReadonlyArray<Uint8Array>
type Resume = (effect: Effect.Effect<Batch, Connection.ConnectionError | Cause.Done>) => void

/**
 * Opens `raw` as a `Connection` owned by the current scope: closing the scope flushes what was
 * written and closes the socket.
 */
export const open = (
  accepted: Net.Socket,
  meta: {
    readonly id: number
    readonly transport: "tcp" | "unix"
    readonly localAddress: NetAddress.SocketAddress
    readonly peer: Peer
    readonly idleTimeout?: Duration.Input | undefined
    readonly highWaterMark?: number | undefined
  }
): Effect.Effect<Connection.Connection, Connection.ConnectionError, Scope.Scope> =>
  Effect.suspend(() => {
    if (accepted.destroyed) return Effect.fail(closedBeforeOpen)
    // the socket we read and write: `accepted`, or our own over its handle once reads are lent
    let raw = accepted
    const highWaterMark = meta.highWaterMark ?? defaultHighWaterMark
    let pending: Array<Uint8Array> = []
    let pendingBytes = 0
    let ended = false
    let failure: Connection.ConnectionError | undefined
    let waiter: Resume | undefined
    // a parked `readWhile`: its step runs inside the data event, and the fiber wakes only for its result
    let stepper: ((batch: Batch) => unknown) | undefined
    let stepWaiter: ((effect: Effect.Effect<unknown, Connection.ConnectionError | Cause.Done>) => void) | undefined
    // whether that step takes lent bytes (`readWhileLent`)
    let stepLends = false
    let idle = false
    // Reading starts with the first read, which also decides how: into Node's fresh buffers, or
    // (for `readWhileLent`) into buffers of ours that are reused (see `lendingSocket`).
    let started = false
    let lending = false
    let lingering = false
    let readBuffer: Buffer | undefined
    // buffers that writes still queued in the socket may point into; free again once it has none
    let held: Array<Buffer> = []
    const spare: Array<Buffer> = []
    // `closed` waiters: resumed on the socket's close event, never on the peer's half-close ('end')
    let gone = false
    const closeWaiters = new Set<() => void>()

    const finishStep = (effect: Effect.Effect<unknown, Connection.ConnectionError | Cause.Done>) => {
      const resume = stepWaiter!
      stepper = undefined
      stepWaiter = undefined
      resume(effect)
    }
    const wake = () => {
      if (stepWaiter !== undefined) return finishStep(takePending())
      if (waiter === undefined) return
      const resume = waiter
      waiter = undefined
      resume(takePending())
    }
    // Runs the parked step on one batch; true when the step is over (a value or a throw) and the fiber resumes.
    const runStep = (chunk: Buffer): boolean => {
      let result: unknown
      try {
        result = stepper!([chunk])
      } catch (defect) {
        finishStep(Effect.die(defect))
        return true
      }
      if (result === undefined) return false
      finishStep(Effect.succeed(result))
      return true
    }
    const onData = (chunk: Buffer) => {
      if (stepper !== undefined) {
        runStep(chunk)
        return
      }
      pending.push(chunk)
      pendingBytes += chunk.length
      if (waiter !== undefined) wake()
      else if (pendingBytes >= highWaterMark) raw.pause()
    }
    const nextReadBuffer = (): Buffer => readBuffer ??= spare.pop() ?? Buffer.allocUnsafeSlow(lentReadBytes)
    const onLentRead = (nread: number, buf: Uint8Array): void => {
      if (lingering) return
      const view = (buf as Buffer).subarray(0, nread)
      if (stepper === undefined || !stepLends) return onData(Buffer.from(view))
      // When the step is over the fiber may still use the bytes, and a write the step made may point into the
      // buffer until it is written: either way the next read goes into another buffer.
      if (runStep(view)) readBuffer = undefined
      else if (raw.writableLength > 0) {
        held.push(readBuffer!)
        readBuffer = undefined
      }
    }
    const onWritten = () => {
      if (held.length === 0 || raw.writableLength > 0) return
      for (const buffer of held) if (spare.length < maxSpareBuffers) spare.push(buffer)
      held = []
    }
    const onEnd = () => {
      ended = true
      wake()
    }
    const onError = (cause: Error) => {
      failure ??= new Connection.ConnectionError({ reason: "ReadFailed", message: cause.message, cause })
      wake()
    }
    const onClose = () => {
      if (!ended) failure ??= idle ? idleError() : closedError
      gone = true
      for (const waiter of closeWaiters) waiter()
      closeWaiters.clear()
      wake()
    }
    const closed = Effect.callback<void>((resume) => {
      if (gone || raw.destroyed) return resume(Effect.void)
      const waiter = () => resume(Effect.void)
      closeWaiters.add(waiter)
      return Effect.sync(() => closeWaiters.delete(waiter))
    })
    const idleError = () =>
      new Connection.ConnectionError({ reason: "IdleTimeout", message: "connection idle for longer than the idle timeout" })

    function takeBatch(): Batch {
      const batch = pending as unknown as Batch
      pending = []
      pendingBytes = 0
      if (raw.isPaused() && !ended) raw.resume()
      return batch
    }

    // What a pull gets right now: buffered data first, then end or failure; undefined = wait.
    function takePending(): Effect.Effect<Batch, Connection.ConnectionError | Cause.Done> {
      if (pending.length > 0) return Effect.succeed(takeBatch())
      if (failure !== undefined) return Effect.fail(failure)
      return Cause.done()
    }

    // Built once per connection, not per read: a connection has at most one pending read, so
    // cancelling simply forgets the waiter.
    const forgetWaiter = Effect.sync(() => {
      waiter = undefined
    })
    const awaitData = Effect.callback<Batch, Connection.ConnectionError | Cause.Done>((resume) => {
      waiter = resume
      return forgetWaiter
    })
    const read: Pull.Pull<Batch, Connection.ConnectionError> = Effect.suspend(() => {
      if (!started) start(false)
      return pending.length > 0 || failure !== undefined || ended ? takePending() : awaitData
    }) as Pull.Pull<Batch, Connection.ConnectionError>

    const forgetStep = Effect.sync(() => {
      stepper = undefined
      stepWaiter = undefined
    })
    const readWhileWith = <A>(step: (batch: Batch) => A | undefined, lends: boolean): Pull.Pull<A, Connection.ConnectionError> =>
      Effect.suspend(() => {
        if (!started) start(lends)
        while (pending.length > 0) {
          const result = step(takeBatch())
          if (result !== undefined) return Effect.succeed(result)
        }
        if (failure !== undefined) return Effect.fail(failure)
        if (ended) return Cause.done()
        return Effect.callback<A, Connection.ConnectionError | Cause.Done>((resume) => {
          stepper = step
          stepLends = lends
          stepWaiter = resume as (effect: Effect.Effect<unknown, Connection.ConnectionError | Cause.Done>) => void
          return forgetStep
        })
      }) as Pull.Pull<A, Connection.ConnectionError>
    const readWhile = <A>(step: (batch: Batch) => A | undefined) => readWhileWith(step, false)
    const readWhileLent = <A>(step: (batch: Batch) => A | undefined) => readWhileWith(step, true)

    const awaitDrain = Effect.callback<void, Connection.ConnectionError>((resume) => {
      const cleanup = () => {
        raw.off("drain", onDrain)
        raw.off("close", onGone)
      }
      const onDrain = () => {
        cleanup()
        resume(Effect.void)
      }
      const onGone = () => {
        cleanup()
        resume(Effect.fail(idle ? idleError() : closedError))
      }
      raw.on("drain", onDrain)
      raw.on("close", onGone)
      return Effect.sync(cleanup)
    })
    const writable = () => !raw.destroyed && !raw.writableEnded
    const write = (chunk: Uint8Array | string): Effect.Effect<void, Connection.ConnectionError> =>
      Effect.suspend(() => {
        if (!writable()) return Effect.fail(idle ? idleError() : closedError)
        return rawWrite(chunk) ? Effect.void : awaitDrain
      })
    function rawWrite(chunk: Uint8Array | string): boolean {
      return lending ? raw.write(chunk, onWritten) : raw.write(chunk)
    }
    // One batch, one syscall: a single chunk is one write; several are corked into one writev.
    // Returns false when the send buffer is full afterwards.
    const writeBatch = (chunks: ReadonlyArray<Uint8Array | string>): boolean => {
      if (chunks.length === 1) return rawWrite(chunks[0]!)
      raw.cork()
      let full = false
      for (let i = 0; i < chunks.length; i++) full = !rawWrite(chunks[i]!) || full
      raw.uncork()
      return !full
    }
    const writeAll = (chunks: ReadonlyArray<Uint8Array | string>): Effect.Effect<void, Connection.ConnectionError> =>
      Effect.suspend(() => {
        if (chunks.length === 0) return Effect.void
        if (!writable()) return Effect.fail(idle ? idleError() : closedError)
        return writeBatch(chunks) ? Effect.void : awaitDrain
      })
    const tryWriteAll = (chunks: ReadonlyArray<Uint8Array | string>): boolean => {
      if (!writable() || raw.writableNeedDrain) return false
      if (chunks.length > 0) writeBatch(chunks)
      return true
    }

    const onIdle = () => {
      idle = true
      raw.destroy()
    }
    const attach = (socket: Net.Socket) => {
      if (!lending) socket.on("data", onData)
      socket.on("end", onEnd)
      socket.on("error", onError)
      socket.on("close", onClose)
      if (meta.idleTimeout !== undefined) {
        const millis = Duration.toMillis(Duration.fromInputUnsafe(meta.idleTimeout))
        // Node's socket timer restarts on every read and write, which is exactly "idle".
        if (millis > 0 && Number.isFinite(millis)) socket.setTimeout(millis, onIdle)
      }
    }
    const detach = (socket: Net.Socket) => {
      socket.off("data", onData)
      socket.off("end", onEnd)
      socket.off("error", onError)
      socket.off("close", onClose)
      socket.setTimeout(0)
    }
    function start(lend: boolean): void {
      started = true
      if (lend && !raw.destroyed) {
        const own = lendingSocket(raw, { buffer: nextReadBuffer, callback: onLentRead })
        if (own !== undefined) {
          detach(raw)
          raw = own
          lending = true
          attach(raw)
        }
      }
      raw.resume()
    }
    const acquire = Effect.sync(() => attach(raw))
    const release = Effect.sync(() => {
      raw.off("data", onData)
      raw.off("end", onEnd)
      raw.setTimeout(0)
      if (raw.destroyed) return
      // Lingering close: send our FIN after the last writes and discard what the peer still sends
      // until its FIN. Closing with unread input would reset the connection and could destroy
      // our last writes before the peer reads them. A peer that never finishes is cut off.
      lingering = true
      raw.on("data", discard)
      raw.once("end", () => raw.destroy())
      raw.end()
      raw.resume()
      const timer = setTimeout(() => raw.destroy(), lingerMillis)
      timer.unref()
      raw.once("close", () => clearTimeout(timer))
    })

    return Effect.acquireRelease(acquire, () => release).pipe(
      Effect.andThen(Metrics.connectionOpened(meta.transport)),
      Effect.andThen(Effect.addFinalizer(() => Metrics.connectionClosed(
        meta.transport,
        raw === accepted ? raw.bytesRead : accepted.bytesRead + raw.bytesRead,
        raw === accepted ? raw.bytesWritten : accepted.bytesWritten + raw.bytesWritten
      ))),
      Effect.as({
        id: meta.id,
        transport: meta.transport,
        localAddress: meta.localAddress,
        remoteAddress: meta.peer.remoteAddress,
        peer: meta.peer.peer,
        read,
        readWhile,
        readWhileLent,
        bytes: Stream.fromPull(Effect.succeed(read)),
        write,
        writeAll,
        tryWriteAll,
        closed,
        end: Effect.sync(() => {
          if (!raw.writableEnded && !raw.destroyed) raw.end()
        }),
        close: Effect.sync(() => {
          raw.destroy()
        })
      } satisfies Connection.Connection)
    )
  })

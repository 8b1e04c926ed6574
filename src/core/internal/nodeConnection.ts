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
 *
 * Memory: a server may hold tens of thousands of idle connections, so one costs little more than its
 * Node socket. The state is one object (`NodeConnection`); the socket's listeners are shared
 * functions that find it through the socket; the members of `Connection` are built on first use
 * (an idle echo connection never builds `read` or `write`); small lent reads go into one buffer per
 * thread and are copied out, and only a connection that fills it gets large buffers of its own.
 */
import { Cause, Duration, Effect, Stream } from "effect"
import type { Scope } from "effect"
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

/** Lent read buffers: a connection that fills a small one reads into large ones, as Node's own reads. */
const smallLentBytes = 1024
const largeLentBytes = 64 * 1024

/**
 * The small lent buffer, one per thread: an idle connection holds none of its own. Safe to share because Node reads
 * into it only just before our read callback runs, and the callback copies the bytes out (see `lentRead`).
 */
let sharedSmall: Buffer | undefined
const sharedSmallBuffer = (): Buffer => sharedSmall ??= Buffer.allocUnsafeSlow(smallLentBytes)

/** Free large lent buffers a connection keeps for its next reads. */
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

const idleError = () =>
  new Connection.ConnectionError({ reason: "IdleTimeout", message: "connection idle for longer than the idle timeout" })

type Batch = NonEmptyReadonlyArray<Uint8Array>
type Resume = (effect: Effect.Effect<Batch, Connection.ConnectionError | Cause.Done>) => void
type Step = (batch: Batch) => unknown
type StepResume = (effect: Effect.Effect<unknown, Connection.ConnectionError | Cause.Done>) => void

/** The connection a socket belongs to, for the listeners every connection shares. */
const owner = Symbol.for("effect-netkit/core/NodeConnection")
type Owned = Net.Socket & { [owner]?: NodeConnection }
const ownerOf = (socket: Net.Socket): NodeConnection => (socket as Owned)[owner]!

// The socket listeners, one set for all connections: `this` is the socket.
function onData(this: Net.Socket, chunk: Buffer): void {
  ownerOf(this).data(chunk)
}
function onEnd(this: Net.Socket): void {
  const conn = ownerOf(this)
  conn.ended = true
  conn.wake()
}
function onError(this: Net.Socket, cause: Error): void {
  const conn = ownerOf(this)
  conn.failure ??= new Connection.ConnectionError({ reason: "ReadFailed", message: cause.message, cause })
  conn.wake()
}
function onClose(this: Net.Socket): void {
  const conn = ownerOf(this)
  if (!conn.ended) conn.failure ??= conn.idle ? idleError() : closedError
  conn.gone = true
  const waiters = conn.closeWaiters
  if (waiters !== undefined) {
    conn.closeWaiters = undefined
    for (const waiter of waiters) waiter()
  }
  conn.wake()
}
function onIdle(this: Net.Socket): void {
  ownerOf(this).idle = true
  this.destroy()
}
function onLentRead(this: Net.Socket, nread: number, buf: Uint8Array): void {
  ownerOf(this).lentRead(nread, buf)
}
function discard(): void {}
function destroyThis(this: Net.Socket): void {
  this.destroy()
}
function destroySocket(socket: Net.Socket): void {
  socket.destroy()
}
function clearLinger(this: Net.Socket): void {
  const conn = ownerOf(this)
  if (conn.lingerTimer !== undefined) clearTimeout(conn.lingerTimer)
}

/**
 * One connection over a Node socket. The members of `Connection` are getters that build what they
 * return on first use and keep it: an idle connection builds nothing, and a member taken off the
 * object (`const { write } = connection`) still works.
 */
class NodeConnection implements Connection.Connection {
  readonly id: number
  readonly transport: "tcp" | "unix"
  readonly localAddress: NetAddress.SocketAddress
  readonly remoteAddress: NetAddress.InetAddress | undefined
  readonly peer: string

  /** The socket we read and write: the accepted one, or our own over its handle once reads are lent. */
  raw: Net.Socket
  /** Bytes the accepted socket had written before reads were lent (its counters stay with it). */
  writtenBefore = 0
  readonly highWaterMark: number
  readonly idleMillis: number

  pending: Array<Uint8Array> = []
  pendingBytes = 0
  ended = false
  failure: Connection.ConnectionError | undefined = undefined
  waiter: Resume | undefined = undefined
  /** A parked `readWhile`: its step runs inside the data event, and the fiber wakes only for its result. */
  stepper: Step | undefined = undefined
  stepWaiter: StepResume | undefined = undefined
  /** Whether that step takes lent bytes (`readWhileLent`). */
  stepLends = false
  idle = false
  /** Reading starts with the first read, which also decides how (see `start`). */
  started = false
  lending = false
  lingering = false
  lingerTimer: ReturnType<typeof setTimeout> | undefined = undefined
  /** The large lent buffer the next read goes into while the connection streams; else the thread's shared one. */
  readBuffer: Buffer | undefined = undefined
  /** While reads are lent: called as each write completes, to free the buffers it held. */
  written: (() => void) | undefined = undefined
  /** Buffers that writes still queued in the socket may point into; free again once it has none. */
  held: Array<Buffer> | undefined = undefined
  spare: Array<Buffer> = []
  /** `closed` waiters: resumed on the socket's close event, never on the peer's half-close ('end'). */
  gone = false
  closeWaiters: Set<() => void> | undefined = undefined

  // Members built on first use.
  #read: Pull.Pull<Batch, Connection.ConnectionError> | undefined = undefined
  #awaitData: Effect.Effect<Batch, Connection.ConnectionError | Cause.Done> | undefined = undefined
  #forgetStep: Effect.Effect<void> | undefined = undefined
  #readWhile: Connection.Connection["readWhile"] | undefined = undefined
  #readWhileLent: Connection.Connection["readWhileLent"] | undefined = undefined
  #write: Connection.Connection["write"] | undefined = undefined
  #writeAll: Connection.Connection["writeAll"] | undefined = undefined
  #tryWriteAll: Connection.Connection["tryWriteAll"] | undefined = undefined
  #closed: Effect.Effect<void> | undefined = undefined
  #stopReading: Effect.Effect<void> | undefined = undefined
  #end: Effect.Effect<void> | undefined = undefined
  #close: Effect.Effect<void> | undefined = undefined

  constructor(accepted: Net.Socket, meta: OpenMeta) {
    this.id = meta.id
    this.transport = meta.transport
    this.localAddress = meta.localAddress
    this.remoteAddress = meta.peer.remoteAddress
    this.peer = meta.peer.peer
    this.raw = accepted
    this.highWaterMark = meta.highWaterMark ?? defaultHighWaterMark
    const millis = meta.idleTimeout === undefined ? 0 : Duration.toMillis(Duration.fromInputUnsafe(meta.idleTimeout))
    this.idleMillis = millis > 0 && Number.isFinite(millis) ? millis : 0
  }

  // --- reading

  data(chunk: Buffer): void {
    if (this.stepper !== undefined) {
      this.runStep(chunk)
      return
    }
    this.pending.push(chunk)
    this.pendingBytes += chunk.length
    if (this.waiter !== undefined) this.wake()
    else if (this.pendingBytes >= this.highWaterMark) this.raw.pause()
  }

  wake(): void {
    if (this.stepWaiter !== undefined) return this.finishStep(this.takePending())
    const resume = this.waiter
    if (resume === undefined) return
    this.waiter = undefined
    resume(this.takePending())
  }

  finishStep(effect: Effect.Effect<unknown, Connection.ConnectionError | Cause.Done>): void {
    const resume = this.stepWaiter!
    this.stepper = undefined
    this.stepWaiter = undefined
    resume(effect)
  }

  /** Runs the parked step on one batch; true when the step is over (a value or a throw) and the fiber resumes. */
  runStep(chunk: Buffer): boolean {
    let result: unknown
    try {
      result = this.stepper!([chunk])
    } catch (defect) {
      this.finishStep(Effect.die(defect))
      return true
    }
    if (result === undefined) return false
    this.finishStep(Effect.succeed(result))
    return true
  }

  takeBatch(): Batch {
    const batch = this.pending as unknown as Batch
    this.pending = []
    this.pendingBytes = 0
    if (this.raw.isPaused() && !this.ended) this.raw.resume()
    return batch
  }

  /** What a pull gets right now: buffered data first, then end or failure. */
  takePending(): Effect.Effect<Batch, Connection.ConnectionError | Cause.Done> {
    if (this.pending.length > 0) return Effect.succeed(this.takeBatch())
    if (this.failure !== undefined) return Effect.fail(this.failure)
    return Cause.done()
  }

  get read(): Pull.Pull<Batch, Connection.ConnectionError> {
    return this.#read ??= Effect.suspend(() => {
      if (!this.started) this.start(false)
      if (this.pending.length > 0 || this.failure !== undefined || this.ended) return this.takePending()
      // built once: a connection has at most one pending read, so cancelling simply forgets the waiter
      return this.#awaitData ??= Effect.callback<Batch, Connection.ConnectionError | Cause.Done>((resume) => {
        this.waiter = resume
        return Effect.sync(() => {
          this.waiter = undefined
        })
      })
    }) as Pull.Pull<Batch, Connection.ConnectionError>
  }

  get bytes(): Stream.Stream<Uint8Array, Connection.ConnectionError> {
    return Stream.fromPull(Effect.succeed(this.read))
  }

  readWhileWith<A>(step: (batch: Batch) => A | undefined, lends: boolean): Pull.Pull<A, Connection.ConnectionError> {
    return Effect.suspend(() => {
      if (!this.started) this.start(lends)
      while (this.pending.length > 0) {
        const result = step(this.takeBatch())
        if (result !== undefined) return Effect.succeed(result)
      }
      if (this.failure !== undefined) return Effect.fail(this.failure)
      if (this.ended) return Cause.done()
      return Effect.callback<A, Connection.ConnectionError | Cause.Done>((resume) => {
        this.stepper = step
        this.stepLends = lends
        this.stepWaiter = resume as StepResume
        return this.#forgetStep ??= Effect.sync(() => {
          this.stepper = undefined
          this.stepWaiter = undefined
        })
      })
    }) as Pull.Pull<A, Connection.ConnectionError>
  }

  get readWhile(): Connection.Connection["readWhile"] {
    return this.#readWhile ??= (step) => this.readWhileWith(step, false)
  }

  get readWhileLent(): Connection.Connection["readWhileLent"] {
    return this.#readWhileLent ??= (step) => this.readWhileWith(step, true)
  }

  // --- lent reads

  /** Where Node reads this connection's next bytes: its own large buffer while it streams, else the shared one. */
  nextReadBuffer(): Buffer {
    return this.readBuffer ?? sharedSmallBuffer()
  }

  lentRead(nread: number, buf: Uint8Array): void {
    if (this.lingering) return
    const buffer = buf as Buffer
    const view = buffer.subarray(0, nread)
    if (buffer === sharedSmall) {
      // The shared buffer: every connection of this thread reads into it, so the bytes leave it before the next read
      // (a copy of at most 1 KiB). A connection that fills it streams: its next reads go into large buffers of its own.
      if (nread === buffer.length) this.readBuffer = this.spare.pop() ?? Buffer.allocUnsafeSlow(largeLentBytes)
      this.data(Buffer.from(view))
      return
    }
    // This connection's own large buffer: a lending step gets the bytes in place. When the step is over the fiber may
    // still use them, and a write the step made may point into the buffer until it is written: either way the next
    // read goes into another buffer.
    let next: Buffer | undefined = buffer
    if (this.stepper === undefined || !this.stepLends) this.data(Buffer.from(view))
    else if (this.runStep(view)) next = undefined
    else if (this.raw.writableLength > 0) {
      ;(this.held ??= []).push(buffer)
      next = undefined
    }
    if (next === buffer && nread <= smallLentBytes / 8) {
      // tiny reads again (the stream is over, or it idles): back to the shared buffer, and the spares go
      this.readBuffer = undefined
      this.spare.length = 0
    } else if (next === undefined) {
      this.readBuffer = this.spare.pop() ?? Buffer.allocUnsafeSlow(largeLentBytes)
    }
  }

  freeHeld(): void {
    const held = this.held
    if (held === undefined || this.raw.writableLength > 0) return
    this.held = undefined
    // spares only while the connection streams: one that went back to the shared buffer (idle) keeps none
    if (this.readBuffer === undefined) return
    for (const buffer of held) if (this.spare.length < maxSpareBuffers) this.spare.push(buffer)
  }

  start(lend: boolean): void {
    this.started = true
    const accepted = this.raw
    if (lend && !accepted.destroyed) {
      // Node calls `buffer` detached, `callback` as a method of the socket
      const own = lendingSocket(accepted, { buffer: () => this.nextReadBuffer(), callback: onLentRead })
      if (own !== undefined) {
        this.detach(accepted)
        this.writtenBefore = accepted.bytesWritten
        this.raw = own
        this.lending = true
        this.written = () => this.freeHeld()
        this.attach(own)
      }
    }
    // input ended before the first read (`stopReading`): the socket stays paused, the read ends at once
    if (!this.ended) this.raw.resume()
  }

  // --- writing

  writable(): boolean {
    return !this.raw.destroyed && !this.raw.writableEnded
  }

  closedOrIdle(): Connection.ConnectionError {
    return this.idle ? idleError() : closedError
  }

  awaitDrain(): Effect.Effect<void, Connection.ConnectionError> {
    return Effect.callback<void, Connection.ConnectionError>((resume) => {
      const raw = this.raw
      const cleanup = () => {
        raw.off("drain", drained)
        raw.off("close", gone)
      }
      const drained = () => {
        cleanup()
        resume(Effect.void)
      }
      const gone = () => {
        cleanup()
        resume(Effect.fail(this.closedOrIdle()))
      }
      raw.on("drain", drained)
      raw.on("close", gone)
      return Effect.sync(cleanup)
    })
  }

  rawWrite(chunk: Uint8Array | string): boolean {
    return this.written !== undefined ? this.raw.write(chunk, this.written) : this.raw.write(chunk)
  }

  /** One batch, one syscall: a single chunk is one write; several are corked into one writev. False when full. */
  writeBatch(chunks: ReadonlyArray<Uint8Array | string>): boolean {
    if (chunks.length === 1) return this.rawWrite(chunks[0]!)
    const raw = this.raw
    raw.cork()
    let full = false
    for (let i = 0; i < chunks.length; i++) full = !this.rawWrite(chunks[i]!) || full
    raw.uncork()
    return !full
  }

  get write(): Connection.Connection["write"] {
    return this.#write ??= (chunk) =>
      Effect.suspend(() => {
        if (!this.writable()) return Effect.fail(this.closedOrIdle())
        return this.rawWrite(chunk) ? Effect.void : this.awaitDrain()
      })
  }

  get writeAll(): Connection.Connection["writeAll"] {
    return this.#writeAll ??= (chunks) =>
      Effect.suspend(() => {
        if (chunks.length === 0) return Effect.void
        if (!this.writable()) return Effect.fail(this.closedOrIdle())
        return this.writeBatch(chunks) ? Effect.void : this.awaitDrain()
      })
  }

  get tryWriteAll(): Connection.Connection["tryWriteAll"] {
    return this.#tryWriteAll ??= (chunks) => {
      if (!this.writable() || this.raw.writableNeedDrain) return false
      if (chunks.length > 0) this.writeBatch(chunks)
      return true
    }
  }

  get closed(): Effect.Effect<void> {
    return this.#closed ??= Effect.callback<void>((resume) => {
      if (this.gone || this.raw.destroyed) return resume(Effect.void)
      const waiter = () => resume(Effect.void)
      const waiters = this.closeWaiters ??= new Set()
      waiters.add(waiter)
      return Effect.sync(() => {
        waiters.delete(waiter)
      })
    })
  }

  get stopReading(): Effect.Effect<void> {
    return this.#stopReading ??= Effect.sync(() => {
      if (this.ended) return
      // reads now end as at the peer's end of stream; what arrives later stays in the kernel
      this.ended = true
      if (!this.raw.destroyed) this.raw.pause()
      this.wake()
    })
  }

  get end(): Effect.Effect<void> {
    return this.#end ??= Effect.sync(() => {
      const raw = this.raw
      if (!raw.writableEnded && !raw.destroyed) raw.end()
    })
  }

  get close(): Effect.Effect<void> {
    return this.#close ??= Effect.sync(() => {
      this.raw.destroy()
    })
  }

  // --- life cycle

  attach(socket: Net.Socket): void {
    ;(socket as Owned)[owner] = this
    if (!this.lending) socket.on("data", onData)
    socket.on("end", onEnd)
    socket.on("error", onError)
    socket.on("close", onClose)
    // Node's socket timer restarts on every read and write, which is exactly "idle".
    if (this.idleMillis > 0) socket.setTimeout(this.idleMillis, onIdle)
  }

  detach(socket: Net.Socket): void {
    socket.off("data", onData)
    socket.off("end", onEnd)
    socket.off("error", onError)
    socket.off("close", onClose)
    socket.off("timeout", onIdle)
    socket.setTimeout(0)
  }

  /** Closes the connection (lingering, see below) and counts it closed. */
  release(): Effect.Effect<void> {
    const raw = this.raw
    raw.off("data", onData)
    raw.off("end", onEnd)
    raw.off("timeout", onIdle)
    raw.setTimeout(0)
    if (!raw.destroyed) {
      // Lingering close: send our FIN after the last writes and discard what the peer still sends
      // until its FIN. Closing with unread input would reset the connection and could destroy
      // our last writes before the peer reads them. A peer that never finishes is cut off.
      this.lingering = true
      raw.on("data", discard)
      raw.once("end", destroyThis)
      raw.end()
      raw.resume()
      this.lingerTimer = setTimeout(destroySocket, lingerMillis, raw)
      this.lingerTimer.unref()
      raw.once("close", clearLinger)
    }
    return Metrics.connectionClosed(this.transport, raw.bytesRead, this.writtenBefore + raw.bytesWritten)
  }
}

interface OpenMeta {
  readonly id: number
  readonly transport: "tcp" | "unix"
  readonly localAddress: NetAddress.SocketAddress
  readonly peer: Peer
  readonly idleTimeout?: Duration.Input | undefined
  readonly highWaterMark?: number | undefined
}

/**
 * Opens `raw` as a `Connection` owned by the current scope: closing the scope flushes what was
 * written and closes the socket.
 */
export const open = (
  accepted: Net.Socket,
  meta: OpenMeta
): Effect.Effect<Connection.Connection, Connection.ConnectionError, Scope.Scope> =>
  Effect.uninterruptible(Effect.suspend(() => {
    if (accepted.destroyed) return Effect.fail(closedBeforeOpen)
    const connection = new NodeConnection(accepted, meta)
    connection.attach(accepted)
    return Effect.as(
      Effect.andThen(Effect.addFinalizer(releaseOf(connection)), Metrics.connectionOpened(meta.transport)),
      connection
    )
  }))

// Apart from `open`, so that the finalizer holds on to the connection alone, not to the socket it was opened with
// (which a lent connection has replaced).
const releaseOf = (connection: NodeConnection) => () => connection.release()

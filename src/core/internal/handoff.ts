/**
 * The remote engine's contract with listeners (see `remote.ts`): how an accepted connection's socket
 * can leave this thread for a fork child or a worker thread.
 *
 * A listener over Node sockets attaches the accepted `net.Socket` to the `IncomingConnection` it
 * yields; the engine takes it when it runs the job in a member. The `Listener` contract itself
 * knows nothing of sockets: a listener that attaches none still works with every strategy, and the
 * remote strategies then open the connection here and bridge it, or refuse it (see the transports).
 */
import type * as Net from "node:net"
import type * as Listener from "../Listener.ts"

/** Where an incoming connection carries its socket (a listener may define it as a getter). */
export const socketKey: unique symbol = Symbol.for("effect-netkit/core/internal/handoff/socket")

/** An incoming connection that carries its accepted socket. */
export interface WithSocket {
  readonly [socketKey]: Net.Socket | undefined
}

/** Attaches the accepted socket to an incoming connection (a listener builds it with this field). */
export const attach = <A extends Listener.IncomingConnection>(incoming: A, socket: Net.Socket): A & WithSocket =>
  Object.assign(incoming, { [socketKey]: socket })

/** The accepted socket behind `incoming`, when its listener attached one. */
export const socketOf = (incoming: Listener.IncomingConnection): Net.Socket | undefined =>
  (incoming as Partial<WithSocket>)[socketKey]

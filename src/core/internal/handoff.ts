/**
 * The remote engine's contract with listeners (see `remote.ts`): how an accepted connection's socket
 * can leave this thread for a fork child or a worker thread.
 *
 * A listener over Node sockets attaches the accepted `net.Socket` to the `IncomingConnection` it
 * yields; the engine takes it when it runs the job in a member. The `Listener` contract itself
 * knows nothing of sockets: a listener that attaches none still works with every strategy, and the
 * remote strategies then open the connection here and bridge it, or refuse it (see the transports).
 *
 * A TLS listener attaches its `Tls.Config` too: the member that receives the raw socket does the
 * handshake with the settings current when the connection is passed (see `Tls`).
 */
import type * as Net from "node:net"
import type * as Listener from "../Listener.ts"
import type * as Tls from "../Tls.ts"

const socketKey: unique symbol = Symbol.for("effect-netkit/core/internal/handoff/socket")
const tlsKey: unique symbol = Symbol.for("effect-netkit/core/internal/handoff/tls")

/** An incoming connection that carries its accepted socket (and, for a TLS listener, its TLS config). */
export interface WithSocket {
  readonly [socketKey]: Net.Socket
  readonly [tlsKey]?: Tls.Config | undefined
}

/** Attaches the accepted socket (and the TLS config) to an incoming connection (a listener builds it with these fields). */
export const attach = <A extends Listener.IncomingConnection>(
  incoming: A,
  socket: Net.Socket,
  tls?: Tls.Config | undefined
): A & WithSocket => Object.assign(incoming, { [socketKey]: socket, [tlsKey]: tls })

/** The TLS config a member must secure the passed socket with, when its listener serves TLS. */
export const tlsOf = (incoming: Listener.IncomingConnection): Tls.Config | undefined =>
  (incoming as Partial<WithSocket>)[tlsKey]

/** The accepted socket behind `incoming`, when its listener attached one. */
export const socketOf = (incoming: Listener.IncomingConnection): Net.Socket | undefined =>
  (incoming as Partial<WithSocket>)[socketKey]

/**
 * The remote engine's contract with listeners (see `remote.ts`): how an accepted connection's socket
 * can leave this thread for a fork child or a worker thread.
 *
 * A listener over Node sockets carries the accepted `net.Socket` on the `IncomingConnection` it
 * yields, under `socketKey`; the engine takes it when it runs the job in a member. The `Listener` contract itself
 * knows nothing of sockets: a listener that attaches none still works with every strategy, and the
 * remote strategies then open the connection here and bridge it, or refuse it (see the transports).
 *
 * A TLS listener attaches its `Tls.Config` too: the member that receives the raw socket does the
 * handshake with the settings current when the connection is passed (see `Tls`).
 */
import type * as Net from "node:net"
import type * as Listener from "../Listener.ts"
import type * as Tls from "../Tls.ts"

/** Where an incoming connection carries its socket (a listener may define it as a getter). */
export const socketKey: unique symbol = Symbol.for("effect-netkit/core/internal/handoff/socket")
/** Where an incoming connection of a TLS listener carries its TLS config (a getter works too). */
export const tlsKey: unique symbol = Symbol.for("effect-netkit/core/internal/handoff/tls")

/** An incoming connection that carries its accepted socket (and, for a TLS listener, its TLS config). */
export interface WithSocket {
  readonly [socketKey]: Net.Socket | undefined
  readonly [tlsKey]?: Tls.Config | undefined
}

/** The TLS config a member must secure the passed socket with, when its listener serves TLS. */
export const tlsOf = (incoming: Listener.IncomingConnection): Tls.Config | undefined =>
  (incoming as Partial<WithSocket>)[tlsKey]

/** The accepted socket behind `incoming`, when its listener attached one. */
export const socketOf = (incoming: Listener.IncomingConnection): Net.Socket | undefined =>
  (incoming as Partial<WithSocket>)[socketKey]

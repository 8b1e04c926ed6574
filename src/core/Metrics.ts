/**
 * The server's Effect metrics: accepted, active and rejected connections, datagrams, bytes in and
 * out, handler failures, TLS handshakes. Every metric carries a `transport` attribute.
 *
 * Byte counters are updated once per connection, when it closes, from the socket's own counters,
 * so the hot read/write path pays nothing for them.
 *
 * @since 0.1.0
 */
import { Effect, Metric } from "effect"

/** @category metrics */
export const connectionsAccepted = Metric.counter("netkit_connections_accepted_total", {
  description: "Connections accepted by a listener",
  incremental: true
})
/** @category metrics */
export const connectionsRejected = Metric.counter("netkit_connections_rejected_total", {
  description: "Connections and datagrams refused by the verify hook (queue overflow is Listener.dropped)",
  incremental: true
})
/** @category metrics */
export const connectionsActive = Metric.gauge("netkit_connections_active", {
  description: "Connections currently open in this process"
})
/** @category metrics */
export const datagramsReceived = Metric.counter("netkit_datagrams_received_total", {
  description: "Datagrams received by a listener",
  incremental: true
})
/** @category metrics */
export const bytesIn = Metric.counter("netkit_bytes_in_total", { description: "Bytes received", incremental: true })
/** @category metrics */
export const bytesOut = Metric.counter("netkit_bytes_out_total", { description: "Bytes sent", incremental: true })
/** @category metrics */
export const handlerFailures = Metric.counter("netkit_handler_failures_total", {
  description: "Handlers that failed or died (interruption by shutdown is not counted)",
  incremental: true
})

/** @category metrics */
export const tlsHandshakes = Metric.counter("netkit_tls_handshakes_total", {
  description: "TLS handshakes completed",
  incremental: true
})
/** @category metrics */
export const tlsHandshakeFailures = Metric.counter("netkit_tls_handshake_failures_total", {
  description: "TLS handshakes that failed or timed out, by `reason` (NotTls, PeerClosed, Timeout, PeerRefused, ...)",
  incremental: true
})

interface Tagged {
  readonly accepted: typeof connectionsAccepted
  readonly rejected: typeof connectionsRejected
  readonly active: typeof connectionsActive
  readonly datagrams: typeof datagramsReceived
  readonly bytesIn: typeof bytesIn
  readonly bytesOut: typeof bytesOut
  readonly failures: typeof handlerFailures
  readonly handshakes: typeof tlsHandshakes
}
// Attributed metrics are built once per transport, not per update.
const byTransport = new Map<string, Tagged>()
const tagged = (transport: string): Tagged => {
  let metrics = byTransport.get(transport)
  if (metrics === undefined) {
    const attributes = { transport }
    metrics = {
      accepted: Metric.withAttributes(connectionsAccepted, attributes),
      rejected: Metric.withAttributes(connectionsRejected, attributes),
      active: Metric.withAttributes(connectionsActive, attributes),
      datagrams: Metric.withAttributes(datagramsReceived, attributes),
      bytesIn: Metric.withAttributes(bytesIn, attributes),
      bytesOut: Metric.withAttributes(bytesOut, attributes),
      failures: Metric.withAttributes(handlerFailures, attributes),
      handshakes: Metric.withAttributes(tlsHandshakes, attributes)
    }
    byTransport.set(transport, metrics)
  }
  return metrics
}

/** @category updates */
export const accepted = (transport: string, count = 1) => Metric.update(tagged(transport).accepted, count)
/** @category updates */
export const rejected = (transport: string) => Metric.update(tagged(transport).rejected, 1)
/** @category updates */
export const received = (transport: string, count: number, bytes: number) =>
  Effect.andThen(Metric.update(tagged(transport).datagrams, count), Metric.update(tagged(transport).bytesIn, bytes))
/** @category updates */
export const sent = (transport: string, bytes: number) => Metric.update(tagged(transport).bytesOut, bytes)
/** @category updates */
export const connectionOpened = (transport: string) => Metric.modify(tagged(transport).active, 1)
/** @category updates */
export const connectionClosed = (transport: string, read: number, written: number) =>
  Effect.all([
    Metric.modify(tagged(transport).active, -1),
    Metric.update(tagged(transport).bytesIn, read),
    Metric.update(tagged(transport).bytesOut, written)
  ], { discard: true })
/** @category updates */
export const handlerFailed = (transport: string) => Metric.update(tagged(transport).failures, 1)
/** @category updates */
export const tlsHandshakeCompleted = (transport: string) => Metric.update(tagged(transport).handshakes, 1)
/** @category updates */
export const tlsHandshakeFailed = (transport: string, reason: string) =>
  Metric.update(Metric.withAttributes(tlsHandshakeFailures, { transport, reason }), 1)

/**
 * The JSON line printed by `bench/load/echoLoad.ts`, shared with the suite
 * that parses it.
 */

export type EchoLoadMode = "tcp-stream" | "tcp-rtt" | "udp"

export interface EchoLoadResult {
  readonly ok: true
  readonly mode: EchoLoadMode
  /** Actual measurement window (ms), from the generator's clock. */
  readonly windowMs: number
  /** Load generator CPU (user+system) as % of one core over the window. */
  readonly loadCpuPct: number
  /** Server process tree CPU (user+system, ms) over the window; null when /proc is unreadable. */
  readonly serverCpuMs: number | null
  /** CPU used by everything else on the machine over the window, % of one core; null when unreadable. */
  readonly otherCpuPct: number | null
  /** tcp-stream: echoed bytes received in the window. */
  readonly bytes?: number
  /** tcp-rtt: completed round trips in the window. */
  readonly roundTrips?: number
  readonly p50Us?: number
  readonly p99Us?: number
  readonly maxUs?: number
  /** udp: replies received in the window (late replies included). */
  readonly packets?: number
  /** udp: datagrams presumed lost (no reply within the timeout) and re-sent in the window. */
  readonly lost?: number
}

export interface EchoLoadFailure {
  readonly ok: false
  readonly error: string
}

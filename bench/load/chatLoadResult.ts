/**
 * The JSON line printed by `bench/load/chatLoad.ts`, shared with the suite that parses it.
 */

export interface ChatLoadResult {
  readonly ok: true
  /** Actual measurement window (ms), from the generator's clock. */
  readonly windowMs: number
  /** Load generator CPU (user+system) as % of one core over the window. */
  readonly loadCpuPct: number
  /** Server process tree CPU (user+system, ms) over the window; null when /proc is unreadable. */
  readonly serverCpuMs: number | null
  /** CPU used by everything else on the machine over the window, % of one core; null when unreadable. */
  readonly otherCpuPct: number | null
  /** `message` frames received by all clients together in the window. */
  readonly delivered: number
  /** `say` frames sent in the window. */
  readonly sent: number
  /** Delivery latency (receive time minus the send time embedded in the text), µs. */
  readonly p50Us: number
  readonly p99Us: number
  readonly maxUs: number
  /** Time to connect and log in every client (and to settle the `joined` storm), ms. */
  readonly setupMs: number
}

export interface ChatLoadFailure {
  readonly ok: false
  readonly error: string
}

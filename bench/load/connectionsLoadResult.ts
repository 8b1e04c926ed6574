/**
 * The JSON line printed by `bench/load/connectionsLoad.ts`, shared with the suite that parses it.
 */

export type ConnectionsLoadMode = "echo" | "http"

export interface ConnectionsLoadResult {
  readonly ok: true
  readonly mode: ConnectionsLoadMode
  /** Connections held open (and idle) at the second reading. */
  readonly connections: number
  /** Connections opened on top of them before the third reading. */
  readonly further: number
  /** Loopback source addresses they were spread over. */
  readonly sources: number
  /** Connections opened, exercised and closed before the baseline. */
  readonly warmup: number
  /** Server resident set size before opening them (after the warm-up). */
  readonly rssBeforeBytes: number
  /** Server resident set size with `connections` open and idle. */
  readonly rssAfterBytes: number
  /** Server resident set size with the further ones open and idle too. */
  readonly rssFurtherBytes: number
  /** (after - before) / connections. */
  readonly bytesPerConnection: number
  /** (further - after) / further: what one more costs once the process has grown. */
  readonly marginalBytesPerConnection: number
  /** Time taken to open and exercise `connections`. */
  readonly openMs: number
  readonly totalMs: number
  /** Soft limit on open files of the load generator and of the server (null: unreadable). */
  readonly loadFileLimit: number | null
  readonly serverFileLimit: number | null
}

export interface ConnectionsLoadFailure {
  readonly ok: false
  readonly error: string
}

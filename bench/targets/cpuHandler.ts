/**
 * The CPU-bound handler of the strategies benchmark, in a module without top-level side effects so
 * that fork children and worker threads can load it by reference (`cpuServer.ts` serves it).
 *
 * Protocol: the client sends a `requestBytes`-byte request; the server hashes it (FNV-1a over its
 * bytes, `rounds` times, each round seeded by the last) and answers with 64 bytes of hex. Then the
 * next request may follow on the same connection.
 *
 * The hash is plain JavaScript on purpose. `node:crypto`'s createHash serializes across threads
 * of one process: measured without any framework, two worker threads running a createHash loop did
 * 1.11-1.20x the work of one thread while two processes did 2.00x, so a crypto workload would
 * measure that lock, not the strategies. FNV-1a in JS scaled 2.00x both ways. The number of
 * rounds comes from the environment (`NETKIT_BENCH_CPU_ROUNDS`), which fork children and worker
 * threads inherit from the server process; a closure could not travel with the reference.
 */
import { Effect, Pull } from "effect"
import type * as Connection from "../../src/core/Connection.ts"
import * as Handler from "../../src/core/Handler.ts"

/** Size of one request and of one reply (hex). */
export const requestBytes = 64

/** Environment variable holding the hash rounds per request. */
export const roundsVariable = "NETKIT_BENCH_CPU_ROUNDS"

/** Rounds per request when the environment does not say: about 4 ms of one core here. */
export const defaultRounds = 55_000

const roundsOf = (): number => {
  const value = Number(process.env[roundsVariable])
  return Number.isSafeInteger(value) && value >= 0 ? value : defaultRounds
}

/** The work of one request: `rounds` chained FNV-1a passes over the request; 64 hex bytes out. */
export const work = (request: Uint8Array, rounds: number): string => {
  let hash = 0x811c9dc5
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < request.length; i++) hash = Math.imul(hash ^ request[i]!, 0x01000193) >>> 0
  }
  return hash.toString(16).padStart(8, "0").repeat(8)
}

const serve = (connection: Connection.Connection) =>
  Effect.suspend(() => {
    const rounds = roundsOf()
    // Requests may arrive split or (from a pipelining client) several per read: count bytes, not reads.
    let pending = 0
    return Effect.flatMap(connection.read, (chunks) => {
      const replies: Array<string> = []
      for (const chunk of chunks) {
        pending += chunk.byteLength
        // The chunk that completes a request seeds its hash: the content does not change the cost.
        while (pending >= requestBytes) {
          pending -= requestBytes
          replies.push(work(chunk, rounds))
        }
      }
      return replies.length === 0 ? Effect.void : connection.writeAll(replies)
    }).pipe(Effect.forever({ disableYield: true }), Pull.catchDone(() => connection.end))
  })

/**
 * The benchmark handler.
 * @category handlers
 */
export const cpuHandler = Handler.stream(serve, { name: "cpu", module: import.meta.url, export: "cpuHandler" })

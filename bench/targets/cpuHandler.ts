/**
 * The CPU-bound handler of the strategies benchmark, in a module without top-level side effects so
 * that fork children and worker threads can load it by reference (`cpuServer.ts` serves it).
 *
 * Protocol: the client sends a `requestBytes`-byte request; the server hashes it (sha256, iterated
 * `rounds` times, each round hashing the previous hex digest) and answers with the final hex digest,
 * which is 64 bytes too. Then the next request may follow on the same connection. The number of
 * rounds comes from the environment (`NETKIT_BENCH_CPU_ROUNDS`), which fork children and worker
 * threads inherit from the server process; a closure could not travel with the reference.
 */
import { Effect, Pull } from "effect"
import { createHash } from "node:crypto"
import type * as Connection from "../../src/core/Connection.ts"
import * as Handler from "../../src/core/Handler.ts"

/** Size of one request and of one reply (a sha256 hex digest). */
export const requestBytes = 64

/** Environment variable holding the hash rounds per request. */
export const roundsVariable = "NETKIT_BENCH_CPU_ROUNDS"

/** Rounds per request when the environment does not say: a few milliseconds of one core. */
export const defaultRounds = 4000

const roundsOf = (): number => {
  const value = Number(process.env[roundsVariable])
  return Number.isSafeInteger(value) && value >= 0 ? value : defaultRounds
}

/** The work of one request: `rounds` chained sha256 hashes; returns the last hex digest. */
export const work = (request: Uint8Array, rounds: number): string => {
  let digest = createHash("sha256").update(request).digest("hex")
  for (let i = 0; i < rounds; i++) digest = createHash("sha256").update(digest).digest("hex")
  return digest
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

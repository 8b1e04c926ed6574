/**
 * A listening socket's watch for descriptor exhaustion: EMFILE (this process's limit, `ulimit -n`) or ENFILE (the
 * system's).
 *
 * What happens below us: when accept() fails with EMFILE or ENFILE, libuv closes a descriptor it keeps in reserve,
 * accepts every waiting peer and closes it at once, then takes the reserve back. The listening socket stays open,
 * connections already accepted are untouched, and accepting resumes by itself once descriptors are free again; but
 * Node hears nothing, so peers turned away that way (they see their connection closed) go unnoticed. Only when
 * libuv has no reserve does the failure reach the server's `error` event, once per failed accept, and libuv retries
 * at once: a handler that leaves the socket open spins there.
 *
 * So the watch probes, once a second, whether the process can open a descriptor at all: when it cannot, new peers
 * are being turned away, which it logs once per episode (at most every 10 s) with the limit, and logs again when
 * descriptors are free. An accept error that does reach the `error` event is logged the same way (rate-limited);
 * for EMFILE/ENFILE the listening socket is also closed, which ends libuv's retries, and reopened after a pause.
 */
import * as Fs from "node:fs"
import type * as Net from "node:net"
import * as Os from "node:os"

/** How often the watch checks whether a descriptor can be opened. */
const probeMillis = 1_000
/** Least time between two "limit reached" lines (and between two lines about the same accept error). */
const reportMillis = 10_000
/** How long the listening socket stays closed after an EMFILE/ENFILE that reached the `error` event. */
const pauseMillis = 1_000

const exhaustionCodes = new Set(["EMFILE", "ENFILE"])

/** What the watch reports; the listener turns it into log lines. */
export type Report =
  | { readonly _tag: "LimitReached"; readonly code: string; readonly limit: number | undefined; readonly suppressed: number }
  | { readonly _tag: "LimitCleared"; readonly afterMillis: number }
  | { readonly _tag: "AcceptFailed"; readonly code: string; readonly suppressed: number; readonly paused: boolean }
  | { readonly _tag: "ListenFailed"; readonly code: string }

/** The soft limit on open files of this process (Linux), or `undefined` when it cannot be read. */
export const fileLimit = (): number | undefined => {
  try {
    const match = /^Max open files\s+(\d+)/m.exec(Fs.readFileSync("/proc/self/limits", "latin1"))
    return match === null ? undefined : Number(match[1])
  } catch {
    return undefined
  }
}

/** `EMFILE` or `ENFILE` when no descriptor can be opened right now, else `undefined`. */
const probe = (): string | undefined => {
  try {
    Fs.closeSync(Fs.openSync(Os.devNull, "r"))
    return undefined
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    return code !== undefined && exhaustionCodes.has(code) ? code : undefined
  }
}

/** At most one report per `reportMillis`; counts the ones held back. */
class Throttle {
  last = -Infinity
  suppressed = 0
  /** The number held back since the last report, or `undefined` to hold this one back too. */
  take(now: number): number | undefined {
    if (now - this.last < reportMillis) {
      this.suppressed++
      return undefined
    }
    this.last = now
    const suppressed = this.suppressed
    this.suppressed = 0
    return suppressed
  }
}

/**
 * Watches `server`, listening already; `relisten` opens it again after a pause. Returns the function that ends the
 * watch (call it before closing the server for good).
 */
export const watch = (server: Net.Server, relisten: () => void, report: (report: Report) => void): () => void => {
  let exhaustedSince: number | undefined
  let reported = false
  let paused: ReturnType<typeof setTimeout> | undefined
  let stopped = false
  // read now: at the limit, reading it would need a descriptor
  const limit = fileLimit()
  const limitThrottle = new Throttle()
  const acceptThrottles = new Map<string, Throttle>()

  const check = (code: string | undefined) => {
    const now = Date.now()
    if (code !== undefined && exhaustedSince === undefined) {
      exhaustedSince = now
      const suppressed = limitThrottle.take(now)
      reported = suppressed !== undefined
      if (reported) report({ _tag: "LimitReached", code, limit: fileLimit() ?? limit, suppressed: suppressed! })
    } else if (code === undefined && exhaustedSince !== undefined) {
      if (reported) report({ _tag: "LimitCleared", afterMillis: now - exhaustedSince })
      exhaustedSince = undefined
    }
  }
  const timer = setInterval(() => check(probe()), probeMillis)
  timer.unref()

  const onError = (error: NodeJS.ErrnoException) => {
    if (stopped) return
    const code = error.code ?? "UNKNOWN"
    if (error.syscall !== "accept") {
      // a failed reopen: try again after another pause
      report({ _tag: "ListenFailed", code })
      paused = setTimeout(reopen, pauseMillis)
      return
    }
    const exhausted = exhaustionCodes.has(code)
    if (exhausted) {
      check(code)
      if (paused === undefined) {
        server.close()
        paused = setTimeout(reopen, pauseMillis)
      }
    }
    const throttle = acceptThrottles.get(code) ?? new Throttle()
    acceptThrottles.set(code, throttle)
    const suppressed = throttle.take(Date.now())
    if (suppressed !== undefined) report({ _tag: "AcceptFailed", code, suppressed, paused: exhausted })
  }
  const reopen = () => {
    paused = undefined
    if (!stopped) relisten()
  }
  server.on("error", onError)

  return () => {
    stopped = true
    clearInterval(timer)
    if (paused !== undefined) clearTimeout(paused)
    server.off("error", onError)
  }
}

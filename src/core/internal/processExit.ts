/**
 * Ending a process without resetting the connections that are still closing.
 *
 * A connection's graceful close lingers: our last bytes are on their way and the peer's FIN is
 * awaited while what it still sends is discarded (see `nodeConnection.ts`). `process.exit` during
 * that closes the socket with unread input, which makes the kernel send a reset and drop what it
 * has not delivered yet: the peer can lose the end of a response or an echo. So the process ends
 * when its event loop is empty instead, and only a grace period bounds what keeps it busy.
 */

/** Sets the exit code and lets the process end once idle, or after `graceMillis` at the latest. */
export const exitWhenIdle = (code: number, graceMillis: number): void => {
  process.exitCode = code
  // Unreferenced: an empty event loop ends the process first.
  setTimeout(() => process.exit(code), graceMillis).unref()
}

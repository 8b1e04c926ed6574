/**
 * Shared plumbing of the raw anchors, mirroring the example servers' CLI
 * contract (`--host`, `--port`, `listening on HOST:PORT`, exit 0 on SIGTERM)
 * so the harness starts anchors and project servers identically.
 */
import { parseArgs } from "node:util"

export const hostPort = (): { readonly host: string; readonly port: number } => {
  const { values } = parseArgs({
    options: { host: { type: "string", default: "127.0.0.1" }, port: { type: "string", default: "0" } },
    strict: false
  })
  return { host: String(values.host), port: Number(values.port) }
}

export const announce = (host: string, port: number): void => {
  process.stdout.write(`listening on ${host}:${port}\n`)
}

/**
 * Exit 0 on SIGTERM/SIGINT, and also when the harness that started us dies
 * without cleaning up (e.g. SIGKILL): a stray echo server must not linger.
 */
export const exitWith = (close: () => void): void => {
  const stop = () => {
    close()
    process.exit(0)
  }
  process.on("SIGTERM", stop)
  process.on("SIGINT", stop)
  const parent = process.ppid
  setInterval(() => {
    if (process.ppid !== parent) stop()
  }, 1000).unref()
}

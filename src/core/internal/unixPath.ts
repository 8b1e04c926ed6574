/**
 * Unix socket paths: replacing a stale socket file, refusing a live one, and removing ours on close.
 */
import { Effect } from "effect"
import * as Fs from "node:fs"
import * as Net from "node:net"
import { BindError } from "../Listener.ts"

const pathInUse = (path: string, message: string) => new BindError({ kind: "PathInUse", address: path, message })

const isListedInProcNetUnix = (path: string): boolean | undefined => {
  try {
    const table = Fs.readFileSync("/proc/net/unix", "latin1")
    return table.split("\n").some((line) => line.endsWith(` ${path}`))
  } catch {
    return undefined
  }
}

const probeStream = (path: string) =>
  Effect.callback<"live" | "stale", BindError>((resume) => {
    const probe = Net.connect({ path })
    probe.once("connect", () => {
      probe.destroy()
      resume(Effect.succeed("live"))
    })
    probe.once("error", (error: NodeJS.ErrnoException) => {
      probe.destroy()
      if (error.code === "ECONNREFUSED" || error.code === "ENOENT") resume(Effect.succeed("stale"))
      // EPROTOTYPE: something is bound there, but not a stream socket.
      else if (error.code === "EPROTOTYPE") resume(Effect.succeed("live"))
      else resume(Effect.fail(new BindError({ kind: "Unknown", address: path, message: error.message, cause: error })))
    })
    return Effect.sync(() => probe.destroy())
  })

/**
 * Makes `path` bindable: nothing there is fine, a socket file nobody listens on is removed,
 * anything else is a `BindError`.
 */
export const prepare = (path: string, kind: "stream" | "datagram"): Effect.Effect<void, BindError> =>
  Effect.gen(function*() {
    let stat: Fs.Stats
    try {
      stat = Fs.lstatSync(path)
    } catch {
      return
    }
    if (!stat.isSocket()) return yield* pathInUse(path, `${path} exists and is not a socket`)
    // A datagram socket cannot be probed by connecting; the kernel's table of bound sockets can.
    const state = kind === "stream"
      ? yield* probeStream(path)
      : isListedInProcNetUnix(path) === true
      ? "live"
      : "stale"
    if (state === "live") return yield* pathInUse(path, `${path} is in use by another server`)
    yield* Effect.try({
      try: () => Fs.unlinkSync(path),
      catch: (cause) =>
        new BindError({ kind: "PermissionDenied", address: path, message: `cannot remove stale ${path}`, cause })
    })
  })

/** Removes `path` if it is still the socket file we bound (same inode), never someone else's. */
export const removeIfOurs = (path: string, inode: number | undefined): void => {
  try {
    if (inode === undefined || Fs.lstatSync(path).ino === inode) Fs.unlinkSync(path)
  } catch {
    // already gone
  }
}

/** The inode of a freshly bound socket file. */
export const inodeOf = (path: string): number | undefined => {
  try {
    return Fs.lstatSync(path).ino
  } catch {
    return undefined
  }
}

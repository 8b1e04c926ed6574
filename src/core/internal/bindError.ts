/**
 * Errors from bind/listen, turned into a `BindError` a user can act on.
 */
import { BindError } from "../Listener.ts"

const kinds: Record<string, BindError["kind"]> = {
  EADDRINUSE: "AddressInUse",
  EACCES: "PermissionDenied",
  EPERM: "PermissionDenied",
  EADDRNOTAVAIL: "AddressNotAvailable",
  ENOTFOUND: "AddressNotAvailable",
  EAI_AGAIN: "AddressNotAvailable"
}

const hints: Record<BindError["kind"], string> = {
  AddressInUse: "another process is listening there; choose another port or stop it",
  PathInUse: "another server uses that path",
  PermissionDenied: "not allowed to bind there (ports below 1024 need privileges)",
  AddressNotAvailable: "no local interface has that address",
  Unknown: "bind failed"
}

/** Maps a Node listen/bind error to a `BindError`. */
export const fromNodeError = (address: string, cause: unknown): BindError => {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code
  const kind = (code !== undefined ? kinds[code] : undefined) ?? "Unknown"
  return new BindError({
    kind,
    address,
    message: `cannot listen on ${address}: ${hints[kind]}${code !== undefined ? ` (${code})` : ""}`,
    cause
  })
}

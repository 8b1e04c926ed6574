/**
 * Interned names of common header fields and methods, so that the parser matches their bytes (header names
 * case-insensitively) and reuses one lowercase string instead of allocating and lowercasing a new one per request.
 * The names the message rules read come first: their ids are below {@link framingNameCount}.
 */

/** @internal */
export const HostId = 0
/** @internal */
export const ContentLengthId = 1
/** @internal */
export const TransferEncodingId = 2
/** @internal */
export const ConnectionId = 3
/** @internal */
export const ExpectId = 4
/** @internal */
export const UpgradeId = 5
/** @internal */
export const framingNameCount = 6

/** @internal */
export const knownHeaderNames: ReadonlyArray<string> = [
  "host",
  "content-length",
  "transfer-encoding",
  "connection",
  "expect",
  "upgrade",
  "accept",
  "accept-charset",
  "accept-encoding",
  "accept-language",
  "authorization",
  "cache-control",
  "content-encoding",
  "content-type",
  "cookie",
  "dnt",
  "forwarded",
  "if-match",
  "if-modified-since",
  "if-none-match",
  "if-range",
  "if-unmodified-since",
  "keep-alive",
  "origin",
  "pragma",
  "priority",
  "range",
  "referer",
  "sec-ch-ua",
  "sec-ch-ua-mobile",
  "sec-ch-ua-platform",
  "sec-fetch-dest",
  "sec-fetch-mode",
  "sec-fetch-site",
  "sec-fetch-user",
  "sec-websocket-key",
  "sec-websocket-version",
  "te",
  "trailer",
  "upgrade-insecure-requests",
  "user-agent",
  "via",
  "x-forwarded-for",
  "x-forwarded-host",
  "x-forwarded-proto",
  "x-real-ip",
  "x-request-id",
  "x-requested-with"
]

const nameBytes: ReadonlyArray<Uint8Array> = knownHeaderNames.map((name) =>
  Uint8Array.from(name, (ch) => ch.charCodeAt(0))
)

// ids grouped by name length: a lookup compares at most a handful of candidates
const byLength: ReadonlyArray<ReadonlyArray<number>> = (() => {
  const out: Array<Array<number>> = []
  knownHeaderNames.forEach((name, id) => {
    while (out.length <= name.length) out.push([])
    out[name.length].push(id)
  })
  return out
})()

/**
 * The id of the known header name in `buf[start, end)`, compared case-insensitively, or -1. The bytes must be
 * tchars: `b | 0x20` then only folds ASCII letters (the other tchars never collide with a lowercase letter, "-" or
 * a digit).
 * @internal
 */
export const knownHeaderId = (buf: Uint8Array, start: number, end: number): number => {
  const length = end - start
  if (length >= byLength.length) return -1
  const candidates = byLength[length]
  const first = buf[start] | 0x20
  for (let k = 0; k < candidates.length; k++) {
    const id = candidates[k]
    const bytes = nameBytes[id]
    if (bytes[0] !== first) continue
    let i = 1
    while (i < length && (buf[start + i] | 0x20) === bytes[i]) i++
    if (i === length) return id
  }
  return -1
}

/**
 * The interned string of a common method in `buf[start, end)` (methods are case-sensitive), or `undefined`.
 * @internal
 */
export const knownMethod = (buf: Uint8Array, start: number, end: number): string | undefined => {
  const c0 = buf[start]
  switch (end - start) {
    case 3:
      if (c0 === 0x47 && buf[start + 1] === 0x45 && buf[start + 2] === 0x54) return "GET"
      if (c0 === 0x50 && buf[start + 1] === 0x55 && buf[start + 2] === 0x54) return "PUT"
      return undefined
    case 4:
      if (c0 === 0x50 && buf[start + 1] === 0x4f && buf[start + 2] === 0x53 && buf[start + 3] === 0x54) return "POST"
      if (c0 === 0x48 && buf[start + 1] === 0x45 && buf[start + 2] === 0x41 && buf[start + 3] === 0x44) return "HEAD"
      return undefined
    default:
      return matchLong(buf, start, end)
  }
}

const longMethods: ReadonlyArray<readonly [string, Uint8Array]> = ["PATCH", "TRACE", "DELETE", "OPTIONS", "CONNECT"]
  .map((m) => [m, Uint8Array.from(m, (ch) => ch.charCodeAt(0))] as const)

const matchLong = (buf: Uint8Array, start: number, end: number): string | undefined => {
  const length = end - start
  for (let k = 0; k < longMethods.length; k++) {
    const [method, bytes] = longMethods[k]
    if (bytes.length !== length) continue
    let i = 0
    while (i < length && buf[start + i] === bytes[i]) i++
    if (i === length) return method
  }
  return undefined
}

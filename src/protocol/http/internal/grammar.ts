/**
 * Byte-class tables and string-level checks for the HTTP/1.1 grammar (RFC 9110, RFC 9112, RFC 3986). The
 * incremental parser uses the tables (one lookup per byte, no regex on the hot path); the string checks run once
 * per message on values that are already strings. The Schemas in `RequestHead.ts` state the same grammar as
 * regular expressions, and a test checks that both agree.
 */

/** @internal */
export const CR = 0x0d
/** @internal */
export const LF = 0x0a
/** @internal */
export const SP = 0x20
/** @internal */
export const HTAB = 0x09
/** @internal */
export const COLON = 0x3a

const table = (predicate: (c: number) => boolean): Uint8Array => {
  const out = new Uint8Array(256)
  for (let c = 0; c < 256; c++) out[c] = predicate(c) ? 1 : 0
  return out
}

const isAlpha = (c: number): boolean => (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)
const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39
const isHexDigit = (c: number): boolean => isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66)

// RFC 9110 §5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" /
// "~" / DIGIT / ALPHA
const tcharSymbols = "!#$%&'*+-.^_`|~"

/** @internal */
export const tchar: Uint8Array = table((c) => isAlpha(c) || isDigit(c) || tcharSymbols.includes(String.fromCharCode(c)))

/**
 * Bytes accepted inside a request-target: VCHAR (RFC 9112 §3.2 leaves no room for whitespace or CTLs). Percent
 * encoding and path semantics are the router's business; non-ASCII bytes are refused (RFC 3986 URIs are ASCII).
 * @internal
 */
export const targetChar: Uint8Array = table((c) => c >= 0x21 && c <= 0x7e)

/**
 * RFC 9110 §5.5: field-value characters are HTAB, SP, VCHAR and obs-text (%x80-FF). CR, LF, NUL, DEL and the
 * other CTLs are refused.
 * @internal
 */
export const fieldValueChar: Uint8Array = table((c) => c === HTAB || (c >= 0x20 && c !== 0x7f))

/** @internal */
export const hexValue: Int8Array = (() => {
  const out = new Int8Array(256).fill(-1)
  for (let c = 0; c < 256; c++) {
    if (isDigit(c)) out[c] = c - 0x30
    else if (c >= 0x41 && c <= 0x46) out[c] = c - 0x41 + 10
    else if (c >= 0x61 && c <= 0x66) out[c] = c - 0x61 + 10
  }
  return out
})()

// RFC 9112 §7.1.1: chunk-ext-val = token / quoted-string; qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
/** @internal */
export const qdtext: Uint8Array = table((c) =>
  c === HTAB || c === SP || c === 0x21 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c <= 0x7e) || c >= 0x80
)

// RFC 9110 §5.6.4: quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
/** @internal */
export const quotedPairChar: Uint8Array = table((c) => c === HTAB || (c >= 0x20 && c !== 0x7f))

// RFC 3986 §2.3 unreserved and §2.2 sub-delims: the characters of a reg-name besides pct-encoded
const regNameChar = table((c) => isAlpha(c) || isDigit(c) || "-._~!$&'()*+,;=".includes(String.fromCharCode(c)))
// IP-literal content (IPv6address / IPvFuture), checked for its alphabet only: hex digits, ":", ".", "v" + the
// IPvFuture characters
const ipLiteralChar = table((c) => regNameChar[c] === 1 || c === COLON)

/** @internal */
export const isToken = (s: string): boolean => {
  if (s.length === 0) return false
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c > 0xff || tchar[c] === 0) return false
  }
  return true
}

/**
 * RFC 9110 §5.5: field-value = *field-content; field-content = field-vchar [ 1*( SP / HTAB / field-vchar )
 * field-vchar ]: no leading or trailing whitespace, no CTL but HTAB, one byte per character (latin1).
 * @internal
 */
export const isFieldValue = (s: string): boolean => {
  const n = s.length
  if (n === 0) return true
  const first = s.charCodeAt(0)
  const last = s.charCodeAt(n - 1)
  if (first === SP || first === HTAB || last === SP || last === HTAB) return false
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i)
    if (c > 0xff || fieldValueChar[c] === 0) return false
  }
  return true
}

const isPctEncoded = (s: string, i: number): boolean =>
  i + 2 < s.length && isHexDigit(s.charCodeAt(i + 1)) && isHexDigit(s.charCodeAt(i + 2))

/**
 * Scans `uri-host` (RFC 3986 §3.2.2: IP-literal / IPv4address / reg-name) from `start`; returns the index after it
 * or -1. The reg-name may be empty.
 */
const scanUriHost = (s: string, start: number): number => {
  const n = s.length
  let i = start
  if (i < n && s.charCodeAt(i) === 0x5b) {
    i++
    const contentStart = i
    while (i < n && s.charCodeAt(i) < 0x80 && ipLiteralChar[s.charCodeAt(i)] === 1) i++
    if (i === contentStart || i >= n || s.charCodeAt(i) !== 0x5d) return -1
    return i + 1
  }
  while (i < n) {
    const c = s.charCodeAt(i)
    if (c < 0x80 && regNameChar[c] === 1) i++
    else if (c === 0x25 && isPctEncoded(s, i)) i += 3
    else break
  }
  return i
}

const isDigits = (s: string, start: number, end: number): boolean => {
  for (let i = start; i < end; i++) {
    if (!isDigit(s.charCodeAt(i))) return false
  }
  return true
}

/**
 * RFC 9110 §7.2: Host = uri-host [ ":" port ], port = *DIGIT (RFC 3986 §3.2.3). An empty value is valid (RFC 9112
 * §3.2: the client sends an empty Host when the target URI has no authority).
 * @internal
 */
export const isHost = (s: string): boolean => {
  const i = scanUriHost(s, 0)
  if (i < 0) return false
  if (i === s.length) return true
  return s.charCodeAt(i) === COLON && isDigits(s, i + 1, s.length)
}

/**
 * RFC 9112 §3.2.3: authority-form = uri-host ":" port, here with a non-empty reg-name or IP literal and a port
 * of 1 to 5 digits not above 65535.
 * @internal
 */
export const isAuthorityForm = (s: string): boolean => {
  const i = scanUriHost(s, 0)
  if (i <= 0 || i >= s.length || s.charCodeAt(i) !== COLON) return false
  const portLength = s.length - i - 1
  return portLength >= 1 && portLength <= 5 && isDigits(s, i + 1, s.length) && Number(s.slice(i + 1)) <= 65535
}

const isTargetChars = (s: string, start: number): boolean => {
  for (let i = start; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c > 0xff || targetChar[c] === 0) return false
  }
  return true
}

/** @internal */
export const isOriginForm = (s: string): boolean => s.length > 0 && s.charCodeAt(0) === 0x2f && isTargetChars(s, 1)

/**
 * RFC 9112 §3.2.2: absolute-form = absolute-URI; checked here for its scheme (RFC 3986 §3.1: ALPHA *( ALPHA /
 * DIGIT / "+" / "-" / "." ) ":") and the target alphabet.
 * @internal
 */
export const isAbsoluteForm = (s: string): boolean => {
  if (s.length < 2 || !isAlpha(s.charCodeAt(0))) return false
  let i = 1
  while (i < s.length) {
    const c = s.charCodeAt(i)
    if (isAlpha(c) || isDigit(c) || c === 0x2b || c === 0x2d || c === 0x2e) i++
    else break
  }
  return i < s.length && s.charCodeAt(i) === COLON && isTargetChars(s, i + 1)
}

/**
 * The request-target form a method allows (RFC 9112 §3.2): CONNECT takes the authority-form only (§3.2.3), "*" is
 * for OPTIONS only (§3.2.4), every other request uses the origin-form or the absolute-form (§3.2.1, §3.2.2).
 * `charsChecked`: every character is already known to be a target character (the parser's scan did it).
 * @internal
 */
export const isTargetForMethod = (method: string, target: string, charsChecked = false): boolean => {
  if (method === "CONNECT") return isAuthorityForm(target)
  if (target === "*") return method === "OPTIONS"
  if (charsChecked && target.charCodeAt(0) === 0x2f) return true
  return isOriginForm(target) || isAbsoluteForm(target)
}

const isOws = (c: number): boolean => c === SP || c === HTAB

/**
 * Calls `f` with the bounds of each element of a comma-separated list (RFC 9110 §5.6.1), OWS trimmed; empty
 * elements included. Stops early when `f` returns false; returns false then.
 * @internal
 */
export const forEachListElement = (list: string, f: (start: number, end: number) => boolean): boolean => {
  let i = 0
  const n = list.length
  while (i <= n) {
    let j = list.indexOf(",", i)
    if (j < 0) j = n
    let a = i
    let b = j
    while (a < b && isOws(list.charCodeAt(a))) a++
    while (b > a && isOws(list.charCodeAt(b - 1))) b--
    if (!f(a, b)) return false
    i = j + 1
  }
  return true
}

/**
 * True when the comma-separated `list` (a validated field value) holds `token` (lowercase letters, digits, "-"),
 * compared case-insensitively. No allocation: this runs for the Connection header of most requests.
 * @internal
 */
export const hasListToken = (list: string, token: string): boolean => {
  const n = list.length
  const t = token.length
  let i = 0
  while (i < n) {
    const c = list.charCodeAt(i)
    if (c === 0x2c || isOws(c)) {
      i++
      continue
    }
    let j = i
    while (j < n && list.charCodeAt(j) !== 0x2c) j++
    let b = j
    while (b > i && isOws(list.charCodeAt(b - 1))) b--
    if (b - i === t) {
      // `| 0x20` folds ASCII letters; no other field-value byte folds onto a letter, digit or "-"
      let k = 0
      while (k < t && (list.charCodeAt(i + k) | 0x20) === token.charCodeAt(k)) k++
      if (k === t) return true
    }
    i = j + 1
  }
  return false
}

/**
 * Exact decimal parse of `1*DIGIT` (RFC 9110 §8.6): no sign, no exponent, no hex, no whitespace inside, nothing
 * beyond `Number.MAX_SAFE_INTEGER`. Returns -1 when the text is not such a number.
 * @internal
 */
export const parseDecimal = (s: string, start: number, end: number): number => {
  if (start >= end) return -1
  let n = 0
  for (let i = start; i < end; i++) {
    const d = s.charCodeAt(i) - 0x30
    if (d < 0 || d > 9) return -1
    n = n * 10 + d
    if (n > Number.MAX_SAFE_INTEGER) return -1
  }
  return n
}

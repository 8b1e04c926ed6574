/**
 * Message-level rules of a request head, applied once the request line and the header fields are known: Host,
 * request-target form, body framing (Content-Length / Transfer-Encoding), persistence, Expect and protocol switches
 * (Upgrade, CONNECT). Shared by the incremental parser and the Schema codec so that both refuse the same heads for
 * the same reasons.
 */
import type { HttpParseReason } from "../HttpParseError.ts"
import type { BodyFraming, HttpVersion } from "../RequestHead.ts"
import {
  forEachListElement,
  hasListToken,
  isHost,
  isTargetForMethod,
  isToken,
  parseDecimal
} from "./grammar.ts"
import {
  ConnectionId,
  ContentLengthId,
  ExpectId,
  framingNameCount,
  HostId,
  knownHeaderNames,
  TransferEncodingId,
  UpgradeId
} from "./knownHeaders.ts"

/** @internal */
export const framingNone: BodyFraming = Object.freeze({ _tag: "None" })
/** @internal */
export const framingChunked: BodyFraming = Object.freeze({ _tag: "Chunked" })

/**
 * Scratch output of {@link analyzeRequest}, reused by a parser across messages.
 * @internal
 */
export interface Semantics {
  framing: BodyFraming
  keepAlive: boolean
  expectContinue: boolean
  upgrade: boolean
}

/**
 * The framing-relevant header fields of one head. Repeated fields are combined into one list value joined with
 * ", " (RFC 9110 §5.3), except Host, which is counted.
 * @internal
 */
export interface FramingFields {
  hostCount: number
  host: string | undefined
  contentLength: string | undefined
  transferEncoding: string | undefined
  connection: string | undefined
  expect: string | undefined
  upgrade: string | undefined
}

/** @internal */
export const makeFramingFields = (): FramingFields => ({
  hostCount: 0,
  host: undefined,
  contentLength: undefined,
  transferEncoding: undefined,
  connection: undefined,
  expect: undefined,
  upgrade: undefined
})

/** @internal */
export const resetFramingFields = (f: FramingFields): void => {
  f.hostCount = 0
  f.host = undefined
  f.contentLength = undefined
  f.transferEncoding = undefined
  f.connection = undefined
  f.expect = undefined
  f.upgrade = undefined
}

const combine = (previous: string | undefined, value: string): string =>
  previous === undefined ? value : `${previous}, ${value}`

/**
 * Records one field whose name is a known header with an id below `framingNameCount` (the parser knows the id from
 * the bytes).
 * @internal
 */
export const collectKnownField = (f: FramingFields, id: number, value: string): void => {
  switch (id) {
    case HostId:
      f.hostCount++
      f.host = value
      break
    case ContentLengthId:
      f.contentLength = combine(f.contentLength, value)
      break
    case TransferEncodingId:
      f.transferEncoding = combine(f.transferEncoding, value)
      break
    case ConnectionId:
      f.connection = combine(f.connection, value)
      break
    case ExpectId:
      f.expect = combine(f.expect, value)
      break
    case UpgradeId:
      f.upgrade = combine(f.upgrade, value)
      break
  }
}

const framingIds: ReadonlyMap<string, number> = new Map(
  knownHeaderNames.slice(0, framingNameCount).map((name, id) => [name, id])
)

/**
 * Records one header field (name lowercased) into `f` when the message rules read it.
 * @internal
 */
export const collectField = (f: FramingFields, name: string, value: string): void => {
  const id = framingIds.get(name)
  if (id !== undefined) collectKnownField(f, id, value)
}

/**
 * RFC 9112 §6.1: Transfer-Encoding = #transfer-coding. The request is framed by `chunked` only when it is the
 * final coding and applied once; other codings are not implemented here.
 */
const checkTransferEncoding = (te: string): HttpParseReason | undefined => {
  let codings = 0
  let chunkedCount = 0
  let lastIsChunked = false
  let unknown = false
  const valid = forEachListElement(te, (a, b) => {
    // RFC 9110 §5.6.1: a recipient accepts and ignores empty list elements
    if (a === b) return true
    let nameEnd = te.indexOf(";", a)
    if (nameEnd < 0 || nameEnd > b) nameEnd = b
    const hasParameters = nameEnd < b
    while (nameEnd > a && (te.charCodeAt(nameEnd - 1) === 0x20 || te.charCodeAt(nameEnd - 1) === 0x09)) nameEnd--
    const name = te.slice(a, nameEnd).toLowerCase()
    if (!isToken(name)) return false
    codings++
    if (name === "chunked" && !hasParameters) {
      chunkedCount++
      lastIsChunked = true
    } else {
      unknown = true
      lastIsChunked = false
    }
    return true
  })
  if (!valid || codings === 0) return "InvalidTransferEncoding"
  // RFC 9112 §6.3: chunked not final in a request -> 400 and close; §6.1: chunked MUST NOT be applied twice
  if (!lastIsChunked || chunkedCount > 1) return "TransferEncodingNotChunked"
  // RFC 9112 §6.1: a transfer coding the server does not understand -> 501
  if (unknown) return "UnsupportedTransferCoding"
  return undefined
}

/**
 * RFC 9110 §8.6: Content-Length = 1*DIGIT. A list of identical values (repeated fields or "5, 5") MAY be accepted
 * as that value; anything else is invalid. Returns the length, -1 when invalid, -2 when the values differ.
 */
const parseContentLength = (cl: string): number => {
  let length = -1
  let conflict = false
  const valid = forEachListElement(cl, (a, b) => {
    const n = parseDecimal(cl, a, b)
    if (n < 0) return false
    if (length >= 0 && n !== length) conflict = true
    length = n
    return true
  })
  if (!valid) return -1
  return conflict ? -2 : length
}

/**
 * Applies the message-level rules to a request head and fills `out`. Returns the reason of the first rule broken.
 * `targetCharsChecked`: the caller already checked every target character.
 * @internal
 */
export const analyzeRequest = (
  method: string,
  target: string,
  version: HttpVersion,
  f: FramingFields,
  out: Semantics,
  targetCharsChecked = false
): HttpParseReason | undefined => {
  if (!isTargetForMethod(method, target, targetCharsChecked)) return "InvalidTarget"
  // RFC 9112 §3.2: 400 for more than one Host, an invalid Host, or (HTTP/1.1) no Host
  if (f.hostCount > 1) return "MultipleHost"
  if (f.host !== undefined && !isHost(f.host)) return "InvalidHost"
  if (f.hostCount === 0 && version === "HTTP/1.1") return "MissingHost"
  if (f.transferEncoding !== undefined) {
    // RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 request -> treat the framing as faulty, 400 and close
    if (version === "HTTP/1.0") return "TransferEncodingInHttp10"
    // RFC 9112 §6.3: Content-Length with Transfer-Encoding -> 400, close (request smuggling)
    if (f.contentLength !== undefined) return "ContentLengthWithTransferEncoding"
    const reason = checkTransferEncoding(f.transferEncoding)
    if (reason !== undefined) return reason
    out.framing = framingChunked
  } else if (f.contentLength !== undefined) {
    const length = parseContentLength(f.contentLength)
    if (length === -1) return "InvalidContentLength"
    // RFC 9112 §6.3: differing Content-Length values -> unrecoverable framing error, 400 and close
    if (length === -2) return "ConflictingContentLength"
    out.framing = { _tag: "Length", length }
  } else {
    // RFC 9112 §6.3: a request with neither field has a body of length zero
    out.framing = framingNone
  }
  // RFC 9112 §9.3: HTTP/1.1 persists unless "close"; HTTP/1.0 only with "keep-alive" (RFC 9112 §C.2.2)
  const connection = f.connection
  if (connection === undefined) {
    out.keepAlive = version === "HTTP/1.1"
  } else if (hasListToken(connection, "close")) {
    out.keepAlive = false
  } else {
    out.keepAlive = version === "HTTP/1.1" || hasListToken(connection, "keep-alive")
  }
  // RFC 9110 §10.1.1: 100-continue is ignored in an HTTP/1.0 request
  out.expectContinue = version === "HTTP/1.1" && f.expect !== undefined && hasListToken(f.expect, "100-continue")
  // RFC 9110 §7.8: Upgrade counts only when listed in Connection, and is ignored in HTTP/1.0; RFC 9110 §9.3.6: a
  // CONNECT turns the connection into a tunnel once answered with 2xx
  out.upgrade = method === "CONNECT" ||
    (version === "HTTP/1.1" && f.upgrade !== undefined && connection !== undefined &&
      hasListToken(connection, "upgrade"))
  return undefined
}

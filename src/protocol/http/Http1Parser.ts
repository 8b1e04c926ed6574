/**
 * Incremental HTTP/1.1 request parser: bytes in (split anywhere), events out (head, body chunks, end of message,
 * a terminal error). Pure: nothing here touches a socket; the server feeds it and acts on the events.
 *
 *   request   = *( CRLF ) request-line *( field-line ) CRLF [ body ]
 *   body      = Content-Length bytes
 *             / *( chunk-size [ chunk-ext ] CRLF chunk-data CRLF ) "0" [ chunk-ext ] CRLF *( field-line ) CRLF
 *   pipelined requests follow each other on the same connection.
 *
 * Decisions:
 * - Line endings are CRLF only. RFC 9112 §2.2 lets a recipient accept a bare LF; refusing it (and always refusing a
 *   bare CR) leaves no room for two parsers to disagree about where a line ends. Empty lines (CRLF) before a
 *   request line are skipped (RFC 9112 §2.2).
 * - Every error is terminal and means "answer with `error.status` if possible, then close the connection": after
 *   a framing error the next request cannot be located reliably.
 * - Trailer fields of a chunked body are parsed with the header rules and limits and exposed, unmerged, on the
 *   `End` event (RFC 9110 §6.5: never merged into the header section here).
 * - Header values are decoded as latin1 (one character per byte), so obs-text round-trips byte for byte. All the
 *   strings of a head are substrings of one string made once per head (cheaper than one conversion per field).
 * - The scan position survives across pushes; a head split across pushes is copied once into a bounded buffer.
 *   Body chunks are subarrays of the pushed bytes: copy them if the buffer is reused.
 */
import { Schema } from "effect"
import { Buffer } from "node:buffer"
import {
  COLON,
  CR,
  fieldValueChar,
  hexValue,
  HTAB,
  LF,
  qdtext,
  quotedPairChar,
  SP,
  targetChar,
  tchar
} from "./internal/grammar.ts"
import {
  ConnectionId,
  ContentLengthId,
  ExpectId,
  HostId,
  knownHeaderId,
  knownHeaderNames,
  knownMethod,
  TransferEncodingId
} from "./internal/knownHeaders.ts"
import type { FramingFields, Semantics } from "./internal/semantics.ts"
import { analyzeRequest, framingNone, makeFramingFields, resetFramingFields } from "./internal/semantics.ts"
import type { HttpRequestHead } from "./RequestHead.ts"

/**
 * Longest request line accepted, CRLF excluded: 8 KiB. Longer -> 414.
 * @category constants
 */
export const defaultMaxRequestLineBytes = 8 * 1024

/**
 * Largest header section accepted (every field line with its CRLF, the final empty line excluded): 16 KiB.
 * Larger -> 431. The trailer section of a chunked body has the same limit.
 * @category constants
 */
export const defaultMaxHeaderBytes = 16 * 1024

/**
 * Most header field lines accepted: 100. More -> 431. The trailer section has the same limit.
 * @category constants
 */
export const defaultMaxHeaders = 100

/**
 * Largest body accepted (Content-Length, or the sum of the chunk sizes): 16 MiB. Larger -> 413.
 * @category constants
 */
export const defaultMaxBodyBytes = 16 * 1024 * 1024

/**
 * Most bytes of chunk extensions accepted in one message, all chunks together: 16 KiB. More -> 400. They are
 * validated and discarded, and would otherwise let a client send unbounded data that is not counted as body.
 * @category constants
 */
export const defaultMaxChunkExtensionBytes = 16 * 1024

/**
 * Parser limits: non-negative integers (`maxBodyBytes` may be `Infinity`; the request-line and header byte limits
 * are at most 256 MiB). A bad value is a defect (RangeError).
 * @category models
 */
export interface Options {
  /** Longest request line, CRLF excluded. Default {@link defaultMaxRequestLineBytes}; over -> 414. */
  readonly maxRequestLineBytes?: number | undefined
  /** Largest header (and trailer) section. Default {@link defaultMaxHeaderBytes}; over -> 431. */
  readonly maxHeaderBytes?: number | undefined
  /** Most header (and trailer) field lines. Default {@link defaultMaxHeaders}; over -> 431. */
  readonly maxHeaders?: number | undefined
  /** Largest body. Default {@link defaultMaxBodyBytes}; over -> 413. */
  readonly maxBodyBytes?: number | undefined
  /** Most chunk-extension bytes per message. Default {@link defaultMaxChunkExtensionBytes}; over -> 400. */
  readonly maxChunkExtensionBytes?: number | undefined
}

/**
 * Why a request was refused. Each reason maps to one status code in {@link statusOf}.
 * @category errors
 */
export const HttpParseReason = Schema.Literals([
  "InvalidRequestLine",
  "InvalidMethod",
  "InvalidTarget",
  "MissingVersion",
  "InvalidVersion",
  "UnsupportedVersion",
  "RequestLineTooLong",
  "InvalidLineEnding",
  "InvalidHeaderName",
  "WhitespaceBeforeColon",
  "ObsoleteLineFolding",
  "InvalidHeaderValue",
  "HeaderSectionTooLarge",
  "TooManyHeaders",
  "MissingHost",
  "MultipleHost",
  "InvalidHost",
  "InvalidContentLength",
  "ConflictingContentLength",
  "ContentLengthWithTransferEncoding",
  "TransferEncodingInHttp10",
  "InvalidTransferEncoding",
  "TransferEncodingNotChunked",
  "UnsupportedTransferCoding",
  "InvalidChunkSize",
  "InvalidChunkExtension",
  "ChunkExtensionTooLong",
  "InvalidChunkTerminator",
  "ContentTooLarge",
  "UnexpectedEnd"
])

/**
 * Why a request was refused.
 * @category errors
 */
export type HttpParseReason = typeof HttpParseReason.Type

/**
 * The response status for each parse failure: the one place where reasons meet the wire.
 * @category errors
 */
export const statusOf = {
  InvalidRequestLine: 400,
  InvalidMethod: 400,
  InvalidTarget: 400,
  MissingVersion: 400,
  InvalidVersion: 400,
  UnsupportedVersion: 505,
  RequestLineTooLong: 414,
  InvalidLineEnding: 400,
  InvalidHeaderName: 400,
  WhitespaceBeforeColon: 400,
  ObsoleteLineFolding: 400,
  InvalidHeaderValue: 400,
  HeaderSectionTooLarge: 431,
  TooManyHeaders: 431,
  MissingHost: 400,
  MultipleHost: 400,
  InvalidHost: 400,
  InvalidContentLength: 400,
  ConflictingContentLength: 400,
  ContentLengthWithTransferEncoding: 400,
  TransferEncodingInHttp10: 400,
  InvalidTransferEncoding: 400,
  TransferEncodingNotChunked: 400,
  UnsupportedTransferCoding: 501,
  InvalidChunkSize: 400,
  InvalidChunkExtension: 400,
  ChunkExtensionTooLong: 400,
  InvalidChunkTerminator: 400,
  ContentTooLarge: 413,
  UnexpectedEnd: 400
} as const satisfies Record<HttpParseReason, number>

const messageOf: Record<HttpParseReason, string> = {
  InvalidRequestLine: "malformed request line (method SP target SP version)",
  InvalidMethod: "the method is not a token",
  InvalidTarget: "invalid request target, or a target form the method does not allow",
  MissingVersion: "request line without an HTTP version (HTTP/0.9 is not supported)",
  InvalidVersion: "malformed HTTP version",
  UnsupportedVersion: "HTTP version not supported",
  RequestLineTooLong: "request line longer than the limit",
  InvalidLineEnding: "bare CR or LF: lines end with CRLF",
  InvalidHeaderName: "invalid field name, or a field line without a colon",
  WhitespaceBeforeColon: "whitespace between a field name and the colon",
  ObsoleteLineFolding: "field line starting with whitespace (obsolete line folding)",
  InvalidHeaderValue: "control character in a field value",
  HeaderSectionTooLarge: "field section larger than the limit",
  TooManyHeaders: "more field lines than the limit",
  MissingHost: "HTTP/1.1 request without a Host header",
  MultipleHost: "more than one Host header",
  InvalidHost: "invalid Host header value",
  InvalidContentLength: "Content-Length is not a decimal length",
  ConflictingContentLength: "differing Content-Length values",
  ContentLengthWithTransferEncoding: "both Content-Length and Transfer-Encoding",
  TransferEncodingInHttp10: "Transfer-Encoding in an HTTP/1.0 request",
  InvalidTransferEncoding: "malformed Transfer-Encoding",
  TransferEncodingNotChunked: "chunked is not the final transfer coding, or is applied twice",
  UnsupportedTransferCoding: "transfer coding not implemented",
  InvalidChunkSize: "invalid chunk size",
  InvalidChunkExtension: "malformed chunk extension",
  ChunkExtensionTooLong: "chunk extensions larger than the limit",
  InvalidChunkTerminator: "chunk data not followed by CRLF",
  ContentTooLarge: "body larger than the limit",
  UnexpectedEnd: "input ended inside a message"
}

/**
 * A request the parser refuses. `status` is the response to send (from {@link statusOf}); the message is short and
 * never echoes the input. Every parse error is terminal: answer if possible, then close the connection
 * (`closeConnection` is always true).
 * @category errors
 */
export class HttpParseError extends Schema.TaggedError<HttpParseError>()("HttpParseError", {
  reason: HttpParseReason,
  message: Schema.String
}) {
  /** The response status this failure maps to. */
  get status(): (typeof statusOf)[HttpParseReason] {
    return statusOf[this.reason]
  }
  /** Always true: after a parse error the connection cannot carry another request. */
  get closeConnection(): true {
    return true
  }
  /** The error for `reason`, with its standard message. */
  static fromReason(reason: HttpParseReason): HttpParseError {
    return new HttpParseError({ reason, message: messageOf[reason] })
  }
}

/**
 * What a push produces, in wire order. Per request: one `Head`, zero or more `Body` chunks, one `End` (with the
 * trailer fields of a chunked body, else an empty list). `Error` is the last event a parser ever produces.
 * @category models
 */
export type ParseEvent =
  | { readonly _tag: "Head"; readonly head: HttpRequestHead }
  | { readonly _tag: "Body"; readonly chunk: Uint8Array }
  | { readonly _tag: "End"; readonly trailers: ReadonlyArray<readonly [string, string]> }
  | { readonly _tag: "Error"; readonly error: HttpParseError }

/**
 * An incremental request parser for one connection.
 * @category models
 */
export interface RequestParser {
  /**
   * Feeds the next bytes (any split is fine) and returns the events they complete. After an `Error` event (or
   * after {@link RequestParser.end}) it returns no more events. `Body` chunks may be views of `chunk`.
   */
  readonly push: (chunk: Uint8Array) => Array<ParseEvent>
  /** Signals the end of input: an `Error` (`UnexpectedEnd`) if a message is incomplete, else nothing. */
  readonly end: () => Array<ParseEvent>
}

const State = {
  Start: 0,
  StartLf: 1,
  Method: 2,
  Target: 3,
  Version: 4,
  LineLf: 5,
  FieldStart: 6,
  FieldName: 7,
  FieldOws: 8,
  FieldValue: 9,
  FieldLf: 10,
  SectionLf: 11,
  BodyLength: 12,
  ChunkSize: 13,
  ChunkSizeBws: 14,
  ExtNameStart: 15,
  ExtName: 16,
  ExtAfterName: 17,
  ExtValueStart: 18,
  ExtToken: 19,
  ExtQuoted: 20,
  ExtQuotedPair: 21,
  ExtAfterQuoted: 22,
  ExtBws: 23,
  ChunkSizeLf: 24,
  ChunkData: 25,
  ChunkDataCr: 26,
  ChunkDataLf: 27,
  Failed: 28,
  Ended: 29
} as const
type State = (typeof State)[keyof typeof State]

const INCOMPLETE = -1
const FAILED = -2
// 16 hex digits hold any length up to Number.MAX_SAFE_INTEGER, with some leading zeros
const maxChunkSizeDigits = 16
const SEMICOLON = 0x3b
const EQUALS = 0x3d
const DQUOTE = 0x22
const BACKSLASH = 0x5c

const emptyWords = new Int32Array(0)
const retainedAccBytes = 4096
const noFields: ReadonlyArray<readonly [string, string]> = Object.freeze([])
const endEvent: ParseEvent = Object.freeze({ _tag: "End", trailers: noFields })

type Latin1Slice = (this: Uint8Array, start: number, end: number) => string
const nativeLatin1Slice = (Buffer.prototype as unknown as { readonly latin1Slice?: Latin1Slice }).latin1Slice
// Buffer#latin1Slice is the fastest way from bytes to a one-byte string in Node; it accepts any Uint8Array
const latin1: (buf: Uint8Array, start: number, end: number) => string = nativeLatin1Slice !== undefined
  ? (buf, start, end) => nativeLatin1Slice.call(buf, start, end)
  : (buf, start, end) => Buffer.from(buf.buffer, buf.byteOffset + start, end - start).toString("latin1")

// section offsets are kept in an Int32Array
const maxSectionLimit = 256 * 1024 * 1024

const limit = (name: string, value: number | undefined, fallback: number, max = Number.MAX_SAFE_INTEGER): number => {
  if (value === undefined) return fallback
  if ((max === Infinity && value === Infinity) || (Number.isSafeInteger(value) && value >= 0 && value <= max)) {
    return value
  }
  throw new RangeError(`Http1Parser: ${name} must be an integer between 0 and ${max}, got ${value}`)
}

class Parser {
  readonly maxLine: number
  readonly maxHeaderBytes: number
  readonly maxHeaders: number
  readonly maxBody: number
  readonly maxExtension: number

  state: State = State.Start
  events: Array<ParseEvent> = []

  // A head or trailer section being scanned. Offsets are relative to `mark`, where the section starts in the
  // current buffer, so they stay valid when the partial section moves into `acc`.
  inTrailers = false
  mark = 0
  methodEnd = 0
  targetStart = 0
  targetEnd = 0
  versionStart = 0
  minor = 1
  sectionStart = 0
  lineStart = 0
  nameEnd = 0
  valueStart = 0
  count = 0
  fields: Int32Array

  // The bounded copy of a section that spans pushes; `resume` is where scanning continues in it.
  buffered = false
  // a Buffer, like the chunks Node sockets deliver: the scanner then sees one array shape and stays monomorphic
  acc: Uint8Array = Buffer.alloc(0)
  accLen = 0
  resume = 0

  // An Int32Array view of the last scanned buffer's memory, for skipCleanWords; dropped after each push.
  wordsOf: ArrayBufferLike | undefined = undefined
  words: Int32Array = emptyWords

  // Body state
  remaining = 0
  bodyTotal = 0
  chunkSize = 0
  chunkDigits = 0
  extensionBytes = 0

  readonly framing: FramingFields = makeFramingFields()
  readonly semantics: Semantics = { framing: framingNone, keepAlive: true, expectContinue: false }

  constructor(options: Options | undefined) {
    this.maxLine = limit(
      "maxRequestLineBytes",
      options?.maxRequestLineBytes,
      defaultMaxRequestLineBytes,
      maxSectionLimit
    )
    this.maxHeaderBytes = limit("maxHeaderBytes", options?.maxHeaderBytes, defaultMaxHeaderBytes, maxSectionLimit)
    this.maxHeaders = limit("maxHeaders", options?.maxHeaders, defaultMaxHeaders)
    this.maxBody = limit("maxBodyBytes", options?.maxBodyBytes, defaultMaxBodyBytes, Infinity)
    this.maxExtension = limit(
      "maxChunkExtensionBytes",
      options?.maxChunkExtensionBytes,
      defaultMaxChunkExtensionBytes
    )
    this.fields = new Int32Array(4 * Math.max(1, Math.min(this.maxHeaders, 32)))
  }

  push(chunk: Uint8Array): Array<ParseEvent> {
    const events: Array<ParseEvent> = []
    this.events = events
    if (this.state >= State.Failed || chunk.length === 0) return events
    let p = 0
    if (this.buffered) {
      const old = this.accLen
      const cap = this.inTrailers ? this.maxHeaderBytes + 2 : this.maxLine + this.maxHeaderBytes + 4
      const n = Math.min(chunk.length, cap - old)
      if (n <= 0) return this.failWith(this.inTrailers ? "HeaderSectionTooLarge" : "RequestLineTooLong")
      this.append(chunk, n)
      const q = this.scanSection(this.acc, this.resume, this.accLen)
      if (q === FAILED) return events
      if (q === INCOMPLETE) {
        this.resume = this.accLen
        // unreachable while the limit checks hold: a full buffer always breaks a limit first
        if (n < chunk.length) this.fail("HeaderSectionTooLarge")
        return events
      }
      this.buffered = false
      this.accLen = 0
      if (!this.finishSection(this.acc)) return events
      // an idle keep-alive connection should not hold the copy of one large head
      if (this.acc.length > retainedAccBytes) this.acc = Buffer.alloc(0)
      // the section ended inside the bytes just appended: continue in `chunk`, without copying
      p = q - old
    }
    this.run(chunk, p, chunk.length)
    if (this.wordsOf !== undefined) {
      this.wordsOf = undefined
      this.words = emptyWords
    }
    return events
  }

  end(): Array<ParseEvent> {
    const events: Array<ParseEvent> = []
    this.events = events
    if (this.state >= State.Failed) return events
    if (this.state === State.Start || this.state === State.StartLf) {
      this.state = State.Ended
      return events
    }
    this.fail("UnexpectedEnd")
    return events
  }

  failWith(reason: HttpParseReason): Array<ParseEvent> {
    this.fail(reason)
    return this.events
  }

  fail(reason: HttpParseReason): void {
    this.events.push({ _tag: "Error", error: HttpParseError.fromReason(reason) })
    this.state = State.Failed
    this.buffered = false
    this.accLen = 0
  }

  append(chunk: Uint8Array, n: number): void {
    const needed = this.accLen + n
    if (this.acc.length < needed) {
      const grown = Buffer.allocUnsafeSlow(Math.max(needed, this.acc.length * 2, 1024))
      grown.set(this.acc.subarray(0, this.accLen))
      this.acc = grown
    }
    this.acc.set(n === chunk.length ? chunk : chunk.subarray(0, n), this.accLen)
    this.accLen = needed
  }

  /** Keeps the unfinished section `buf[mark, end)` for the next push. */
  save(buf: Uint8Array, end: number): void {
    if (this.state <= State.StartLf) return
    const n = end - this.mark
    if (n === 0) {
      this.mark = 0
      return
    }
    this.accLen = 0
    this.append(buf.subarray(this.mark, end), n)
    this.mark = 0
    this.resume = n
    this.buffered = true
  }

  run(buf: Uint8Array, p: number, end: number): void {
    while (p < end) {
      const state = this.state
      if (state <= State.SectionLf) {
        const q = this.scanSection(buf, p, end)
        if (q < 0) {
          if (q === INCOMPLETE) this.save(buf, end)
          return
        }
        if (!this.finishSection(buf)) return
        p = q
      } else if (state === State.BodyLength) {
        const n = Math.min(this.remaining, end - p)
        this.events.push({ _tag: "Body", chunk: buf.subarray(p, p + n) })
        p += n
        this.remaining -= n
        if (this.remaining === 0) {
          this.events.push(endEvent)
          this.state = State.Start
        }
      } else if (state === State.ChunkData) {
        const n = Math.min(this.remaining, end - p)
        this.events.push({ _tag: "Body", chunk: buf.subarray(p, p + n) })
        p += n
        this.remaining -= n
        if (this.remaining === 0) this.state = State.ChunkDataCr
      } else {
        p = this.scanChunkFraming(buf, p, end)
        if (p < 0) return
      }
    }
    // a trailer section may start exactly at the end of this buffer
    if (this.state === State.FieldStart && this.inTrailers && this.mark === end) this.mark = 0
  }

  /**
   * Scans the request line and field lines (or the trailer field lines) from `p`. Returns the index after the
   * empty line that ends the section, INCOMPLETE (state saved) or FAILED (error emitted).
   */
  scanSection(buf: Uint8Array, p: number, end: number): number {
    let state: State = this.state
    let mark = this.mark
    let c = 0
    for (;;) {
      switch (state) {
        case State.Start: {
          // RFC 9112 §2.2: a server SHOULD ignore at least one empty line (CRLF) received before the request-line
          if (p >= end) return this.pause(state)
          c = buf[p]
          if (c === CR) {
            p++
            state = State.StartLf
            continue
          }
          if (tchar[c] === 0) return this.reject(c === LF ? "InvalidLineEnding" : "InvalidMethod")
          mark = this.mark = p
          this.inTrailers = false
          state = State.Method
          p++
          continue
        }
        case State.StartLf: {
          if (p >= end) return this.pause(state)
          if (buf[p] !== LF) return this.reject("InvalidLineEnding")
          p++
          state = State.Start
          continue
        }
        case State.Method: {
          while (p < end && tchar[buf[p]] === 1) p++
          if (p >= end) return this.pauseLine(state, end)
          c = buf[p]
          if (c !== SP) return this.rejectLine(c === CR || c === LF ? "InvalidRequestLine" : "InvalidMethod", p)
          this.methodEnd = p - mark
          p++
          this.targetStart = p - mark
          state = State.Target
          continue
        }
        case State.Target: {
          while (p < end && targetChar[buf[p]] === 1) p++
          if (p >= end) return this.pauseLine(state, end)
          c = buf[p]
          if (p - mark === this.targetStart) return this.rejectLine("InvalidRequestLine", p)
          if (c === SP) {
            this.targetEnd = p - mark
            p++
            this.versionStart = p - mark
            state = State.Version
            continue
          }
          return this.rejectLine(c === CR ? "MissingVersion" : c === LF ? "InvalidLineEnding" : "InvalidTarget", p)
        }
        case State.Version: {
          while (p < end && targetChar[buf[p]] === 1) p++
          if (p >= end) return this.pauseLine(state, end)
          c = buf[p]
          if (c !== CR) return this.rejectLine(c === LF ? "InvalidLineEnding" : "InvalidVersion", p)
          const reason = p - mark > this.maxLine
            ? "RequestLineTooLong"
            : this.checkVersion(buf, mark + this.versionStart, p)
          if (reason !== undefined) return this.reject(reason)
          p++
          state = State.LineLf
          continue
        }
        case State.LineLf: {
          if (p >= end) return this.pause(state)
          if (buf[p] !== LF) return this.reject("InvalidLineEnding")
          p++
          this.sectionStart = p - mark
          this.count = 0
          state = State.FieldStart
          continue
        }
        case State.FieldStart: {
          if (p >= end) return this.pauseFields(state, end)
          c = buf[p]
          if (c === CR) {
            p++
            state = State.SectionLf
            continue
          }
          if (tchar[c] === 1) {
            if (this.count >= this.maxHeaders) return this.reject("TooManyHeaders")
            this.lineStart = p - mark
            p++
            state = State.FieldName
            continue
          }
          // RFC 9112 §5.2: obs-fold -> 400 (also whitespace before the first field line, RFC 9112 §2.2)
          if (c === SP || c === HTAB) return this.rejectField("ObsoleteLineFolding", p)
          return this.rejectField(c === LF ? "InvalidLineEnding" : "InvalidHeaderName", p)
        }
        case State.FieldName: {
          while (p < end && tchar[buf[p]] === 1) p++
          if (p >= end) return this.pauseFields(state, end)
          c = buf[p]
          if (c === COLON) {
            this.nameEnd = p - mark
            p++
            state = State.FieldOws
            continue
          }
          // RFC 9112 §5.1: whitespace between field name and colon -> 400
          if (c === SP || c === HTAB) return this.rejectField("WhitespaceBeforeColon", p)
          return this.rejectField("InvalidHeaderName", p)
        }
        case State.FieldOws: {
          while (p < end && (buf[p] === SP || buf[p] === HTAB)) p++
          if (p >= end) return this.pauseFields(state, end)
          this.valueStart = p - mark
          state = State.FieldValue
          continue
        }
        case State.FieldValue: {
          if (end - p >= 16) p = this.skipCleanWords(buf, p, end)
          while (p < end && fieldValueChar[buf[p]] === 1) p++
          if (p >= end) return this.pauseFields(state, end)
          c = buf[p]
          // RFC 9110 §5.5: CR, LF and NUL (and the other CTLs) in a field value -> reject
          if (c !== CR) return this.rejectField(c === LF ? "InvalidLineEnding" : "InvalidHeaderValue", p)
          const valueStart = mark + this.valueStart
          let valueEnd = p
          while (valueEnd > valueStart && (buf[valueEnd - 1] === SP || buf[valueEnd - 1] === HTAB)) valueEnd--
          const o = this.count * 4
          if (o + 4 > this.fields.length) this.growFields()
          this.fields[o] = this.lineStart
          this.fields[o + 1] = this.nameEnd
          this.fields[o + 2] = this.valueStart
          this.fields[o + 3] = valueEnd - mark
          this.count++
          p++
          state = State.FieldLf
          continue
        }
        case State.FieldLf: {
          if (p >= end) return this.pauseFields(state, end)
          if (buf[p] !== LF) return this.rejectField("InvalidLineEnding", p)
          p++
          if (p - mark - this.sectionStart > this.maxHeaderBytes) return this.reject("HeaderSectionTooLarge")
          state = State.FieldStart
          continue
        }
        case State.SectionLf: {
          if (p >= end) return this.pauseFields(state, end)
          if (buf[p] !== LF) return this.rejectField("InvalidLineEnding", p)
          this.state = state
          return p + 1
        }
        default:
          return this.reject("InvalidRequestLine")
      }
    }
  }

  /**
   * Skips the field-value bytes from `p` four at a time (SWAR) while no byte is a CTL (< 0x20, HTAB included) or
   * DEL; returns where the byte loop must take over. Only whole aligned words known to be clean are skipped, so the
   * byte loop still sees every byte that may end or break the value.
   */
  skipCleanWords(buf: Uint8Array, p: number, end: number): number {
    const offset = buf.byteOffset
    while (((offset + p) & 3) !== 0) {
      if (fieldValueChar[buf[p]] === 0) return p
      p++
    }
    if (buf.buffer !== this.wordsOf) {
      this.wordsOf = buf.buffer
      this.words = new Int32Array(buf.buffer, 0, buf.buffer.byteLength >> 2)
    }
    const words = this.words
    let i = (offset + p) >> 2
    const last = (offset + end) >> 2
    while (i < last) {
      const x = words[i]
      const y = x ^ 0x7f7f7f7f
      // a byte below 0x20 in x, or a zero byte in y (a DEL in x), sets that byte's high bit
      if ((((x - 0x20202020) & ~x) | ((y - 0x01010101) & ~y)) & 0x80808080) break
      i++
    }
    return (i << 2) - offset
  }

  growFields(): void {
    const grown = new Int32Array(this.fields.length * 2)
    grown.set(this.fields)
    this.fields = grown
  }

  pause(state: State): number {
    this.state = state
    return INCOMPLETE
  }

  pauseLine(state: State, end: number): number {
    this.state = state
    return end - this.mark > this.maxLine ? this.reject("RequestLineTooLong") : INCOMPLETE
  }

  pauseFields(state: State, end: number): number {
    this.state = state
    // one more byte may be the CR of the final empty line, which the limit does not count
    return end - this.mark - this.sectionStart > this.maxHeaderBytes + 1
      ? this.reject("HeaderSectionTooLarge")
      : INCOMPLETE
  }

  reject(reason: HttpParseReason): number {
    this.fail(reason)
    return FAILED
  }

  // A limit broken by the bytes before `p` wins over the error found at `p`, as it would had the input been split
  // just before `p`: the outcome never depends on how the bytes were split.
  rejectLine(reason: HttpParseReason, p: number): number {
    return this.reject(p - this.mark > this.maxLine ? "RequestLineTooLong" : reason)
  }

  rejectField(reason: HttpParseReason, p: number): number {
    return this.reject(p - this.mark - this.sectionStart > this.maxHeaderBytes + 1 ? "HeaderSectionTooLarge" : reason)
  }

  checkVersion(buf: Uint8Array, start: number, end: number): HttpParseReason | undefined {
    // RFC 9112 §2.3: HTTP-version = "HTTP" "/" DIGIT "." DIGIT, case-sensitive
    if (
      end - start !== 8 || buf[start] !== 0x48 || buf[start + 1] !== 0x54 || buf[start + 2] !== 0x54 ||
      buf[start + 3] !== 0x50 || buf[start + 4] !== 0x2f || buf[start + 6] !== 0x2e
    ) return "InvalidVersion"
    const major = buf[start + 5] - 0x30
    const minor = buf[start + 7] - 0x30
    if (major < 0 || major > 9 || minor < 0 || minor > 9) return "InvalidVersion"
    if (major !== 1 || minor > 1) return "UnsupportedVersion"
    this.minor = minor
    return undefined
  }

  /** Turns the scanned section into strings once and emits its events. False after an error. */
  finishSection(buf: Uint8Array): boolean {
    const base = this.mark
    const count = this.count
    const fields = this.fields
    // One native call makes the section text; names and values are substrings of it (V8 shares the backing
    // store of longer ones), which is several times cheaper than one conversion per field.
    const textEnd = count > 0 ? fields[count * 4 - 1] : this.inTrailers ? 0 : this.targetEnd
    const text = textEnd > 0 ? latin1(buf, base, base + textEnd) : ""
    if (this.inTrailers) {
      let trailers = noFields
      if (count > 0) {
        const list: Array<readonly [string, string]> = []
        for (let i = 0; i < count; i++) {
          const o = i * 4
          list.push([this.fieldName(buf, base, text, o), text.substring(fields[o + 2], fields[o + 3])])
        }
        trailers = list
      }
      this.events.push(trailers === noFields ? endEvent : { _tag: "End", trailers })
      this.inTrailers = false
      this.state = State.Start
      return true
    }
    const method = knownMethod(buf, base, base + this.methodEnd) ?? text.substring(0, this.methodEnd)
    const target = text.substring(this.targetStart, this.targetEnd)
    const version = this.minor === 1 ? "HTTP/1.1" : "HTTP/1.0"
    const framing = this.framing
    resetFramingFields(framing)
    const headers: Array<readonly [string, string]> = []
    for (let i = 0; i < count; i++) {
      const o = i * 4
      const nameStart = fields[o]
      const nameEnd = fields[o + 1]
      const id = knownHeaderId(buf, base + nameStart, base + nameEnd)
      const name = id >= 0 ? knownHeaderNames[id] : text.substring(nameStart, nameEnd).toLowerCase()
      const value = text.substring(fields[o + 2], fields[o + 3])
      headers.push([name, value])
      switch (id) {
        case HostId:
          framing.hostCount++
          framing.host = value
          break
        case ContentLengthId:
          framing.contentLength = framing.contentLength === undefined ? value : `${framing.contentLength}, ${value}`
          break
        case TransferEncodingId:
          framing.transferEncoding = framing.transferEncoding === undefined
            ? value
            : `${framing.transferEncoding}, ${value}`
          break
        case ConnectionId:
          framing.connection = framing.connection === undefined ? value : `${framing.connection}, ${value}`
          break
        case ExpectId:
          framing.expect = framing.expect === undefined ? value : `${framing.expect}, ${value}`
          break
      }
    }
    const semantics = this.semantics
    const reason = analyzeRequest(method, target, version, framing, semantics, true)
    if (reason !== undefined) {
      this.fail(reason)
      return false
    }
    const body = semantics.framing
    // RFC 9110 §15.5.14: a declared length over the limit is refused before any body byte is read
    if (body._tag === "Length" && body.length > this.maxBody) {
      this.fail("ContentTooLarge")
      return false
    }
    const head: HttpRequestHead = {
      method,
      target,
      version,
      headers,
      framing: body,
      keepAlive: semantics.keepAlive,
      expectContinue: semantics.expectContinue
    }
    this.events.push({ _tag: "Head", head })
    if (body._tag === "Chunked") {
      this.state = State.ChunkSize
      this.chunkSize = 0
      this.chunkDigits = 0
      this.bodyTotal = 0
      this.extensionBytes = 0
    } else if (body._tag === "Length" && body.length > 0) {
      this.state = State.BodyLength
      this.remaining = body.length
    } else {
      this.events.push(endEvent)
      this.state = State.Start
    }
    return true
  }

  fieldName(buf: Uint8Array, base: number, text: string, o: number): string {
    const nameStart = this.fields[o]
    const nameEnd = this.fields[o + 1]
    const id = knownHeaderId(buf, base + nameStart, base + nameEnd)
    return id >= 0 ? knownHeaderNames[id] : text.substring(nameStart, nameEnd).toLowerCase()
  }

  /**
   * RFC 9112 §7.1: chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF; last-chunk = 1*("0") [ chunk-ext ] CRLF.
   * Scans the framing around chunk data from `p`; returns where to continue, or FAILED.
   */
  scanChunkFraming(buf: Uint8Array, p: number, end: number): number {
    let state: State = this.state
    while (p < end) {
      const c = buf[p]
      switch (state) {
        case State.ChunkSize: {
          const v = hexValue[c]
          if (v >= 0) {
            // exact hex: no sign, no "0x", overflow past Number.MAX_SAFE_INTEGER refused
            if (++this.chunkDigits > maxChunkSizeDigits || this.chunkSize > (Number.MAX_SAFE_INTEGER - v) / 16) {
              return this.reject("InvalidChunkSize")
            }
            this.chunkSize = this.chunkSize * 16 + v
            p++
            continue
          }
          if (this.chunkDigits === 0) return this.reject("InvalidChunkSize")
          if (c === CR) state = State.ChunkSizeLf
          else if (c === SEMICOLON) state = State.ExtNameStart
          else if (c === SP || c === HTAB) state = State.ChunkSizeBws
          else return this.reject("InvalidChunkSize")
          if (c !== CR && ++this.extensionBytes > this.maxExtension) return this.reject("ChunkExtensionTooLong")
          p++
          continue
        }
        case State.ChunkSizeLf: {
          if (c !== LF) return this.reject("InvalidLineEnding")
          p++
          if (this.chunkSize === 0) {
            this.state = State.FieldStart
            this.inTrailers = true
            this.mark = p
            this.sectionStart = 0
            this.count = 0
            return p
          }
          this.bodyTotal += this.chunkSize
          if (this.bodyTotal > this.maxBody) return this.reject("ContentTooLarge")
          this.remaining = this.chunkSize
          this.state = State.ChunkData
          return p
        }
        case State.ChunkDataCr: {
          if (c !== CR) return this.reject("InvalidChunkTerminator")
          p++
          state = State.ChunkDataLf
          continue
        }
        case State.ChunkDataLf: {
          if (c !== LF) return this.reject("InvalidChunkTerminator")
          p++
          this.chunkSize = 0
          this.chunkDigits = 0
          state = State.ChunkSize
          continue
        }
        default: {
          // chunk extensions: validated, counted against the limit, discarded
          if (c === CR) {
            // RFC 9112 §7.1.1: the extension list ends at CRLF, right after a name, token or quoted string
            if (state !== State.ExtName && state !== State.ExtToken && state !== State.ExtAfterQuoted) {
              return this.reject(state === State.ChunkSizeBws ? "InvalidChunkSize" : "InvalidChunkExtension")
            }
            p++
            state = State.ChunkSizeLf
            continue
          }
          if (++this.extensionBytes > this.maxExtension) return this.reject("ChunkExtensionTooLong")
          const next = extensionStep(state, c)
          if (next < 0) return this.reject(state === State.ChunkSizeBws ? "InvalidChunkSize" : "InvalidChunkExtension")
          state = next as State
          p++
          continue
        }
      }
    }
    this.state = state
    return p
  }
}

/**
 * RFC 9112 §7.1.1: chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ), with
 * chunk-ext-name = token and chunk-ext-val = token / quoted-string. The next state for byte `c`, or -1.
 */
const extensionStep = (state: State, c: number): number => {
  const ws = c === SP || c === HTAB
  switch (state) {
    case State.ChunkSizeBws:
    case State.ExtBws:
      return ws ? state : c === SEMICOLON ? State.ExtNameStart : -1
    case State.ExtNameStart:
      return ws ? state : tchar[c] === 1 ? State.ExtName : -1
    case State.ExtName:
      return tchar[c] === 1
        ? state
        : ws
        ? State.ExtAfterName
        : c === EQUALS
        ? State.ExtValueStart
        : c === SEMICOLON
        ? State.ExtNameStart
        : -1
    case State.ExtAfterName:
      return ws ? state : c === EQUALS ? State.ExtValueStart : c === SEMICOLON ? State.ExtNameStart : -1
    case State.ExtValueStart:
      return ws ? state : c === DQUOTE ? State.ExtQuoted : tchar[c] === 1 ? State.ExtToken : -1
    case State.ExtToken:
      return tchar[c] === 1 ? state : ws ? State.ExtBws : c === SEMICOLON ? State.ExtNameStart : -1
    case State.ExtQuoted:
      return c === DQUOTE ? State.ExtAfterQuoted : c === BACKSLASH ? State.ExtQuotedPair : qdtext[c] === 1 ? state : -1
    case State.ExtQuotedPair:
      return quotedPairChar[c] === 1 ? State.ExtQuoted : -1
    case State.ExtAfterQuoted:
      return ws ? State.ExtBws : c === SEMICOLON ? State.ExtNameStart : -1
    default:
      return -1
  }
}

/**
 * Makes a parser for the requests of one connection, with the given limits.
 * @category constructors
 */
export const makeRequestParser = (options?: Options): RequestParser => {
  const parser = new Parser(options)
  return {
    push: (chunk) => parser.push(chunk),
    end: () => parser.end()
  }
}

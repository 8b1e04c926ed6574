/**
 * The state machine behind `Http1Parser`: scans request heads into offsets, makes one string per head, frames
 * bodies (Content-Length or chunked) and emits events. Limits arrive already validated (see `Http1Parser`).
 *
 * After a request that asks to switch protocols (`HttpRequestHead.upgrade`) the machine pauses: the bytes that
 * follow belong to whatever protocol the server may switch to, so they are held, not parsed, until the server
 * either takes them (`takeRemaining`) or goes on with HTTP (`resume`).
 */
import { Buffer } from "node:buffer"
import { HttpParseError } from "../HttpParseError.ts"
import type { HttpParseReason } from "../HttpParseError.ts"
import type { HttpRequestHead } from "../RequestHead.ts"
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
} from "./grammar.ts"
import { framingNameCount, knownHeaderId, knownHeaderNames, knownMethod } from "./knownHeaders.ts"
import type { FramingFields, Semantics } from "./semantics.ts"
import { analyzeRequest, collectKnownField, framingNone, makeFramingFields, resetFramingFields } from "./semantics.ts"

/**
 * What a push produces, in wire order (documented on `Http1Parser.ParseEvent`).
 * @internal
 */
export type ParseEvent =
  | { readonly _tag: "Head"; readonly head: HttpRequestHead }
  | { readonly _tag: "Body"; readonly chunk: Uint8Array }
  | { readonly _tag: "End"; readonly trailers: ReadonlyArray<readonly [string, string]> }
  | { readonly _tag: "Error"; readonly error: HttpParseError }

/**
 * Validated limits.
 * @internal
 */
export interface Limits {
  readonly maxRequestLineBytes: number
  readonly maxHeaderBytes: number
  readonly maxHeaders: number
  readonly maxBodyBytes: number
  readonly maxChunkExtensionBytes: number
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
  Ended: 29,
  // after a request that asks to switch protocols: input is held until `resume` or `takeRemaining`
  Paused: 30
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
const emptyBytes = new Uint8Array(0)
const retainedAccBytes = 4096
/** Field slots a parser keeps between heads; a head with more grows them for its own duration only. */
const retainedFields = 32
const noFields: ReadonlyArray<readonly [string, string]> = Object.freeze([])
const endEvent: ParseEvent = Object.freeze({ _tag: "End", trailers: noFields })
// what a parser points at between pushes: the events of a push belong to its caller once it returns
const noEvents = Object.freeze([]) as unknown as Array<ParseEvent>
// nothing held: a list is made only when a protocol switch pauses the parser
const noHeld = Object.freeze([]) as unknown as Array<Uint8Array>
// a Buffer, like the chunks Node sockets deliver: the scanner then sees one array shape and stays monomorphic
const emptyAcc: Uint8Array = Buffer.alloc(0)
/**
 * The field slots of the section being scanned. Parsing is synchronous, so the parsers of a thread share these while
 * a section is scanned within one push; a parser copies them into slots of its own only when its section spans
 * pushes, and gives those back when the section ends. An idle parser holds none.
 */
const sharedFields = new Int32Array(4 * retainedFields)
// Slots given back, for the next section that spans pushes: heads split across reads (pipelining) allocate nothing.
// A thread keeps at most `maxSpareFields` of them, whatever its number of connections.
const spareFields: Array<Int32Array> = []
const maxSpareFields = 64
// what a head's fields say about its framing and connection, also shared: filled and read within one emitSection
const sharedFraming: FramingFields = makeFramingFields()
const sharedSemantics: Semantics = { framing: framingNone, keepAlive: true, expectContinue: false, upgrade: false }

type Latin1Slice = (this: Uint8Array, start: number, end: number) => string
const nativeLatin1Slice = (Buffer.prototype as unknown as { readonly latin1Slice?: Latin1Slice }).latin1Slice
// Buffer#latin1Slice is the fastest way from bytes to a one-byte string in Node; it accepts any Uint8Array
const latin1: (buf: Uint8Array, start: number, end: number) => string = nativeLatin1Slice !== undefined
  ? (buf, start, end) => nativeLatin1Slice.call(buf, start, end)
  : (buf, start, end) => Buffer.from(buf.buffer, buf.byteOffset + start, end - start).toString("latin1")

// section offsets are kept in an Int32Array
/**
 * The parser of one connection's requests.
 * @internal
 */
export class RequestMachine {
  readonly maxLine: number
  readonly maxHeaderBytes: number
  readonly maxHeaders: number
  readonly maxBody: number
  readonly maxExtension: number

  state: State = State.Start
  events: Array<ParseEvent> = noEvents

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
  fields: Int32Array = sharedFields

  // The bounded copy of a section that spans pushes; `resumeAt` is where scanning continues in it.
  buffered = false
  acc: Uint8Array = emptyAcc
  accLen = 0
  resumeAt = 0

  // An Int32Array view of the last scanned buffer's memory, for skipCleanWords; dropped after each push.
  wordsOf: ArrayBufferLike | undefined = undefined
  words: Int32Array = emptyWords

  // Body state
  remaining = 0
  bodyTotal = 0
  chunkSize = 0
  chunkDigits = 0
  extensionBytes = 0

  // The current message asks to switch protocols: pause once it ends. Bytes received while paused.
  upgrading = false
  held: Array<Uint8Array> = noHeld

  constructor(limits: Limits) {
    this.maxLine = limits.maxRequestLineBytes
    this.maxHeaderBytes = limits.maxHeaderBytes
    this.maxHeaders = limits.maxHeaders
    this.maxBody = limits.maxBodyBytes
    this.maxExtension = limits.maxChunkExtensionBytes
  }

  push(chunk: Uint8Array): Array<ParseEvent> {
    const events: Array<ParseEvent> = []
    this.events = events
    this.parse(chunk)
    this.events = noEvents
    return events
  }

  parse(chunk: Uint8Array): void {
    if (this.state === State.Paused) {
      if (chunk.length > 0) this.hold(chunk)
      return
    }
    if (this.state >= State.Failed || chunk.length === 0) return
    let p = 0
    if (this.buffered) {
      const old = this.accLen
      const cap = this.inTrailers ? this.maxHeaderBytes + 2 : this.maxLine + this.maxHeaderBytes + 4
      const n = Math.min(chunk.length, cap - old)
      if (n <= 0) return this.fail(this.inTrailers ? "HeaderSectionTooLarge" : "RequestLineTooLong")
      this.append(chunk, n)
      const q = this.scanSection(this.acc, this.resumeAt, this.accLen)
      if (q === FAILED) return
      if (q === INCOMPLETE) {
        this.resumeAt = this.accLen
        // unreachable while the limit checks hold: a full buffer always breaks a limit first
        if (n < chunk.length) this.fail("HeaderSectionTooLarge")
        return
      }
      this.buffered = false
      this.accLen = 0
      if (!this.finishSection(this.acc)) return
      // an idle keep-alive connection should not hold the copy of one large head
      if (this.acc.length > retainedAccBytes) this.acc = emptyAcc
      // the section ended inside the bytes just appended: continue in `chunk`, without copying
      p = q - old
    }
    this.run(chunk, p, chunk.length)
    if (this.wordsOf !== undefined) {
      this.wordsOf = undefined
      this.words = emptyWords
    }
  }

  end(): Array<ParseEvent> {
    // paused: the message before the pause was complete; whatever is held is the server's to judge
    if (this.state >= State.Failed) return []
    if (this.state === State.Start || this.state === State.StartLf) {
      this.state = State.Ended
      return []
    }
    const events: Array<ParseEvent> = []
    this.events = events
    this.fail("UnexpectedEnd")
    this.events = noEvents
    return events
  }

  hold(chunk: Uint8Array): void {
    if (this.held === noHeld) this.held = []
    this.held.push(chunk)
  }

  /** Parses the held bytes as HTTP again; the events they complete. Nothing when not paused. */
  resume(): Array<ParseEvent> {
    if (this.state !== State.Paused) return []
    this.state = State.Start
    const held = this.held
    this.held = noHeld
    let events: Array<ParseEvent> = []
    for (const chunk of held) {
      const more = this.push(chunk)
      if (events.length === 0) events = more
      else for (const event of more) events.push(event)
    }
    return events
  }

  /** The held bytes, in one buffer; the parser is done for good. Empty when not paused. */
  takeRemaining(): Uint8Array {
    const held = this.held
    this.held = noHeld
    const paused = this.state === State.Paused
    this.state = State.Ended
    if (!paused || held.length === 0) return emptyBytes
    return held.length === 1 ? held[0] : Buffer.concat(held)
  }

  /** The end of a message: the next one starts, unless this one asked to switch protocols. */
  endMessage(event: ParseEvent = endEvent): void {
    this.events.push(event)
    if (this.upgrading) {
      this.upgrading = false
      this.state = State.Paused
    } else {
      this.state = State.Start
    }
  }

  fail(reason: HttpParseReason): void {
    this.events.push({ _tag: "Error", error: HttpParseError.fromReason(reason) })
    this.state = State.Failed
    this.buffered = false
    this.accLen = 0
    this.releaseFields()
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
    this.resumeAt = n
    this.buffered = true
    // the section goes on in a later push, after other parsers may have used the shared slots
    if (this.fields === sharedFields) {
      const own = spareFields.pop() ?? new Int32Array(sharedFields.length)
      // (`count` is stale while the request line is scanned: copying too much is harmless)
      const used = Math.min(4 * this.count, own.length)
      for (let i = 0; i < used; i++) own[i] = sharedFields[i]
      this.fields = own
    }
  }

  /** Back to the shared slots, the section's own (if any) kept for another one. */
  releaseFields(): void {
    const own = this.fields
    if (own === sharedFields) return
    this.fields = sharedFields
    // grown slots are not kept: a head with many fields should not leave a large array behind
    if (own.length === sharedFields.length && spareFields.length < maxSpareFields) spareFields.push(own)
  }

  run(buf: Uint8Array, p: number, end: number): void {
    while (p < end) {
      const state = this.state
      if (state === State.Paused) {
        this.hold(buf.subarray(p, end))
        return
      }
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
        if (this.remaining === 0) this.endMessage()
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
    const ok = this.emitSection(buf)
    // own slots (a section that spanned pushes, or one with many fields) go with the section
    this.releaseFields()
    return ok
  }

  /** Turns the scanned section into strings once and emits its events. False after an error. */
  emitSection(buf: Uint8Array): boolean {
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
      this.inTrailers = false
      this.endMessage(trailers === noFields ? endEvent : { _tag: "End", trailers })
      return true
    }
    const method = knownMethod(buf, base, base + this.methodEnd) ?? text.substring(0, this.methodEnd)
    const target = text.substring(this.targetStart, this.targetEnd)
    const version = this.minor === 1 ? "HTTP/1.1" : "HTTP/1.0"
    const framing = sharedFraming
    resetFramingFields(framing)
    const headers: Array<readonly [string, string]> = []
    for (let i = 0; i < count; i++) {
      const o = i * 4
      const id = this.fieldId(buf, base, o)
      const value = text.substring(fields[o + 2], fields[o + 3])
      headers.push([this.nameOf(id, text, o), value])
      if (id >= 0 && id < framingNameCount) collectKnownField(framing, id, value)
    }
    const semantics = sharedSemantics
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
      expectContinue: semantics.expectContinue,
      upgrade: semantics.upgrade
    }
    this.events.push({ _tag: "Head", head })
    this.upgrading = semantics.upgrade
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
      this.endMessage()
    }
    return true
  }

  /** The known-header id of field `o`'s name, or -1. */
  fieldId(buf: Uint8Array, base: number, o: number): number {
    return knownHeaderId(buf, base + this.fields[o], base + this.fields[o + 1])
  }

  /** Field `o`'s name, lowercased: the interned string of a known header, else a substring of the section. */
  nameOf(id: number, text: string, o: number): string {
    return id >= 0 ? knownHeaderNames[id] : text.substring(this.fields[o], this.fields[o + 1]).toLowerCase()
  }

  fieldName(buf: Uint8Array, base: number, text: string, o: number): string {
    return this.nameOf(this.fieldId(buf, base, o), text, o)
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


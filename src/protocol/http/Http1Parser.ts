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
 * - After a request that asks to switch protocols (`head.upgrade`: `Upgrade` with `Connection: upgrade`, or
 *   CONNECT) the parser pauses: the bytes that follow are held, not parsed, until the server takes them for the new
 *   protocol (`takeRemaining`) or goes on with HTTP (`resume`, when it answered without switching).
 * - Every error is terminal and means "answer with `error.status` if possible, then close the connection": after
 *   a framing error the next request cannot be located reliably.
 * - Trailer fields of a chunked body are parsed with the header rules and limits and exposed, unmerged, on the
 *   `End` event (RFC 9110 §6.5: never merged into the header section here).
 * - Header values are decoded as latin1 (one character per byte), so obs-text round-trips byte for byte. All the
 *   strings of a head are substrings of one string made once per head (cheaper than one conversion per field).
 * - The scan position survives across pushes; a head split across pushes is copied once into a bounded buffer.
 *   Body chunks are subarrays of the pushed bytes: copy them if the buffer is reused.
 */
import * as internal from "./internal/requestParser.ts"

/**
 * The errors of the parser, defined in `HttpParseError.ts` (reasons, their statuses, the error) and re-exported here.
 * @category errors
 */
export { HttpParseError, HttpParseReason, statusOf } from "./HttpParseError.ts"

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
 * Most header field lines accepted: 2000. More -> 431. The trailer section has the same limit.
 *
 * The header-section byte limit is what bounds memory; the count only bounds the per-field work within it. Other
 * servers: node:http accepts 2000 fields (`server.maxHeadersCount`) in 16 KiB, hyper 100 fields by default, Netty
 * counts bytes only (8 KiB). 100 refused ordinary requests that proxies and browsers had grown to a hundred fields;
 * with node:http's count and byte limits, a request Node's own server takes is taken here too.
 * @category constants
 */
export const defaultMaxHeaders = 2000

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
 * What a push produces, in wire order. Per request: one `Head`, zero or more `Body` chunks, one `End` (with the
 * trailer fields of a chunked body, else an empty list). `Error` is the last event a parser ever produces.
 * @category models
 */
export type ParseEvent = internal.ParseEvent

/**
 * An incremental request parser for one connection.
 * @category models
 */
export interface RequestParser {
  /**
   * Feeds the next bytes (any split is fine) and returns the events they complete. After an `Error` event (or
   * after {@link RequestParser.end}) it returns no more events. `Body` chunks may be views of `chunk`. While paused
   * after a protocol-switch request, the bytes are held and no events come.
   */
  readonly push: (chunk: Uint8Array) => Array<ParseEvent>
  /** Signals the end of input: an `Error` (`UnexpectedEnd`) if a message is incomplete, else nothing. */
  readonly end: () => Array<ParseEvent>
  /**
   * After a protocol-switch request the server answered without switching: parses the held bytes as HTTP again and
   * returns the events they complete (none when the parser is not paused).
   */
  readonly resume: () => Array<ParseEvent>
  /**
   * After a protocol-switch request the server switched: the bytes received after that request (may be a view of
   * pushed bytes), and the parser is done for good. Empty when the parser is not paused.
   */
  readonly takeRemaining: () => Uint8Array
}

// section offsets are kept in an Int32Array
const maxSectionLimit = 256 * 1024 * 1024

const limit = (name: string, value: number | undefined, fallback: number, max = Number.MAX_SAFE_INTEGER): number => {
  if (value === undefined) return fallback
  if ((max === Infinity && value === Infinity) || (Number.isSafeInteger(value) && value >= 0 && value <= max)) {
    return value
  }
  throw new RangeError(`Http1Parser: ${name} must be an integer between 0 and ${max}, got ${value}`)
}

const limitsOf = (options: Options | undefined): internal.Limits => ({
  maxRequestLineBytes: limit(
    "maxRequestLineBytes",
    options?.maxRequestLineBytes,
    defaultMaxRequestLineBytes,
    maxSectionLimit
  ),
  maxHeaderBytes: limit("maxHeaderBytes", options?.maxHeaderBytes, defaultMaxHeaderBytes, maxSectionLimit),
  maxHeaders: limit("maxHeaders", options?.maxHeaders, defaultMaxHeaders),
  maxBodyBytes: limit("maxBodyBytes", options?.maxBodyBytes, defaultMaxBodyBytes, Infinity),
  maxChunkExtensionBytes: limit("maxChunkExtensionBytes", options?.maxChunkExtensionBytes, defaultMaxChunkExtensionBytes)
})

/**
 * Makes a parser for the requests of one connection, with the given limits. A bad limit is a defect (RangeError).
 * @category constructors
 */
export const makeRequestParser = (options?: Options): RequestParser =>
  // the machine itself, not closures around it: a server keeps one parser per open connection
  new internal.RequestMachine(limitsOf(options))

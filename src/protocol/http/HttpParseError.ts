/**
 * Why the HTTP/1.1 request parser refuses a request: the reasons, the one table that maps each reason to its
 * response status, and the error itself. Shared by the parser (`Http1Parser`), the request-head Schemas
 * (`RequestHead`) and the message rules, so that none of them depends on the parser's implementation.
 */
import { Schema } from "effect"

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


/**
 * Splits the wire text of one message head into its start line and field lines, for the Schema codecs (not the
 * incremental parser). Nothing is validated beyond the line structure: the Schemas check the parts.
 */
import { Buffer } from "node:buffer"

const isOws = (c: number): boolean => c === 0x20 || c === 0x09

/** @internal */
export interface HeadText {
  readonly startLine: string
  readonly fields: ReadonlyArray<readonly [string, string]>
}

/**
 * RFC 9112 §2.1: start-line CRLF *( field-line CRLF ) CRLF. Field values lose their surrounding OWS (RFC 9112
 * §5); names are kept as sent. Returns a message when the structure is wrong.
 * @internal
 */
export const splitHeadText = (text: string): HeadText | string => {
  const end = text.indexOf("\r\n\r\n")
  if (end < 0 || end !== text.length - 4) return "the text is not exactly one head ending with CRLF CRLF"
  const lines = text.slice(0, end).split("\r\n")
  for (const line of lines) {
    if (line.includes("\r") || line.includes("\n")) return "bare CR or LF in the head"
  }
  const fields: Array<readonly [string, string]> = []
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]
    const colon = line.indexOf(":")
    if (colon < 0) return "a field line without a colon"
    let a = colon + 1
    let b = line.length
    while (a < b && isOws(line.charCodeAt(a))) a++
    while (b > a && isOws(line.charCodeAt(b - 1))) b--
    fields.push([line.slice(0, colon), line.slice(a, b)])
  }
  return { startLine: lines[0], fields }
}

/**
 * The bytes of a latin1 string, one per character (characters above U+00FF must have been refused before).
 * @internal
 */
export const latin1Bytes = (text: string): Uint8Array => Buffer.from(text, "latin1")

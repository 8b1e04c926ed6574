/**
 * Test helpers for the HTTP/1.1 protocol tests: latin1 bytes, splitting inputs, and folding parser events into
 * messages while checking the event-order invariants.
 */
import { assert } from "@effect/vitest"
import * as Http1Parser from "../../../src/protocol/http/Http1Parser.ts"
import type { HttpRequestHead } from "../../../src/protocol/http/RequestHead.ts"

export const bytes = (text: string): Uint8Array => Uint8Array.from(text, (ch) => ch.charCodeAt(0))

export const latin1 = (data: Uint8Array): string => {
  let out = ""
  for (let i = 0; i < data.length; i++) out += String.fromCharCode(data[i])
  return out
}

export interface Message {
  readonly head: HttpRequestHead
  readonly body: string
  readonly trailers: ReadonlyArray<readonly [string, string]>
}

export interface Outcome {
  readonly messages: ReadonlyArray<Message>
  readonly error: { readonly reason: Http1Parser.HttpParseReason; readonly status: number } | undefined
  /** A head was produced whose message has not ended. */
  readonly partial: boolean
}

/** Folds events into messages; fails the test when the event order breaks an invariant. */
export const summarize = (events: ReadonlyArray<Http1Parser.ParseEvent>): Outcome => {
  const messages: Array<Message> = []
  let head: HttpRequestHead | undefined
  let body = ""
  let error: Outcome["error"]
  for (const event of events) {
    assert.isUndefined(error, "no event after an Error")
    switch (event._tag) {
      case "Head":
        assert.isUndefined(head, "Head inside a message")
        head = event.head
        body = ""
        break
      case "Body":
        assert.isDefined(head, "Body outside a message")
        assert.isAbove(event.chunk.length, 0, "empty Body chunk")
        body += latin1(event.chunk)
        break
      case "End":
        assert.isDefined(head, "End outside a message")
        messages.push({ head: head!, body, trailers: event.trailers })
        head = undefined
        break
      case "Error":
        assert.instanceOf(event.error, Http1Parser.HttpParseError)
        assert.strictEqual(event.error.status, Http1Parser.statusOf[event.error.reason])
        assert.isTrue(event.error.closeConnection)
        assert.isBelow(event.error.message.length, 120, "short message")
        error = { reason: event.error.reason, status: event.error.status }
        break
    }
  }
  return { messages, error, partial: head !== undefined }
}

/** Pushes every chunk into a fresh parser, then ends the input when `end` is set. */
export const parseChunks = (
  chunks: ReadonlyArray<Uint8Array>,
  options?: Http1Parser.Options,
  end = false
): Outcome => {
  const parser = Http1Parser.makeRequestParser(options)
  const events: Array<Http1Parser.ParseEvent> = []
  for (const chunk of chunks) events.push(...parser.push(chunk))
  if (end) events.push(...parser.end())
  return summarize(events)
}

export { splitAt } from "../../utils/chunks.ts"

export const byteAtATime = (input: Uint8Array): Array<Uint8Array> =>
  Array.from(input, (_, i) => input.slice(i, i + 1))

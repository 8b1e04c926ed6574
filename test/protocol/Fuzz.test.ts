/**
 * Every decoder in `src/protocol` under arbitrary bytes, in one place and with a fixed number of runs each: the
 * input is random bytes, or a valid sample with random bytes flipped, inserted or cut (to reach deep states), fed
 * in pieces split at random points. A decoder may succeed or fail with its own typed error; it never throws, never
 * dies inside an Effect, and never gives an answer that depends on how the input was split.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Result, Schema, Stream } from "effect"
import * as fc from "fast-check"
import * as ChatMessage from "../../src/protocol/ChatMessage.ts"
import * as Http1Parser from "../../src/protocol/http/Http1Parser.ts"
import * as RequestHead from "../../src/protocol/http/RequestHead.ts"
import * as ResponseHead from "../../src/protocol/http/ResponseHead.ts"
import * as LengthPrefixedFraming from "../../src/protocol/LengthPrefixedFraming.ts"
import { splitAt } from "../utils/chunks.ts"
import { bytes, latin1, parseChunks } from "./http/support.ts"

/** Runs per property: bounded, so the suite stays quick; a failure prints the seed to replay it. */
const runs = 2000

const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text)

/** A valid sample with up to 8 random edits: a byte replaced, inserted or deleted. */
const mutated = (samples: ReadonlyArray<Uint8Array>) =>
  fc.tuple(
    fc.constantFrom(...samples),
    fc.array(fc.tuple(fc.constantFrom("set", "insert", "delete"), fc.nat(), fc.integer({ min: 0, max: 255 })), {
      maxLength: 8
    })
  ).map(([sample, edits]) => {
    const out = [...sample]
    for (const [kind, at, value] of edits) {
      const i = out.length === 0 ? 0 : at % (out.length + (kind === "insert" ? 1 : 0))
      if (kind === "set" && out.length > 0) out[i] = value
      else if (kind === "insert") out.splice(i, 0, value)
      else if (kind === "delete") out.splice(i, 1)
    }
    return Uint8Array.from(out)
  })

/** Random bytes, or a mutated sample; the same input is then cut at random points. */
const input = (samples: ReadonlyArray<Uint8Array>) =>
  fc.tuple(
    fc.oneof(fc.uint8Array({ maxLength: 600 }), mutated(samples)),
    fc.array(fc.nat(), { maxLength: 8 })
  ).map(([data, points]) => ({ data, chunks: splitAt(data, points.map((p) => p % (data.length + 1))) }))

/** The exit of a synchronous Effect: success, or a failure that is a typed error (no defect, no interruption). */
const typedExit = <A, E>(effect: Effect.Effect<A, E>, isError: (error: unknown) => boolean): Exit.Exit<A, E> => {
  const exit = Effect.runSyncExit(effect)
  if (Exit.isFailure(exit)) {
    assert.isTrue(Cause.hasFails(exit.cause) && !Cause.hasDies(exit.cause), Cause.pretty(exit.cause))
    for (const reason of exit.cause.reasons) if (Cause.isFailReason(reason)) assert.isTrue(isError(reason.error))
  }
  return exit
}

const isFramingError = (error: unknown) =>
  error instanceof LengthPrefixedFraming.FramingError && LengthPrefixedFraming.FramingReason.literals.includes(error.reason)

const isChatError = (error: unknown) =>
  error instanceof ChatMessage.ChatMessageError && ["bad_message", "bad_name"].includes(error.reason) &&
  error.detail.length > 0

describe("codecs under arbitrary bytes", () => {
  describe("LengthPrefixedFraming", () => {
    const samples = [
      LengthPrefixedFraming.encodeFrames([utf8("hello"), utf8("w"), utf8("ünïcödé")]),
      LengthPrefixedFraming.encodeFrame(new Uint8Array(300)),
      Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 1, 7)
    ]
    const frameSummary = (frames: ReadonlyArray<Uint8Array>) => frames.map((frame) => latin1(frame))

    for (const maxFrameBytes of [LengthPrefixedFraming.defaultMaxFrameBytes, 16]) {
      it(`the pull decoder, decodeAll and the stream adapter agree, whatever the split (max ${maxFrameBytes})`, () => {
        fc.assert(
          fc.property(input(samples), ({ chunks, data }) => {
            const decoder = LengthPrefixedFraming.makeDecoder({ maxFrameBytes })
            const frames: Array<Uint8Array> = []
            let failure: LengthPrefixedFraming.FramingError | undefined
            for (const chunk of chunks) {
              const pushed = decoder.push(chunk)
              if (Result.isFailure(pushed)) {
                failure = pushed.failure
                break
              }
              frames.push(...pushed.success.map((frame) => Uint8Array.from(frame)))
            }
            if (failure === undefined) {
              const ended = decoder.end()
              if (Result.isFailure(ended)) failure = ended.failure
            }
            if (failure !== undefined) assert.isTrue(isFramingError(failure))
            for (const frame of frames) assert.isTrue(frame.length >= 1 && frame.length <= maxFrameBytes)

            const whole = LengthPrefixedFraming.decodeAll(data, { maxFrameBytes })
            if (Result.isSuccess(whole)) {
              assert.isUndefined(failure)
              assert.deepStrictEqual(frameSummary(whole.success), frameSummary(frames))
            } else {
              assert.deepStrictEqual(whole.failure, failure)
            }

            const streamed = typedExit(
              Stream.fromIterable(chunks).pipe(LengthPrefixedFraming.decode({ maxFrameBytes }), Stream.runCollect),
              isFramingError
            )
            if (Exit.isSuccess(streamed)) {
              assert.isUndefined(failure)
              assert.deepStrictEqual(frameSummary(streamed.value), frameSummary(frames))
            } else {
              assert.isDefined(failure)
            }
          }),
          { numRuns: runs }
        )
      })
    }

    it("the FrameLength schema: a length or a schema error", () => {
      const schema = LengthPrefixedFraming.FrameLength(1000)
      fc.assert(
        fc.property(fc.oneof(fc.uint8Array({ maxLength: 8 }), fc.anything()), (value) => {
          typedExit(Schema.decodeUnknownEffect(schema)(value), Schema.isSchemaError)
        }),
        { numRuns: runs }
      )
    })
  })

  describe("ChatMessage", () => {
    const samples = [
      utf8(`{"type":"login","name":"alice"}`),
      utf8(`{"type":"say","text":"hi ünïcödé"}`),
      utf8(`{"type":"welcome","name":"alice","address":"127.0.0.1:4000","count":2}`),
      utf8(`{"type":"error","code":"bad_message","detail":"x"}`),
      utf8(`{"type":"joined","client":"bob","count":3}`)
    ]

    it("client and server payloads: a message or a ChatMessageError, the same as the schemas say", () => {
      const clientBySchema = Schema.decodeUnknownResult(ChatMessage.ClientMessageFromBytes)
      const serverBySchema = Schema.decodeUnknownResult(ChatMessage.ServerMessageFromBytes)
      fc.assert(
        fc.property(input(samples), ({ data }) => {
          const client = ChatMessage.decodeClientMessage(data)
          if (Result.isFailure(client)) assert.isTrue(isChatError(client.failure))
          assert.strictEqual(Result.isSuccess(client), Result.isSuccess(clientBySchema(data)))
          const server = ChatMessage.decodeServerMessage(data)
          if (Result.isFailure(server)) assert.isTrue(isChatError(server.failure))
          assert.strictEqual(Result.isSuccess(server), Result.isSuccess(serverBySchema(data)))
        }),
        { numRuns: runs }
      )
    })

    it("frames then messages, as a chat peer reads them: every frame gives a message or a typed error", () => {
      const wireSamples = samples.map((payload) => LengthPrefixedFraming.encodeFrames([payload, payload]))
      fc.assert(
        fc.property(input(wireSamples), ({ chunks }) => {
          const decoder = LengthPrefixedFraming.makeDecoder()
          for (const chunk of chunks) {
            const pushed = decoder.push(chunk)
            if (Result.isFailure(pushed)) return assert.isTrue(isFramingError(pushed.failure))
            for (const frame of pushed.success) {
              const decoded: ReadonlyArray<Result.Result<unknown, ChatMessage.ChatMessageError>> = [
                ChatMessage.decodeClientMessage(frame),
                ChatMessage.decodeServerMessage(frame)
              ]
              for (const result of decoded) if (Result.isFailure(result)) assert.isTrue(isChatError(result.failure))
            }
          }
        }),
        { numRuns: runs }
      )
    })
  })

  describe("Http1Parser", () => {
    const samples = [
      "GET /index.html?x=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n",
      "POST /form HTTP/1.1\r\nHost: h\r\nContent-Length: 13\r\n\r\nhello, world!",
      "PUT /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n4;e=\"v\"\r\nWiki\r\n0\r\nX-T: done\r\n\r\n",
      "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n"
    ].map(bytes)
    const tiny = { maxRequestLineBytes: 16, maxHeaderBytes: 24, maxHeaders: 2, maxBodyBytes: 8 }

    for (const [label, options] of [["default limits", undefined], ["tiny limits", tiny]] as const) {
      it(`events or one typed error, the same for every split (${label})`, () => {
        fc.assert(
          fc.property(input(samples), ({ chunks, data }) => {
            // parseChunks checks the event order and that an error is an HttpParseError with its status
            const split = parseChunks(chunks, options, true)
            assert.deepStrictEqual(split, parseChunks([data], options, true))
          }),
          { numRuns: runs }
        )
      })
    }
  })

  describe("RequestHead and ResponseHead schemas", () => {
    const requestSamples = ["GET / HTTP/1.1\r\nHost: h\r\nX-A: b\r\n\r\n", "OPTIONS * HTTP/1.0\r\n\r\n"].map(bytes)
    const responseSamples = ["HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n", "HTTP/1.0 404 \r\n\r\n"].map(bytes)

    const fromText = [
      ["HttpRequestHeadFromString", RequestHead.HttpRequestHeadFromString, requestSamples],
      ["HttpResponseHeadFromString", ResponseHead.HttpResponseHeadFromString, responseSamples]
    ] as const
    for (const [name, schema, samples] of fromText) {
      it(`${name}: a head or a schema error, for any latin1 text`, () => {
        const decode = Schema.decodeUnknownEffect(schema)
        fc.assert(
          fc.property(input(samples), ({ data }) => {
            typedExit(decode(latin1(data)), Schema.isSchemaError)
          }),
          { numRuns: runs }
        )
      })
    }

    it("the head schemas on arbitrary values: a value or a schema error", () => {
      const request = Schema.decodeUnknownEffect(RequestHead.HttpRequestHead)
      const response = Schema.decodeUnknownEffect(ResponseHead.HttpResponseHead)
      fc.assert(
        fc.property(fc.anything(), (value) => {
          typedExit(request(value), Schema.isSchemaError)
          typedExit(response(value), Schema.isSchemaError)
        }),
        { numRuns: runs }
      )
    })

    it("encodeResponseHead: bytes or an HttpEncodeError, for any status, reason and fields", () => {
      const text = fc.string({ unit: fc.integer({ min: 0, max: 0x17f }).map((c) => String.fromCharCode(c)), maxLength: 20 })
      fc.assert(
        fc.property(
          fc.oneof(fc.integer({ min: 0, max: 1000 }), fc.double()),
          fc.option(text, { nil: undefined }),
          fc.array(fc.tuple(text, text), { maxLength: 4 }),
          (status, reason, headers) => {
            const encoded = ResponseHead.encodeResponseHead({ status, reason, headers })
            if (Result.isFailure(encoded)) assert.instanceOf(encoded.failure, ResponseHead.HttpEncodeError)
            else assert.isAbove(encoded.success.length, 0)
          }
        ),
        { numRuns: runs }
      )
    })
  })
})

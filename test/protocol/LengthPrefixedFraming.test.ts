import { assert, describe, it } from "@effect/vitest"
import { Effect, Result, Schema, Stream } from "effect"
import * as fc from "fast-check"
import * as LengthPrefixedFraming from "../../src/protocol/LengthPrefixedFraming.ts"
import { splitAt } from "../utils/chunks.ts"

const bytes = (...values: ReadonlyArray<number>): Uint8Array => Uint8Array.from(values)
const text = (s: string): Uint8Array => new TextEncoder().encode(s)

const concat = (chunks: ReadonlyArray<Uint8Array>): Uint8Array => {
  const out = new Uint8Array(chunks.reduce((n, chunk) => n + chunk.length, 0))
  let offset = 0
  for (const chunk of chunks) {
    out.set(chunk, offset)
    offset += chunk.length
  }
  return out
}

// Copies into fresh plain Uint8Arrays so deepStrictEqual compares contents, not views or subclasses.
const plain = (frames: ReadonlyArray<Uint8Array>): Array<Uint8Array> => frames.map((frame) => Uint8Array.from(frame))

const pushAll = (
  decoder: LengthPrefixedFraming.Decoder,
  chunks: ReadonlyArray<Uint8Array>
): Result.Result<Array<Uint8Array>, LengthPrefixedFraming.FramingError> => {
  const frames: Array<Uint8Array> = []
  for (const chunk of chunks) {
    const pushed = decoder.push(chunk)
    if (Result.isFailure(pushed)) return Result.fail(pushed.failure)
    frames.push(...pushed.success)
  }
  const ended = decoder.end()
  return Result.isFailure(ended) ? Result.fail(ended.failure) : Result.succeed(plain(frames))
}

const payloads = [text("hello"), text("w"), text("a longer payload with ünïcödé"), bytes(0, 0, 0, 0)]
const wire = LengthPrefixedFraming.encodeFrames(payloads)

const failureOf = <A>(result: Result.Result<A, LengthPrefixedFraming.FramingError>) => {
  assert.isTrue(Result.isFailure(result), "expected a failure")
  return (result as Result.Failure<A, LengthPrefixedFraming.FramingError>).failure
}

describe("LengthPrefixedFraming", () => {
  describe("defaultMaxFrameBytes", () => {
    it("is 64 KiB, as the chat spec says", () => {
      assert.strictEqual(LengthPrefixedFraming.defaultMaxFrameBytes, 65536)
      assert.strictEqual(LengthPrefixedFraming.headerBytes, 4)
    })
  })

  describe("FramingError", () => {
    it("carries the wire code as reason and a readable message", () => {
      const tooLarge = new LengthPrefixedFraming.FramingError({ reason: "frame_too_large", length: 70000 })
      assert.strictEqual(tooLarge._tag, "FramingError")
      assert.strictEqual(tooLarge.message, "frame length 70000 exceeds maxFrameBytes")
      assert.strictEqual(
        new LengthPrefixedFraming.FramingError({ reason: "empty_frame", length: 0 }).message,
        "frame length 0 is below the minimum of 1"
      )
      assert.strictEqual(
        new LengthPrefixedFraming.FramingError({ reason: "truncated_frame", length: 0, received: 3 }).message,
        "input ended inside a frame header (3 of 4 bytes)"
      )
      assert.strictEqual(
        new LengthPrefixedFraming.FramingError({ reason: "truncated_frame", length: 10, received: 6 }).message,
        "input ended inside a frame (6 of 14 bytes)"
      )
    })
  })

  describe("FrameLength", () => {
    const schema = LengthPrefixedFraming.FrameLength(1000)

    it("decodes the 4 header bytes as a big-endian length", () => {
      assert.deepStrictEqual(Schema.decodeUnknownResult(schema)(bytes(0, 0, 3, 232)), Result.succeed(1000))
      assert.deepStrictEqual(Schema.decodeUnknownResult(schema)(bytes(0, 0, 0, 1)), Result.succeed(1))
    })

    it("rejects 0, more than the limit, and headers of the wrong size", () => {
      assert.isTrue(Result.isFailure(Schema.decodeUnknownResult(schema)(bytes(0, 0, 0, 0))))
      assert.isTrue(Result.isFailure(Schema.decodeUnknownResult(schema)(bytes(0, 0, 3, 233))))
      assert.isTrue(Result.isFailure(Schema.decodeUnknownResult(schema)(bytes(0xff, 0xff, 0xff, 0xf0))))
      assert.isTrue(Result.isFailure(Schema.decodeUnknownResult(schema)(bytes(0, 0, 1))))
      assert.isTrue(Result.isFailure(Schema.decodeUnknownResult(schema)(bytes(0, 0, 0, 1, 0))))
      assert.isTrue(Result.isFailure(Schema.decodeUnknownResult(schema)("0001")))
    })

    it("encodes a length as 4 big-endian bytes and refuses out-of-range lengths", () => {
      assert.deepStrictEqual(Schema.encodeUnknownResult(schema)(1000), Result.succeed(bytes(0, 0, 3, 232)))
      assert.deepStrictEqual(
        Schema.encodeUnknownResult(LengthPrefixedFraming.FrameLength(0xffff_ffff))(0x0102_0304),
        Result.succeed(bytes(1, 2, 3, 4))
      )
      assert.isTrue(Result.isFailure(Schema.encodeUnknownResult(schema)(0)))
      assert.isTrue(Result.isFailure(Schema.encodeUnknownResult(schema)(1001)))
      assert.isTrue(Result.isFailure(Schema.encodeUnknownResult(schema)(1.5)))
    })

    it("defaults to defaultMaxFrameBytes", () => {
      const standard = LengthPrefixedFraming.FrameLength()
      assert.deepStrictEqual(Schema.decodeUnknownResult(standard)(bytes(0, 1, 0, 0)), Result.succeed(65536))
      assert.isTrue(Result.isFailure(Schema.decodeUnknownResult(standard)(bytes(0, 1, 0, 1))))
    })

    it("accepts exactly the headers the decoder accepts", () => {
      const length = fc.oneof(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: 0xffff_ffff }))
      fc.assert(fc.property(length, fc.integer({ min: 1, max: 100 }), (length, max) => {
        const header = new Uint8Array(4)
        new DataView(header.buffer).setUint32(0, length)
        const bySchema = Schema.decodeUnknownResult(LengthPrefixedFraming.FrameLength(max))(header)
        const byDecoder = LengthPrefixedFraming.makeDecoder({ maxFrameBytes: max }).push(header)
        assert.strictEqual(Result.isSuccess(bySchema), Result.isSuccess(byDecoder))
      }))
    })
  })

  describe("encodeFrame", () => {
    it("writes a big-endian length then the payload, in one buffer", () => {
      assert.deepStrictEqual(LengthPrefixedFraming.encodeFrame(text("hi")), bytes(0, 0, 0, 2, 104, 105))
      const large = new Uint8Array(0x0102_03).fill(7)
      const frame = LengthPrefixedFraming.encodeFrame(large)
      assert.deepStrictEqual(frame.subarray(0, 4), bytes(0, 1, 2, 3))
      assert.strictEqual(frame.length, 4 + large.length)
      assert.strictEqual(frame.byteLength, frame.buffer.byteLength)
    })

    it("encodes an empty payload as a bare header (which decoders reject)", () => {
      assert.deepStrictEqual(LengthPrefixedFraming.encodeFrame(new Uint8Array(0)), bytes(0, 0, 0, 0))
    })
  })

  describe("encodeFrames", () => {
    it("concatenates the frames of all payloads into one buffer", () => {
      assert.deepStrictEqual(wire, concat(payloads.map(LengthPrefixedFraming.encodeFrame)))
      assert.strictEqual(wire.byteLength, wire.buffer.byteLength)
    })

    it("encodes no payloads as no bytes", () => {
      assert.strictEqual(LengthPrefixedFraming.encodeFrames([]).length, 0)
    })
  })

  describe("makeDecoder", () => {
    it("decodes one frame in one chunk", () => {
      const decoder = LengthPrefixedFraming.makeDecoder()
      assert.deepStrictEqual(plain(Result.getOrThrow(decoder.push(bytes(0, 0, 0, 2, 104, 105)))), [text("hi")])
      assert.isTrue(Result.isSuccess(decoder.end()))
    })

    it("decodes many frames in one chunk, in order", () => {
      const many = Array.from({ length: 1000 }, (_, i) => text(`message number ${i}`))
      const decoder = LengthPrefixedFraming.makeDecoder()
      assert.deepStrictEqual(plain(Result.getOrThrow(decoder.push(LengthPrefixedFraming.encodeFrames(many)))), many)
    })

    it("decodes the same frames at every split point", () => {
      for (let point = 0; point <= wire.length; point++) {
        const decoded = pushAll(LengthPrefixedFraming.makeDecoder(), splitAt(wire, [point]))
        assert.deepStrictEqual(decoded, Result.succeed(payloads), `split at ${point}`)
      }
    })

    it("decodes the same frames at every pair of split points", () => {
      for (let a = 0; a <= wire.length; a++) {
        for (let b = a; b <= wire.length; b++) {
          const decoded = pushAll(LengthPrefixedFraming.makeDecoder(), splitAt(wire, [a, b]))
          assert.deepStrictEqual(decoded, Result.succeed(payloads), `split at ${a}, ${b}`)
        }
      }
    })

    it("decodes byte-at-a-time input", () => {
      const decoder = LengthPrefixedFraming.makeDecoder()
      const frames: Array<Uint8Array> = []
      for (const byte of wire) {
        const pushed = Result.getOrThrow(decoder.push(bytes(byte)))
        assert.isAtMost(pushed.length, 1)
        frames.push(...pushed)
      }
      assert.deepStrictEqual(plain(frames), payloads)
      assert.isTrue(Result.isSuccess(decoder.end()))
    })

    it("emits a frame as soon as its last byte arrives", () => {
      const decoder = LengthPrefixedFraming.makeDecoder()
      const frame = LengthPrefixedFraming.encodeFrame(text("abc"))
      assert.deepStrictEqual(Result.getOrThrow(decoder.push(frame.subarray(0, 6))), [])
      assert.deepStrictEqual(plain(Result.getOrThrow(decoder.push(frame.subarray(6)))), [text("abc")])
    })

    it("accepts an empty chunk anywhere", () => {
      const decoder = LengthPrefixedFraming.makeDecoder()
      assert.deepStrictEqual(Result.getOrThrow(decoder.push(new Uint8Array(0))), [])
      const chunks = [wire.subarray(0, 2), new Uint8Array(0), wire.subarray(2)]
      assert.deepStrictEqual(pushAll(decoder, chunks), Result.succeed(payloads))
    })

    it("accepts a frame of exactly maxFrameBytes", () => {
      const payload = new Uint8Array(16).fill(1)
      const decoder = LengthPrefixedFraming.makeDecoder({ maxFrameBytes: 16 })
      const frames = Result.getOrThrow(decoder.push(LengthPrefixedFraming.encodeFrame(payload)))
      assert.deepStrictEqual(plain(frames), [payload])
    })

    it("accepts a frame of exactly the default limit", () => {
      const payload = new Uint8Array(65536).fill(2)
      const decoded = pushAll(LengthPrefixedFraming.makeDecoder(), [LengthPrefixedFraming.encodeFrame(payload)])
      assert.deepStrictEqual(decoded, Result.succeed([payload]))
    })

    it("rejects maxFrameBytes + 1 with frame_too_large", () => {
      const decoder = LengthPrefixedFraming.makeDecoder({ maxFrameBytes: 16 })
      const error = failureOf(decoder.push(LengthPrefixedFraming.encodeFrame(new Uint8Array(17))))
      assert.strictEqual(error.reason, "frame_too_large")
      assert.strictEqual(error.length, 17)
      const overDefault = failureOf(LengthPrefixedFraming.makeDecoder().push(bytes(0, 1, 0, 1)))
      assert.strictEqual(overDefault.reason, "frame_too_large")
      assert.strictEqual(overDefault.length, 65537)
    })

    it("rejects a length of 0 with empty_frame", () => {
      const error = failureOf(LengthPrefixedFraming.makeDecoder().push(bytes(0, 0, 0, 0)))
      assert.strictEqual(error.reason, "empty_frame")
      assert.strictEqual(error.length, 0)
    })

    it("rejects a bad frame after good ones from earlier chunks", () => {
      const decoder = LengthPrefixedFraming.makeDecoder()
      assert.deepStrictEqual(plain(Result.getOrThrow(decoder.push(wire))), payloads)
      assert.strictEqual(failureOf(decoder.push(bytes(0, 0, 0, 0, 1))).reason, "empty_frame")
    })

    it("fails a push whose chunk breaks a rule after completing frames; pushInto keeps those frames", () => {
      const chunk = concat([LengthPrefixedFraming.encodeFrames([text("one"), text("two")]), bytes(0, 0, 0, 0)])
      assert.strictEqual(failureOf(LengthPrefixedFraming.makeDecoder().push(chunk)).reason, "empty_frame")
      const decoder = LengthPrefixedFraming.makeDecoder()
      const frames: Array<Uint8Array> = []
      const error = decoder.pushInto(chunk, frames)
      assert.strictEqual(error?.reason, "empty_frame")
      assert.deepStrictEqual(plain(frames), [text("one"), text("two")])
      assert.strictEqual(decoder.pushInto(wire, frames), error)
      assert.strictEqual(frames.length, 2)
    })

    it("appends to the caller's array with pushInto and returns undefined while all is well", () => {
      const decoder = LengthPrefixedFraming.makeDecoder()
      const frames: Array<Uint8Array> = []
      assert.isUndefined(decoder.pushInto(wire.subarray(0, 10), frames))
      assert.isUndefined(decoder.pushInto(wire.subarray(10), frames))
      assert.deepStrictEqual(plain(frames), payloads)
    })

    it("rejects a 0xFFFFFFF0 length claim right after the 4 header bytes, without allocating it", () => {
      const before = process.memoryUsage().arrayBuffers
      const decoder = LengthPrefixedFraming.makeDecoder()
      const error = failureOf(decoder.push(bytes(0xff, 0xff, 0xff, 0xf0)))
      assert.strictEqual(error.reason, "frame_too_large")
      assert.strictEqual(error.length, 0xffff_fff0)
      // A 4 GiB buffer would show up here (or have thrown); the check ran before any payload byte arrived.
      assert.isBelow(process.memoryUsage().arrayBuffers - before, 64 * 1024 * 1024)
    })

    it("rejects a huge length claim whose header arrives split, on the byte that completes it", () => {
      const decoder = LengthPrefixedFraming.makeDecoder({ maxFrameBytes: 0xffff_fff0 - 1 })
      assert.deepStrictEqual(Result.getOrThrow(decoder.push(bytes(0xff))), [])
      assert.deepStrictEqual(Result.getOrThrow(decoder.push(bytes(0xff, 0xff))), [])
      assert.strictEqual(failureOf(decoder.push(bytes(0xf0))).reason, "frame_too_large")
    })

    it("returns frames inside one chunk as views of it, and copies a split frame once into its own buffer", () => {
      const decoder = LengthPrefixedFraming.makeDecoder()
      const chunk = LengthPrefixedFraming.encodeFrames([text("one"), text("two")])
      const [one, two] = Result.getOrThrow(decoder.push(chunk))
      assert.strictEqual(one.buffer, chunk.buffer)
      assert.strictEqual(two.byteOffset, 11)
      const split = LengthPrefixedFraming.encodeFrame(text("split frame"))
      assert.deepStrictEqual(Result.getOrThrow(decoder.push(split.subarray(0, 7))), [])
      assert.deepStrictEqual(Result.getOrThrow(decoder.push(split.subarray(7, 9))), [])
      const [assembled] = Result.getOrThrow(decoder.push(split.subarray(9)))
      assert.notStrictEqual(assembled.buffer, split.buffer)
      assert.strictEqual(assembled.buffer.byteLength, "split frame".length)
      assert.deepStrictEqual(assembled, text("split frame"))
    })

    it("returns plain Uint8Arrays for Buffer chunks", () => {
      const [frame] = Result.getOrThrow(LengthPrefixedFraming.makeDecoder().push(Buffer.from(wire)))
      assert.strictEqual(Object.getPrototypeOf(frame), Uint8Array.prototype)
      assert.deepStrictEqual(frame, payloads[0])
    })

    it("ends cleanly on a frame boundary, and on no input at all", () => {
      assert.isTrue(Result.isSuccess(LengthPrefixedFraming.makeDecoder().end()))
      assert.deepStrictEqual(pushAll(LengthPrefixedFraming.makeDecoder(), [wire]), Result.succeed(payloads))
    })

    it("reports truncated_frame when the input ends inside a header", () => {
      const error = failureOf(pushAll(LengthPrefixedFraming.makeDecoder(), [wire.subarray(0, 9 + 2)]))
      assert.strictEqual(error.reason, "truncated_frame")
      assert.strictEqual(error.length, 0)
      assert.strictEqual(error.received, 2)
    })

    it("reports truncated_frame when the input ends inside a payload", () => {
      const error = failureOf(pushAll(LengthPrefixedFraming.makeDecoder(), [wire.subarray(0, 9 + 5 + 4 + 3)]))
      assert.strictEqual(error.reason, "truncated_frame")
      assert.strictEqual(error.length, payloads[2].length)
      assert.strictEqual(error.received, 4 + 3)
    })

    it("reports truncated_frame at every cut inside the wire, and never at a frame boundary", () => {
      const boundaries = new Set([0])
      let offset = 0
      for (const payload of payloads) boundaries.add(offset += 4 + payload.length)
      for (let cut = 0; cut <= wire.length; cut++) {
        const decoded = pushAll(LengthPrefixedFraming.makeDecoder(), [wire.subarray(0, cut)])
        assert.strictEqual(Result.isSuccess(decoded), boundaries.has(cut), `cut at ${cut}`)
      }
    })

    it("stays failed after a failure: every later push and end returns the same error", () => {
      const decoder = LengthPrefixedFraming.makeDecoder({ maxFrameBytes: 4 })
      const error = failureOf(decoder.push(bytes(0, 0, 0, 5)))
      assert.strictEqual(failureOf(decoder.push(LengthPrefixedFraming.encodeFrame(text("ok")))), error)
      assert.strictEqual(failureOf(decoder.push(new Uint8Array(0))), error)
      assert.strictEqual(failureOf(decoder.end()), error)
      const truncated = LengthPrefixedFraming.makeDecoder()
      truncated.push(bytes(0, 0))
      const endError = failureOf(truncated.end())
      assert.strictEqual(failureOf(truncated.push(bytes(0, 1, 120))), endError)
    })

    it("keeps separate decoders independent", () => {
      const a = LengthPrefixedFraming.makeDecoder()
      const b = LengthPrefixedFraming.makeDecoder()
      a.push(wire.subarray(0, 6))
      assert.deepStrictEqual(pushAll(b, [wire]), Result.succeed(payloads))
      assert.deepStrictEqual(pushAll(a, [wire.subarray(6)]), Result.succeed(payloads))
    })

    it("throws a RangeError for an invalid maxFrameBytes", () => {
      for (const maxFrameBytes of [0, -1, 1.5, Number.NaN, 2 ** 32, Number.POSITIVE_INFINITY]) {
        assert.throws(() => LengthPrefixedFraming.makeDecoder({ maxFrameBytes }), RangeError)
      }
      assert.doesNotThrow(() => LengthPrefixedFraming.makeDecoder({ maxFrameBytes: 2 ** 32 - 1 }))
      assert.doesNotThrow(() => LengthPrefixedFraming.makeDecoder({ maxFrameBytes: undefined }))
    })

    it("round-trips any payload list under any chunking (property)", () => {
      const payload = fc.uint8Array({ minLength: 1, maxLength: 300 })
      fc.assert(
        fc.property(
          fc.array(payload, { maxLength: 20 }),
          fc.array(fc.nat(), { maxLength: 30 }),
          (list, cuts) => {
            const encoded = LengthPrefixedFraming.encodeFrames(list)
            const chunks = splitAt(encoded, cuts.map((cut) => cut % (encoded.length + 1)))
            const decoder = LengthPrefixedFraming.makeDecoder({ maxFrameBytes: 300 })
            assert.deepStrictEqual(pushAll(decoder, chunks), Result.succeed(list))
          }
        ),
        { numRuns: 500 }
      )
    })

    it("never throws on arbitrary bytes: only frames or a typed, sticky failure (property)", () => {
      fc.assert(
        fc.property(
          fc.uint8Array({ maxLength: 400 }),
          fc.array(fc.nat(), { maxLength: 10 }),
          fc.integer({ min: 1, max: 64 }),
          (input, cuts, maxFrameBytes) => {
            const decoder = LengthPrefixedFraming.makeDecoder({ maxFrameBytes })
            let failure: LengthPrefixedFraming.FramingError | undefined
            for (const chunk of splitAt(input, cuts.map((cut) => cut % (input.length + 1)))) {
              const pushed = decoder.push(chunk)
              if (failure !== undefined) assert.strictEqual(failureOf(pushed), failure)
              else if (Result.isFailure(pushed)) failure = pushed.failure
              else for (const frame of pushed.success) assert.isTrue(frame.length >= 1 && frame.length <= maxFrameBytes)
            }
            const ended = decoder.end()
            if (failure !== undefined) assert.strictEqual(failureOf(ended), failure)
            else if (Result.isFailure(ended)) failure = ended.failure
            if (failure !== undefined) {
              assert.instanceOf(failure, LengthPrefixedFraming.FramingError)
              assert.include(["empty_frame", "frame_too_large", "truncated_frame"], failure.reason)
            }
            // The outcome does not depend on how the input was chunked.
            assert.deepStrictEqual(
              pushAll(LengthPrefixedFraming.makeDecoder({ maxFrameBytes }), [input]),
              LengthPrefixedFraming.decodeAll(input, { maxFrameBytes }).pipe(Result.map(plain))
            )
          }
        ),
        { numRuns: 500 }
      )
    })
  })

  describe("decodeAll", () => {
    it("decodes a whole buffer", () => {
      assert.deepStrictEqual(Result.map(LengthPrefixedFraming.decodeAll(wire), plain), Result.succeed(payloads))
      assert.deepStrictEqual(LengthPrefixedFraming.decodeAll(new Uint8Array(0)), Result.succeed([]))
    })

    it("fails on leftover bytes or a bad length", () => {
      assert.strictEqual(failureOf(LengthPrefixedFraming.decodeAll(wire.subarray(0, 3))).reason, "truncated_frame")
      assert.strictEqual(
        failureOf(LengthPrefixedFraming.decodeAll(wire, { maxFrameBytes: 4 })).reason,
        "frame_too_large"
      )
    })
  })

  describe("decode", () => {
    it.effect("decodes a byte stream at every split point", () =>
      Effect.gen(function*() {
        for (let point = 0; point <= wire.length; point++) {
          const frames = yield* Stream.fromIterable(splitAt(wire, [point])).pipe(
            LengthPrefixedFraming.decode(),
            Stream.runCollect
          )
          assert.deepStrictEqual(plain(frames), payloads)
        }
      }))

    it.effect("decodes byte-at-a-time streams, and batches of several chunks", () =>
      Effect.gen(function*() {
        const oneByOne = Array.from(wire, (byte) => bytes(byte))
        assert.deepStrictEqual(
          plain(yield* Stream.fromIterable(oneByOne).pipe(LengthPrefixedFraming.decode(), Stream.runCollect)),
          payloads
        )
        const batched = Stream.fromIterable(oneByOne).pipe(Stream.rechunk(7))
        assert.deepStrictEqual(plain(yield* batched.pipe(LengthPrefixedFraming.decode(), Stream.runCollect)), payloads)
      }))

    it.effect("ends cleanly on an empty stream", () =>
      Effect.gen(function*() {
        assert.deepStrictEqual(yield* Stream.empty.pipe(LengthPrefixedFraming.decode(), Stream.runCollect), [])
      }))

    it.effect("fails with a typed FramingError for a too-large length, after the frames before it", () =>
      Effect.gen(function*() {
        const seen: Array<Uint8Array> = []
        const good = LengthPrefixedFraming.encodeFrames([text("one"), text("two")])
        const error = yield* Stream.make(good, bytes(0, 0, 0, 9, 1)).pipe(
          LengthPrefixedFraming.decode({ maxFrameBytes: 8 }),
          Stream.runForEach((frame) => Effect.sync(() => seen.push(Uint8Array.from(frame)))),
          Effect.flip
        )
        assert.strictEqual(error._tag, "FramingError")
        assert.strictEqual(error.reason, "frame_too_large")
        assert.deepStrictEqual(seen, [text("one"), text("two")])
      }))

    it.effect("fails with empty_frame for a zero length", () =>
      Effect.gen(function*() {
        const error = yield* Stream.make(bytes(0, 0, 0, 0)).pipe(
          LengthPrefixedFraming.decode(),
          Stream.runCollect,
          Effect.flip
        )
        assert.strictEqual(error.reason, "empty_frame")
      }))

    it.effect("fails with truncated_frame when the stream ends inside a frame", () =>
      Effect.gen(function*() {
        const error = yield* Stream.make(wire.subarray(0, 12)).pipe(
          LengthPrefixedFraming.decode(),
          Stream.runCollect,
          Effect.flip
        )
        assert.deepStrictEqual(
          error,
          new LengthPrefixedFraming.FramingError({ reason: "truncated_frame", length: 1, received: 3 })
        )
      }))

    it.effect("passes upstream failures through unchanged", () =>
      Effect.gen(function*() {
        const error = yield* Stream.make(wire.subarray(0, 5)).pipe(
          Stream.concat(Stream.fail("socket reset" as const)),
          LengthPrefixedFraming.decode(),
          Stream.runCollect,
          Effect.flip
        )
        assert.strictEqual(error, "socket reset")
      }))

    it.effect("round-trips through encode under random chunkings (property)", () =>
      Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(
            fc.array(fc.uint8Array({ minLength: 1, maxLength: 100 }), { maxLength: 10 }),
            fc.array(fc.nat(), { maxLength: 10 }),
            (list, cuts) =>
              Effect.runPromise(Effect.gen(function*() {
                const framed = yield* Stream.fromIterable(list).pipe(LengthPrefixedFraming.encode(), Stream.runCollect)
                const encoded = concat(framed)
                const chunks = splitAt(encoded, cuts.map((cut) => cut % (encoded.length + 1)))
                const decoded = yield* Stream.fromIterable(chunks).pipe(
                  LengthPrefixedFraming.decode(),
                  Stream.runCollect
                )
                assert.deepStrictEqual(plain(decoded), list)
              }))
          ),
          { numRuns: 200 }
        )
      ))
  })

  describe("encode", () => {
    it.effect("frames each payload, one buffer per upstream batch", () =>
      Effect.gen(function*() {
        const out = yield* Stream.fromIterable(payloads).pipe(LengthPrefixedFraming.encode(), Stream.runCollect)
        assert.strictEqual(out.length, 1)
        assert.deepStrictEqual(out[0], wire)
        const rechunked = yield* Stream.fromIterable(payloads).pipe(
          Stream.rechunk(1),
          LengthPrefixedFraming.encode(),
          Stream.runCollect
        )
        assert.strictEqual(rechunked.length, payloads.length)
        assert.deepStrictEqual(concat(rechunked), wire)
      }))

    it.effect("fails with empty_frame for an empty payload", () =>
      Effect.gen(function*() {
        const error = yield* Stream.make(text("a"), new Uint8Array(0)).pipe(
          LengthPrefixedFraming.encode(),
          Stream.runCollect,
          Effect.flip
        )
        assert.deepStrictEqual(error, new LengthPrefixedFraming.FramingError({ reason: "empty_frame", length: 0 }))
      }))

    it.effect("fails with frame_too_large for a payload over the limit, and accepts one at the limit", () =>
      Effect.gen(function*() {
        const atLimit = yield* Stream.make(new Uint8Array(8)).pipe(
          LengthPrefixedFraming.encode({ maxFrameBytes: 8 }),
          Stream.runCollect
        )
        assert.strictEqual(atLimit[0].length, 12)
        const error = yield* Stream.make(new Uint8Array(9)).pipe(
          LengthPrefixedFraming.encode({ maxFrameBytes: 8 }),
          Stream.runCollect,
          Effect.flip
        )
        assert.deepStrictEqual(error, new LengthPrefixedFraming.FramingError({ reason: "frame_too_large", length: 9 }))
      }))
  })
})

/**
 * Length-prefixed frames: limits, the framing error, a header schema, a pure incremental decoder, encoders and
 * stream adapters. Pure: bytes in, frames out; nothing here touches a socket or knows what a payload means.
 *
 *   +--------------------------+---------------------------------+
 *   | length: uint32 BE (4 B)  | payload: `length` bytes         |
 *   +--------------------------+---------------------------------+
 *
 * `length` counts payload bytes only and must satisfy `1 <= length <= maxFrameBytes`.
 */
import { Cause, Effect, Pull, Result, Schema, SchemaIssue, SchemaTransformation, Stream } from "effect"
import type { NonEmptyReadonlyArray } from "effect/Array"

/**
 * Size of the length header in bytes.
 *
 * @category constants
 */
export const headerBytes = 4

/**
 * Default largest accepted payload, in bytes (64 KiB).
 *
 * @category constants
 */
export const defaultMaxFrameBytes = 64 * 1024

// The largest length a u32 header can state, hence the largest allowed `maxFrameBytes`.
const maxU32 = 0xffff_ffff

/**
 * Framing options. `maxFrameBytes` defaults to {@link defaultMaxFrameBytes} and must be an integer in
 * `[1, 2^32 - 1]` (anything else is a defect: a `RangeError` thrown when the decoder or adapter is built).
 *
 * @category models
 */
export interface Options {
  readonly maxFrameBytes?: number | undefined
}

/**
 * Why a byte stream is not a valid sequence of frames. `empty_frame` and `frame_too_large` double as the chat
 * wire codes; `truncated_frame` means the input ended inside a frame (header or payload), so there is nobody
 * left to tell.
 *
 * @category schemas
 */
export const FramingReason = Schema.Literals(["empty_frame", "frame_too_large", "truncated_frame"])

/**
 * @category models
 */
export type FramingReason = typeof FramingReason.Type

/**
 * A byte stream broke the framing rules. `length` is the payload length the header declared (0 when a
 * `truncated_frame` ended inside the header itself); `received` is set for `truncated_frame` only and counts the
 * bytes of the unfinished frame that arrived, header included.
 *
 * @category errors
 */
export class FramingError extends Schema.TaggedError<FramingError>()("FramingError", {
  reason: FramingReason,
  length: Schema.Number,
  received: Schema.optionalKey(Schema.Number)
}) {
  override get message(): string {
    switch (this.reason) {
      case "empty_frame":
        return "frame length 0 is below the minimum of 1"
      case "frame_too_large":
        return `frame length ${this.length} exceeds maxFrameBytes`
      case "truncated_frame":
        return (this.received ?? 0) < headerBytes
          ? `input ended inside a frame header (${this.received ?? 0} of ${headerBytes} bytes)`
          : `input ended inside a frame (${this.received ?? 0} of ${headerBytes + this.length} bytes)`
    }
  }
}

// Bad options are a programming error, hence a throw rather than a typed failure.
const resolveMaxFrameBytes = (options?: Options | undefined): number => {
  const max = options?.maxFrameBytes ?? defaultMaxFrameBytes
  if (!Number.isInteger(max) || max < 1 || max > maxU32) {
    throw new RangeError(`maxFrameBytes must be an integer in [1, ${maxU32}], got ${max}`)
  }
  return max
}

// The length rule shared by the decoder and `encode`; `FrameLength` states the same rule as a schema.
const checkLength = (length: number, maxFrameBytes: number): FramingError | undefined =>
  length === 0
    ? new FramingError({ reason: "empty_frame", length })
    : length > maxFrameBytes
    ? new FramingError({ reason: "frame_too_large", length })
    : undefined

const readU32 = (bytes: Uint8Array, offset: number): number =>
  ((bytes[offset] << 24) | (bytes[offset + 1] << 16) | (bytes[offset + 2] << 8) | bytes[offset + 3]) >>> 0

const writeU32 = (bytes: Uint8Array, offset: number, value: number): void => {
  bytes[offset] = value >>> 24
  bytes[offset + 1] = value >>> 16
  bytes[offset + 2] = value >>> 8
  bytes[offset + 3] = value
}

/**
 * The 4 header bytes <-> the payload length they declare, limited to `[1, maxFrameBytes]`. The decoder applies
 * the same rule without going through the schema, so that it stays allocation-free on the hot path.
 *
 * @category schemas
 */
export const FrameLength = (maxFrameBytes: number = defaultMaxFrameBytes) => {
  const max = resolveMaxFrameBytes({ maxFrameBytes })
  return Schema.Uint8Array.pipe(Schema.decodeTo(
    Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: max })),
    SchemaTransformation.transformEffect<number, Uint8Array>({
      decode: (bytes, options) =>
        bytes.length === headerBytes
          ? Effect.succeed(readU32(bytes, 0))
          : Effect.fail(
            new SchemaIssue.InvalidValue(
              { message: `Expected ${headerBytes} header bytes, got ${bytes.length}` },
              bytes,
              options
            )
          ),
      encode: (length) => {
        const bytes = new Uint8Array(headerBytes)
        writeU32(bytes, 0, length)
        return Effect.succeed(bytes)
      }
    })
  ))
}

/**
 * An incremental frame decoder: push chunks as they arrive, get the frames they complete.
 *
 * - `push` returns every frame completed by the chunk (possibly none), in order. When the chunk completes some
 *   frames and then breaks a rule, `push` fails and those frames are dropped; `pushInto` keeps them.
 * - `pushInto` is the allocation-free form: it appends completed frames to `frames`, including those completed
 *   before a failure, and returns the failure, if any.
 * - A frame that lies entirely inside one chunk is returned as a view of that chunk (no copy): the caller must not
 *   mutate a pushed chunk afterwards, and should `slice()` a frame it keeps for long, since the view keeps the
 *   whole chunk alive. A frame spread over several chunks is copied once into a buffer of its declared length.
 * - The length is checked as soon as the 4 header bytes are in, before anything is allocated for the payload.
 * - After a failure every call returns the same failure.
 * - `end` reports a `truncated_frame` when the input stopped inside a frame.
 *
 * @category models
 */
export interface Decoder {
  readonly push: (chunk: Uint8Array) => Result.Result<ReadonlyArray<Uint8Array>, FramingError>
  readonly pushInto: (chunk: Uint8Array, frames: Array<Uint8Array>) => FramingError | undefined
  readonly end: () => Result.Result<void, FramingError>
}

const noFrames: ReadonlyArray<Uint8Array> = Object.freeze([])

interface DecoderState {
  readonly feed: (chunk: Uint8Array, out: Array<Uint8Array>) => FramingError | undefined
  readonly end: () => FramingError | undefined
}

const makeDecoderState = (maxFrameBytes: number): DecoderState => {
  let failure: FramingError | undefined = undefined
  // A header split across chunks is gathered here; a header inside one chunk is read in place.
  const header = new Uint8Array(headerBytes)
  let headerFill = 0
  // The frame being assembled from several chunks, allocated once its length was validated.
  let frame: Uint8Array | undefined = undefined
  let frameFill = 0

  const feed = (chunk: Uint8Array, out: Array<Uint8Array>): FramingError | undefined => {
    if (failure !== undefined) return failure
    const size = chunk.length
    let offset = 0
    while (offset < size) {
      if (frame !== undefined) {
        const take = Math.min(frame.length - frameFill, size - offset)
        frame.set(chunk.subarray(offset, offset + take), frameFill)
        frameFill += take
        offset += take
        if (frameFill === frame.length) {
          out.push(frame)
          frame = undefined
          frameFill = 0
        }
        continue
      }
      let length: number
      if (headerFill === 0 && size - offset >= headerBytes) {
        length = readU32(chunk, offset)
        offset += headerBytes
      } else {
        while (headerFill < headerBytes && offset < size) header[headerFill++] = chunk[offset++]
        if (headerFill < headerBytes) break
        headerFill = 0
        length = readU32(header, 0)
      }
      const error = checkLength(length, maxFrameBytes)
      if (error !== undefined) {
        failure = error
        return error
      }
      if (size - offset >= length) {
        // A plain Uint8Array view even when the chunk is a Buffer, so every frame has the same shape.
        out.push(new Uint8Array(chunk.buffer, chunk.byteOffset + offset, length))
        offset += length
      } else {
        frame = new Uint8Array(length)
        frameFill = 0
      }
    }
    return undefined
  }

  const end = (): FramingError | undefined => {
    if (failure !== undefined) return failure
    if (headerFill > 0) {
      failure = new FramingError({ reason: "truncated_frame", length: 0, received: headerFill })
    } else if (frame !== undefined) {
      failure = new FramingError({ reason: "truncated_frame", length: frame.length, received: headerBytes + frameFill })
    }
    return failure
  }

  return { feed, end }
}

/**
 * Creates a fresh {@link Decoder}. Throws a `RangeError` for an invalid `maxFrameBytes`.
 *
 * @category constructors
 */
export const makeDecoder = (options?: Options | undefined): Decoder => {
  const state = makeDecoderState(resolveMaxFrameBytes(options))
  return {
    push: (chunk) => {
      const out: Array<Uint8Array> = []
      const error = state.feed(chunk, out)
      return error !== undefined ? Result.fail(error) : Result.succeed(out.length === 0 ? noFrames : out)
    },
    pushInto: state.feed,
    end: () => {
      const error = state.end()
      return error !== undefined ? Result.fail(error) : Result.void
    }
  }
}

/**
 * Decodes a complete byte buffer (all of a stream) into its frames; leftover bytes are a `truncated_frame`.
 * Frames are views of `bytes`.
 *
 * @category decoding
 */
export const decodeAll = (
  bytes: Uint8Array,
  options?: Options | undefined
): Result.Result<ReadonlyArray<Uint8Array>, FramingError> => {
  const state = makeDecoderState(resolveMaxFrameBytes(options))
  const out: Array<Uint8Array> = []
  const error = state.feed(bytes, out) ?? state.end()
  return error !== undefined ? Result.fail(error) : Result.succeed(out)
}

const frameSize = (payload: Uint8Array): number => {
  if (payload.length > maxU32) throw new RangeError(`payload of ${payload.length} bytes does not fit a u32 header`)
  return headerBytes + payload.length
}

/**
 * Encodes one payload as one frame: header and payload in a single new buffer. It applies no limit (see
 * {@link encode} for a checked stream); an empty payload makes a frame the peer will reject.
 *
 * @category encoding
 */
export const encodeFrame = (payload: Uint8Array): Uint8Array => {
  const out = new Uint8Array(frameSize(payload))
  writeU32(out, 0, payload.length)
  out.set(payload, headerBytes)
  return out
}

/**
 * Encodes many payloads into one buffer of consecutive frames, so a batch costs one write (write coalescing).
 *
 * @category encoding
 */
export const encodeFrames = (payloads: ReadonlyArray<Uint8Array>): Uint8Array => {
  let total = 0
  for (let i = 0; i < payloads.length; i++) total += frameSize(payloads[i])
  const out = new Uint8Array(total)
  let offset = 0
  for (let i = 0; i < payloads.length; i++) {
    const payload = payloads[i]
    writeU32(out, offset, payload.length)
    out.set(payload, offset + headerBytes)
    offset += headerBytes + payload.length
  }
  return out
}

/**
 * Stream adapter: raw bytes in, frame payloads out. Fails with a {@link FramingError} on a bad length (after
 * emitting the frames that came before it), or with a `truncated_frame` when the input ends inside a frame. Each
 * upstream batch is decoded in one synchronous loop. Frames may be views of the input chunks (see {@link Decoder}).
 *
 * @category decoding
 */
export const decode = (options?: Options | undefined) => {
  const maxFrameBytes = resolveMaxFrameBytes(options)
  return <E, R>(bytes: Stream.Stream<Uint8Array, E, R>): Stream.Stream<Uint8Array, E | FramingError, R> =>
    Stream.transformPull(bytes, (upstream) =>
      Effect.sync(() => {
        type Frames = NonEmptyReadonlyArray<Uint8Array>
        const state = makeDecoderState(maxFrameBytes)
        // Set once the decoder failed or upstream ended: from then on `state.end()` tells how the stream ends.
        let finished = false
        const finish = (): Effect.Effect<never, FramingError | Cause.Done> => {
          finished = true
          const error = state.end()
          return error !== undefined ? Effect.fail(error) : Cause.done()
        }
        const decodeBatch = (chunks: Frames): Pull.Pull<Frames, E | FramingError, void> => {
          const out: Array<Uint8Array> = []
          for (let i = 0; i < chunks.length; i++) {
            if (state.feed(chunks[i], out) !== undefined) {
              if (out.length === 0) return finish()
              // Frames before the bad header are valid and were sent first: deliver them, fail on the next pull.
              finished = true
              return Effect.succeed(out as unknown as Frames)
            }
          }
          // No complete frame yet: keep pulling instead of emitting an empty batch.
          return out.length > 0 ? Effect.succeed(out as unknown as Frames) : pull
        }
        const pull: Pull.Pull<Frames, E | FramingError, void> = Effect.suspend(() =>
          finished ? finish() : Pull.matchEffect(upstream, {
            onSuccess: decodeBatch,
            onFailure: Effect.failCause,
            onDone: finish
          })
        )
        return pull
      }))
}

/**
 * Stream adapter, the mirror of {@link decode}: payloads in, framed bytes out, one buffer per upstream batch
 * (write coalescing). A payload that is empty or longer than `maxFrameBytes` fails the stream with a
 * {@link FramingError} instead of producing a frame the peer would reject.
 *
 * @category encoding
 */
export const encode = (options?: Options | undefined) => {
  const maxFrameBytes = resolveMaxFrameBytes(options)
  return <E, R>(payloads: Stream.Stream<Uint8Array, E, R>): Stream.Stream<Uint8Array, E | FramingError, R> =>
    Stream.mapArrayEffect(payloads, (batch) => {
      for (let i = 0; i < batch.length; i++) {
        const error = checkLength(batch[i].length, maxFrameBytes)
        if (error !== undefined) return Effect.fail(error)
      }
      return Effect.succeed([encodeFrames(batch)] as const)
    })
}

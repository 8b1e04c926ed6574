import { assert, describe, it } from "@effect/vitest"
import { Result, Schema } from "effect"
import * as fc from "fast-check"
import * as RequestHead from "../../../src/protocol/http/RequestHead.ts"
import * as ResponseHead from "../../../src/protocol/http/ResponseHead.ts"
import { bytes, latin1, parseChunks } from "./support.ts"

const encode = (head: ResponseHead.ResponseHeadInput): string =>
  latin1(Result.getOrThrow(ResponseHead.encodeResponseHead(head)))

const failure = (head: ResponseHead.ResponseHeadInput): ResponseHead.HttpEncodeError => {
  const result = ResponseHead.encodeResponseHead(head)
  assert.isTrue(Result.isFailure(result))
  return (result as Result.Failure<Uint8Array, ResponseHead.HttpEncodeError>).failure
}

describe("ResponseHead", () => {
  describe("encodeResponseHead", () => {
    it("writes the status line with the registered reason phrase, headers in order, and the empty line", () => {
      assert.strictEqual(
        encode({ status: 200, headers: [["Content-Type", "text/plain"], ["Content-Length", "5"], ["X-A", ""]] }),
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nX-A: \r\n\r\n"
      )
      assert.strictEqual(encode({ status: 404 }), "HTTP/1.1 404 Not Found\r\n\r\n")
      assert.strictEqual(encode({ status: 404 }), "HTTP/1.1 404 Not Found\r\n\r\n")
    })

    it("takes a custom reason phrase and version; an unregistered status gets an empty phrase", () => {
      assert.strictEqual(encode({ status: 200, reason: "Fine", version: "HTTP/1.0" }), "HTTP/1.0 200 Fine\r\n\r\n")
      assert.strictEqual(encode({ status: 299 }), "HTTP/1.1 299 \r\n\r\n")
      assert.strictEqual(encode({ status: 500, reason: "" }), "HTTP/1.1 500 \r\n\r\n")
    })

    it("keeps latin1 values byte for byte", () => {
      const out = Result.getOrThrow(ResponseHead.encodeResponseHead({ status: 200, headers: [["X", "caf\xe9"]] }))
      assert.deepStrictEqual([...out.subarray(out.length - 6, out.length - 3)], [0x66, 0xe9, 0x0d])
    })

    it("refuses status codes outside 100-599", () => {
      for (const status of [99, 600, 200.5, Number.NaN]) assert.strictEqual(failure({ status }).reason, "InvalidStatus")
    })

    it("refuses header injection: CR, LF, NUL, control characters, bad names", () => {
      const secret = "evil-value"
      const values = [`a\r\nSet-Cookie: ${secret}`, `a\n${secret}`, `a\r${secret}`, `a\x00${secret}`, `\x1b${secret}`]
      for (const value of values) {
        const error = failure({ status: 200, headers: [["X-Ok", "1"], ["X-Bad", value]] })
        assert.strictEqual(error.reason, "InvalidHeaderValue")
        assert.include(error.message, "#1 (X-Bad)")
        assert.notInclude(error.message, secret)
      }
      for (const value of [" leading", "trailing\t", "\u20ac"]) {
        assert.strictEqual(failure({ status: 200, headers: [["X", value]] }).reason, "InvalidHeaderValue")
      }
      for (const name of ["", "X Y", "X:Y", "X\r\nY", "Caf\xe9", "X\n"]) {
        const error = failure({ status: 200, headers: [[name, "v"]] })
        assert.strictEqual(error.reason, "InvalidHeaderName")
        assert.notInclude(error.message, name.length > 0 ? name : "\u0000")
      }
      assert.strictEqual(failure({ status: 200, reason: "OK\r\nX: y" }).reason, "InvalidReasonPhrase")
    })

    it("the Unsafe twin throws the typed error", () => {
      assert.throws(() => ResponseHead.encodeResponseHeadUnsafe({ status: 200, headers: [["X", "a\nb"]] }))
      const noContent = ResponseHead.encodeResponseHeadUnsafe({ status: 204 })
      assert.strictEqual(latin1(noContent), "HTTP/1.1 204 No Content\r\n\r\n")
    })

    it("agrees with the Schema: encoded bytes decode to the same head", () => {
      const head = fc.record({
        version: fc.constantFrom("HTTP/1.0" as const, "HTTP/1.1" as const),
        status: fc.integer({ min: 100, max: 599 }),
        reason: fc.string({ unit: fc.constantFrom(..."OK Not\tFound-é"), maxLength: 12 }),
        headers: fc.array(
          fc.tuple(
            fc.stringMatching(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, { size: "small" }),
            fc.stringMatching(/^(?:[\x21-\x7e\x80-\xff](?:[\t\x20-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?)?$/, {
              size: "small"
            })
          ),
          { maxLength: 6 }
        )
      })
      fc.assert(
        fc.property(head, (h) => {
          assert.isTrue(Schema.is(ResponseHead.HttpResponseHead)(h))
          const text = encode(h)
          assert.strictEqual(text, ResponseHead.formatResponseHead(h))
          assert.deepStrictEqual(Schema.decodeSync(ResponseHead.HttpResponseHeadFromString)(text), h)
          assert.strictEqual(Schema.encodeSync(ResponseHead.HttpResponseHeadFromString)(h), text)
        }),
        { numRuns: 500 }
      )
    })
  })

  describe("reasonPhrases", () => {
    it("covers the common codes and are valid reason phrases", () => {
      assert.strictEqual(ResponseHead.reasonPhrase(200), "OK")
      assert.strictEqual(ResponseHead.reasonPhrase(413), "Content Too Large")
      assert.strictEqual(ResponseHead.reasonPhrase(431), "Request Header Fields Too Large")
      assert.strictEqual(ResponseHead.reasonPhrase(505), "HTTP Version Not Supported")
      assert.strictEqual(ResponseHead.reasonPhrase(799), "")
      for (const phrase of Object.values(ResponseHead.reasonPhrases)) {
        assert.isTrue(Schema.is(ResponseHead.ReasonPhrase)(phrase))
      }
    })
  })

  describe("HttpResponseHeadFromString", () => {
    it("decodes a status line with spaces in the reason phrase and keeps header case", () => {
      assert.deepStrictEqual(
        Schema.decodeSync(ResponseHead.HttpResponseHeadFromString)("HTTP/1.1 404 Not Found\r\nX-A:  1 \r\n\r\n"),
        { version: "HTTP/1.1", status: 404, reason: "Not Found", headers: [["X-A", "1"]] }
      )
    })

    it("refuses malformed status lines", () => {
      const refused = ["HTTP/1.1 20 OK", "HTTP/1.1 200", "HTTP/2 200 OK", "HTTP/1.1 099 x"].map((l) => `${l}\r\n\r\n`)
      for (const text of refused) {
        assert.isTrue(Result.isFailure(Schema.decodeUnknownResult(ResponseHead.HttpResponseHeadFromString)(text)))
      }
    })
  })

  describe("chunked encoding", () => {
    it("frames a chunk as hex size CRLF data CRLF", () => {
      assert.strictEqual(latin1(ResponseHead.encodeChunk(bytes("hello"))), "5\r\nhello\r\n")
      assert.strictEqual(latin1(ResponseHead.encodeChunk(new Uint8Array(255))).slice(0, 4), "ff\r\n")
      assert.strictEqual(latin1(ResponseHead.encodeChunkHeader(26)), "1a\r\n")
      assert.strictEqual(latin1(ResponseHead.crlf), "\r\n")
    })

    it("never frames empty data, which would end the body", () => {
      assert.strictEqual(ResponseHead.encodeChunk(new Uint8Array(0)).length, 0)
      assert.throws(() => ResponseHead.encodeChunkHeader(0), RangeError)
      assert.throws(() => ResponseHead.encodeChunkHeader(-1), RangeError)
    })

    it("ends the body with the last chunk, with validated trailers", () => {
      assert.strictEqual(latin1(ResponseHead.lastChunk), "0\r\n\r\n")
      assert.strictEqual(latin1(Result.getOrThrow(ResponseHead.encodeLastChunk())), "0\r\n\r\n")
      assert.strictEqual(
        latin1(Result.getOrThrow(ResponseHead.encodeLastChunk([["X-Sum", "abc"]]))),
        "0\r\nX-Sum: abc\r\n\r\n"
      )
      assert.isTrue(Result.isFailure(ResponseHead.encodeLastChunk([["X-Sum", "a\r\nb"]])))
    })

    it("chunks written by the encoder are read back by the parser", () => {
      fc.assert(
        fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 6 }), (pieces) => {
          const head = RequestHead.encodeRequestHead({
            method: "POST",
            target: "/",
            version: "HTTP/1.1",
            headers: [["host", "h"], ["transfer-encoding", "chunked"]]
          })
          const wire = [
            head,
            ...pieces.map(ResponseHead.encodeChunk),
            Result.getOrThrow(ResponseHead.encodeLastChunk([["x-n", String(pieces.length)]]))
          ]
          const outcome = parseChunks(wire)
          assert.isUndefined(outcome.error)
          assert.strictEqual(outcome.messages.length, 1)
          assert.strictEqual(outcome.messages[0].body, pieces.map(latin1).join(""))
          assert.deepStrictEqual(outcome.messages[0].trailers, [["x-n", String(pieces.length)]])
        }),
        { numRuns: 300 }
      )
    })
  })
})

import { assert, describe, it } from "@effect/vitest"
import { Result, Schema } from "effect"
import type { SchemaAST } from "effect"
import * as fc from "fast-check"
import * as Http1Parser from "../../../src/protocol/http/Http1Parser.ts"
import * as Grammar from "../../../src/protocol/http/internal/grammar.ts"
import * as RequestHead from "../../../src/protocol/http/RequestHead.ts"
import { accepted } from "../../fixtures/http/requestCases.ts"
import { bytes, parseChunks } from "./support.ts"

/** The RegExp of a Schema's `isPattern` check: generators follow the Schema's own grammar. */
const patternOf = (schema: { readonly ast: SchemaAST.AST }): RegExp => {
  for (const check of schema.ast.checks ?? []) {
    const representation = check.annotations?.representation as
      | { readonly id: string; readonly payload: { readonly source: string; readonly flags: string } }
      | undefined
    if (representation?.id === "effect/schema/isPattern") {
      return new RegExp(representation.payload.source, representation.payload.flags)
    }
  }
  throw new Error("no isPattern check")
}

const decodeText = Schema.decodeUnknownResult(RequestHead.HttpRequestHeadFromString)
const encodeText = Schema.encodeSync(RequestHead.HttpRequestHeadFromString)

/** The first head the incremental parser produces for `text`, or its error reason. */
const parseFirst = (text: string): RequestHead.HttpRequestHead | Http1Parser.HttpParseReason | undefined => {
  for (const event of Http1Parser.makeRequestParser().push(bytes(text))) {
    if (event._tag === "Head") return event.head
    if (event._tag === "Error") return event.error.reason
  }
  return undefined
}

// A character alphabet weighted towards the characters the grammar cares about
const grammarChar = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(..."aZ09-._~!$&'()*+,;=:@/?#[]%\"<>\\^`{|} \t") },
  { weight: 2, arbitrary: fc.constantFrom(..."0123456789abcdefABCDEF") },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 0x17f }).map((c) => String.fromCharCode(c)) }
)
const grammarString = fc.string({ unit: grammarChar, maxLength: 24 })

describe("RequestHead", () => {
  describe("schemas", () => {
    it("Method: any token", () => {
      const is = Schema.is(RequestHead.Method)
      for (const ok of ["GET", "M-SEARCH", "x", "!#$%&'*+-.^_`|~09azAZ"]) assert.isTrue(is(ok))
      for (const bad of ["", "GE T", "GET(", "GÉT", "a:b"]) assert.isFalse(is(bad))
    })

    it("RequestTarget: the four forms", () => {
      const is = Schema.is(RequestHead.RequestTarget)
      for (const ok of ["/", "/a?b=c", "http://h/x", "urn:x", "h:80", "[::1]:443", "*"]) assert.isTrue(is(ok), ok)
      for (const bad of ["", "a b", "/a b", "h", "/\x7f", "/é", "**"]) assert.isFalse(is(bad), bad)
      assert.isTrue(Schema.is(RequestHead.AuthorityForm)("example.com:65535"))
      assert.isFalse(Schema.is(RequestHead.AuthorityForm)("example.com:65536"))
      assert.isFalse(Schema.is(RequestHead.AuthorityForm)(":80"))
    })

    it("HeaderValue: no control characters, no surrounding whitespace, latin1", () => {
      const is = Schema.is(RequestHead.HeaderValue)
      for (const ok of ["", "a", "a b", "a\tb", "caf\xe9", "x".repeat(1000)]) assert.isTrue(is(ok))
      for (const bad of [" a", "a ", "\ta", "a\r\nb", "a\nb", "a\x00", "a\x7f", "\u20ac"]) assert.isFalse(is(bad))
    })

    it("Host: uri-host [ \":\" port ], possibly empty", () => {
      const is = Schema.is(RequestHead.Host)
      for (const ok of ["", "a", "a.b:80", "a:", "[::1]", "[v1.x]:1", "a%20b", "1.2.3.4:5"]) assert.isTrue(is(ok), ok)
      for (const bad of ["a b", "a/b", "u@a", "a:b", "[::1", "a%2", "a:1:2", "a,b c"]) assert.isFalse(is(bad), bad)
    })

    it("HttpVersion: HTTP/1.0 and HTTP/1.1 only", () => {
      assert.deepStrictEqual(RequestHead.HttpVersion.literals, ["HTTP/1.0", "HTTP/1.1"])
    })

    it("HttpRequestHead refuses derived fields that disagree with the header fields", () => {
      const head = Schema.decodeSync(RequestHead.HttpRequestHeadFromString)(
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n"
      )
      assert.isTrue(Schema.is(RequestHead.HttpRequestHead)(head))
      assert.isFalse(Schema.is(RequestHead.HttpRequestHead)({ ...head, framing: { _tag: "None" } }))
      assert.isFalse(Schema.is(RequestHead.HttpRequestHead)({ ...head, keepAlive: false }))
      assert.isFalse(Schema.is(RequestHead.HttpRequestHead)({ ...head, method: "CONNECT" }))
    })

    it("getHeader finds the first value by lowercase name", () => {
      const headers = [["a", "1"], ["b", "2"], ["a", "3"]] as const
      assert.strictEqual(RequestHead.getHeader(headers, "a"), "1")
      assert.isUndefined(RequestHead.getHeader(headers, "c"))
    })
  })

  describe("grammar: hand-written checks agree with the Schemas", () => {
    const agree = (name: string, check: (s: string) => boolean, schema: Schema.Top & { readonly Type: string }) =>
      it(name, () => {
        const is = Schema.is(schema)
        fc.assert(fc.property(grammarString, (s) => check(s) === is(s)), { numRuns: 3000 })
      })
    agree("token", Grammar.isToken, RequestHead.Method)
    agree("field value", Grammar.isFieldValue, RequestHead.HeaderValue)
    agree("host", Grammar.isHost, RequestHead.Host)
    agree("origin-form", Grammar.isOriginForm, RequestHead.OriginForm)
    agree("absolute-form", Grammar.isAbsoluteForm, RequestHead.AbsoluteForm)
    agree("authority-form", Grammar.isAuthorityForm, RequestHead.AuthorityForm)

    it("the generators built from the Schema patterns produce valid values", () => {
      fc.assert(
        fc.property(fc.stringMatching(patternOf(RequestHead.HeaderValue)), (s) => Grammar.isFieldValue(s)),
        { numRuns: 500 }
      )
    })
  })

  describe("HttpRequestHeadFromString", () => {
    it("decodes a head and derives its semantics", () => {
      const head = Schema.decodeSync(RequestHead.HttpRequestHeadFromString)(
        "PUT /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
      )
      assert.deepStrictEqual(head, {
        method: "PUT",
        target: "/x",
        version: "HTTP/1.1",
        headers: [["host", "h"], ["transfer-encoding", "chunked"], ["expect", "100-continue"], [
          "connection",
          "close"
        ]],
        framing: { _tag: "Chunked" },
        keepAlive: false,
        expectContinue: true,
        upgrade: false
      })
    })

    it("refuses what the parser refuses, with the parser's message", () => {
      const result = decodeText("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
      assert.isTrue(Result.isFailure(result))
      if (Result.isFailure(result)) assert.include(result.failure.message, "more than one Host")
      const refused = ["GET / HTTP/1.1\r\n", "GET /\r\n\r\n", "GET / HTTP/1.1\nHost: a\n\n", "GET / HTTP/1.1\r\n\r\n"]
      for (const text of refused) {
        assert.isTrue(Result.isFailure(decodeText(text)), JSON.stringify(text))
      }
    })

    it("encodes the wire fields", () => {
      const text = "OPTIONS * HTTP/1.0\r\nx-a: 1\r\nx-b: \r\n\r\n"
      assert.strictEqual(encodeText(Schema.decodeSync(RequestHead.HttpRequestHeadFromString)(text)), text)
      assert.strictEqual(
        new TextDecoder("latin1").decode(RequestHead.encodeRequestHead({
          method: "GET",
          target: "/",
          version: "HTTP/1.1",
          headers: [["host", "h"]]
        })),
        "GET / HTTP/1.1\r\nhost: h\r\n\r\n"
      )
    })
  })

  describe("the parser and the Schemas agree", () => {
    it("every parsed fixture head is a valid HttpRequestHead", () => {
      for (const c of accepted) {
        for (const message of parseChunks([bytes(c.raw)]).messages) {
          assert.isTrue(Schema.is(RequestHead.HttpRequestHead)(message.head), c.rule)
        }
      }
    })

    // Heads generated from the Schemas' own patterns, with the framing headers the rules talk about
    const token = fc.stringMatching(patternOf(RequestHead.LowercaseHeaderName), { size: "small" })
    const value = fc.stringMatching(patternOf(RequestHead.HeaderValue), { size: "small" })
    const method = fc.oneof(
      fc.constantFrom("GET", "POST", "PUT", "OPTIONS", "CONNECT", "DELETE"),
      fc.stringMatching(patternOf(RequestHead.Method), { size: "small" })
    )
    const host = fc.oneof(
      fc.constantFrom("example.com", "[::1]:8080", "a:1", ""),
      fc.stringMatching(patternOf(RequestHead.Host), { size: "small" })
    )
    const target = fc.oneof(
      fc.stringMatching(patternOf(RequestHead.OriginForm), { size: "small" }),
      fc.stringMatching(patternOf(RequestHead.AbsoluteForm), { size: "small" }),
      fc.constantFrom("*", "example.com:443", "[::1]:80")
    )
    const framingField = fc.oneof(
      fc.constant<ReadonlyArray<readonly [string, string]>>([]),
      fc.constantFrom("0", "12", "5, 5", "5, 6", "1e1").map((v) => [["content-length", v] as const]),
      fc.constantFrom("chunked", "gzip, chunked", "chunked, gzip").map((v) => [["transfer-encoding", v] as const]),
      fc.constantFrom("close", "keep-alive", "upgrade").map((v) => [["connection", v] as const]),
      fc.constant([["expect", "100-continue"] as const])
    )
    const fields = fc.record({
      method,
      target,
      version: fc.constantFrom("HTTP/1.0" as const, "HTTP/1.1" as const),
      host: fc.option(host, { nil: undefined }),
      framing: framingField,
      extra: fc.array(fc.tuple(token, value), { maxLength: 6 })
    }).map(({ extra, framing, host, method, target, version }): RequestHead.RequestHeadFields => ({
      method,
      target,
      version,
      headers: [...(host === undefined ? [] : [["host", host] as const]), ...extra, ...framing]
    }))

    it("round trip: format a generated head, parse it, decode it with the Schema: same head", () => {
      let valid = 0
      fc.assert(
        fc.property(fields, (wire) => {
          const text = RequestHead.formatRequestHead(wire)
          const decoded = decodeText(text)
          const parsed = parseFirst(text)
          if (Result.isSuccess(decoded)) {
            valid++
            assert.deepStrictEqual(parsed, decoded.success)
            assert.strictEqual(encodeText(decoded.success), text)
          } else {
            assert.isString(parsed, `the parser accepted what the Schema refused: ${decoded.failure.message}`)
          }
        }),
        { numRuns: 3000 }
      )
      assert.isAbove(valid, 600)
    })

    const fragments = [
      "GET", "POST", "CONNECT", "OPTIONS", "M-X", " ", "  ", "\t", "/", "/a?b", "*", "h:1", "[::1]:2", "http://h/",
      "HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/1", "\r\n", "\r", "\n", "Host", "host", ":", ": ", "h", "a b",
      "Content-Length", "5", "5, 6", "Transfer-Encoding", "chunked", "gzip", "Connection", "close", "Expect",
      "100-continue", ",", "\x00", "\x7f", "\xe9", "X-Y", "v", "@", "%", "%41"
    ]
    const pick = <A>(common: A, ...rare: ReadonlyArray<A>) =>
      fc.oneof({ weight: 4, arbitrary: fc.constant(common) }, { weight: 1, arbitrary: fc.constantFrom(...rare) })
    const requestLine = fc.tuple(
      fc.constantFrom("GET", "POST", "CONNECT", "OPTIONS", "M-X"),
      pick(" ", "  ", "\t", ""),
      fc.constantFrom("/", "/a?b", "*", "h:1", "[::1]:2", "http://h/", "", "/\xe9", "/a b"),
      pick(" ", "  ", ""),
      pick("HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/1", "")
    ).map((parts) => parts.join(""))
    const fieldValue = fc.array(fc.constantFrom(...fragments), { maxLength: 3 }).map((parts) => parts.join(""))
    const structuredField = fc.tuple(
      fc.constantFrom("Host", "host", "X-Y", "Content-Length", "Transfer-Encoding", "Connection", "Expect", "", "X Y"),
      pick(": ", ":", " :", ":\t", " "),
      fc.oneof(fieldValue, fc.constantFrom("h", "5", "5, 5", "chunked", "close", "100-continue", "[::1]:80"))
    ).map((parts) => parts.join(""))
    const fieldLine = fc.oneof(
      { weight: 4, arbitrary: structuredField },
      { weight: 1, arbitrary: fc.array(fc.constantFrom(...fragments), { maxLength: 6 }).map((p) => p.join("")) }
    )
    const headText = fc.tuple(requestLine, fc.boolean(), fc.array(fieldLine, { maxLength: 4 })).map(
      ([line, withHost, lines]) =>
        `${line}\r\n${withHost ? "Host: h\r\n" : ""}${lines.map((l) => `${l}\r\n`).join("")}\r\n`
    )

    it("differential: on near-valid head texts the parser accepts exactly what the Schema accepts", () => {
      let valid = 0
      fc.assert(
        fc.property(headText, (text) => {
          // one head exactly: nothing before the request line, no empty line before the end
          fc.pre(text.indexOf("\r\n\r\n") === text.length - 4 && !text.startsWith("\r\n"))
          const decoded = decodeText(text)
          const parsed = parseFirst(text)
          if (Result.isSuccess(decoded)) {
            valid++
            assert.deepStrictEqual(parsed, decoded.success)
          } else {
            assert.isString(parsed, `the parser accepted what the Schema refused: ${decoded.failure.message}`)
          }
        }),
        { numRuns: 5000 }
      )
      assert.isAbove(valid, 150)
    })
  })
})

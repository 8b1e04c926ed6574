import { assert, describe, it } from "@effect/vitest"
import * as fc from "fast-check"
import * as Http1Parser from "../../../src/protocol/http/Http1Parser.ts"
import type { AcceptCase, ExpectedMessage } from "../../fixtures/http/requestCases.ts"
import { accepted, rejected } from "../../fixtures/http/requestCases.ts"
import type { Message, Outcome } from "./support.ts"
import { byteAtATime, bytes, parseChunks, splitAt, summarize } from "./support.ts"

const assertMessage = (actual: Message, expected: ExpectedMessage) => {
  const { head } = actual
  assert.strictEqual(head.method, expected.method)
  assert.strictEqual(head.target, expected.target)
  assert.strictEqual(head.version, expected.version)
  if (expected.headers !== undefined) assert.deepStrictEqual(head.headers, expected.headers)
  if (expected.framing !== undefined) assert.deepStrictEqual(head.framing, expected.framing)
  if (expected.keepAlive !== undefined) assert.strictEqual(head.keepAlive, expected.keepAlive)
  if (expected.expectContinue !== undefined) assert.strictEqual(head.expectContinue, expected.expectContinue)
  if (expected.upgrade !== undefined) assert.strictEqual(head.upgrade, expected.upgrade)
  assert.strictEqual(actual.body, expected.body ?? "")
  assert.deepStrictEqual(actual.trailers, expected.trailers ?? [])
}

const assertAccepted = (outcome: Outcome, c: AcceptCase) => {
  assert.isUndefined(outcome.error, `unexpected error ${JSON.stringify(outcome.error)}`)
  assert.isFalse(outcome.partial)
  assert.strictEqual(outcome.messages.length, c.messages.length)
  outcome.messages.forEach((message, i) => assertMessage(message, c.messages[i]))
}

// heads are plain data: compare outcomes structurally
const same = (a: Outcome, b: Outcome) => assert.deepStrictEqual(a, b)

const get = "GET /index.html?x=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\nUser-Agent: test/1.0\r\n\r\n"
const postLength = "POST /form HTTP/1.1\r\nHost: example.com\r\nContent-Type: text/plain\r\n" +
  "Content-Length: 13\r\n\r\nhello, world!"
const chunkedWithTrailers = "PUT /upload HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n" +
  "4;ext=\"v\"\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-Trailer: done\r\n\r\n"
const pipelinedPair = `${get}${postLength}`
const samples: ReadonlyArray<readonly [string, string]> = [
  ["GET", get],
  ["POST with Content-Length", postLength],
  ["chunked with trailers", chunkedWithTrailers],
  ["pipelined pair", pipelinedPair]
]

describe("Http1Parser", () => {
  describe("accepted fixtures", () => {
    for (const c of accepted) {
      it(c.rule, () => {
        assertAccepted(parseChunks([bytes(c.raw)], c.options, true), c)
        assertAccepted(parseChunks(byteAtATime(bytes(c.raw)), c.options, true), c)
      })
    }
  })

  describe("rejected fixtures", () => {
    for (const c of rejected) {
      it(`${c.rule} -> ${c.status} ${c.reason}`, () => {
        const whole = parseChunks([bytes(c.raw)], c.options)
        assert.deepStrictEqual(whole.error, { reason: c.reason, status: c.status })
        assert.strictEqual(whole.messages.length, c.messagesBefore ?? 0)
        same(parseChunks(byteAtATime(bytes(c.raw)), c.options), whole)
      })
    }
  })

  describe("splits", () => {
    for (const [name, text] of samples) {
      it(`${name}: every split point parses identically`, () => {
        const input = bytes(text)
        const whole = parseChunks([input])
        assert.isUndefined(whole.error)
        assert.isFalse(whole.partial)
        for (let i = 0; i <= input.length; i++) same(parseChunks(splitAt(input, [i])), whole)
      })
      it(`${name}: byte at a time parses identically`, () => {
        const input = bytes(text)
        same(parseChunks(byteAtATime(input)), parseChunks([input]))
      })
    }

    it("every pair of split points of the chunked request parses identically", () => {
      const input = bytes(chunkedWithTrailers)
      const whole = parseChunks([input])
      for (let i = 0; i <= input.length; i += 3) {
        for (let j = i; j <= input.length; j += 2) same(parseChunks(splitAt(input, [i, j])), whole)
      }
    })

    it("rejected fixtures fail the same way at every split point", () => {
      for (const c of rejected) {
        const input = bytes(c.raw)
        if (input.length > 2048) continue
        const whole = parseChunks([input], c.options)
        for (let i = 0; i <= input.length; i++) same(parseChunks(splitAt(input, [i]), c.options), whole)
      }
    })

    it("long field values: a control byte is found at any position and alignment, HTAB and obs-text pass", () => {
      const value = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ"
      for (let shift = 0; shift < 4; shift++) {
        for (let i = 0; i < value.length; i++) {
          for (const [byte, reason] of [["\x00", "InvalidHeaderValue"], ["\x1f", "InvalidHeaderValue"], [
            "\x7f",
            "InvalidHeaderValue"
          ], ["\n", "InvalidLineEnding"], ["\t", undefined], ["\xff", undefined], ["\x80", undefined]] as const) {
            const text = `GET / HTTP/1.1\r\nHost: h\r\nX: ${value.slice(0, i)}${byte}${value.slice(i + 1)}\r\n\r\n`
            // a padded backing buffer moves the head to each alignment of 4
            const backing = new Uint8Array(text.length + shift)
            backing.set(bytes(text), shift)
            const outcome = parseChunks([backing.subarray(shift)])
            assert.strictEqual(outcome.error?.reason, reason, `shift ${shift}, byte ${i}`)
            // an HTAB at either end is OWS, trimmed
            const trimmed = byte === "\t" && (i === 0 || i === value.length - 1) ? 1 : 0
            if (reason === undefined) {
              assert.strictEqual(outcome.messages[0].head.headers[1][1].length, value.length - trimmed)
            }
          }
        }
      }
    })

    it("body chunks are views of the pushed bytes", () => {
      const input = bytes(`${postLength}${chunkedWithTrailers}`)
      const parser = Http1Parser.makeRequestParser()
      const bodies = parser.push(input).filter((e) => e._tag === "Body")
      assert.strictEqual(bodies.length, 4)
      for (const event of bodies) assert.strictEqual(event.chunk.buffer, input.buffer)
    })

    it("a head split across pushes is copied once, the body after it stays a view", () => {
      const input = bytes(postLength)
      const cut = postLength.indexOf("Content-Type")
      const parser = Http1Parser.makeRequestParser()
      assert.deepStrictEqual(parser.push(input.subarray(0, cut)), [])
      const rest = input.slice(cut)
      const events = parser.push(rest)
      assert.deepStrictEqual(events.map((e) => e._tag), ["Head", "Body", "End"])
      const body = events[1]
      assert.isTrue(body._tag === "Body" && body.chunk.buffer === rest.buffer)
    })
  })

  describe("limits", () => {
    const withLine = (length: number) => `GET /${"t".repeat(length - 14)} HTTP/1.1\r\nHost: h\r\n\r\n`
    const withSection = (bytes: number) => `GET / HTTP/1.1\r\nHost: h\r\nX: ${"v".repeat(bytes - 14)}\r\n\r\n`
    const options = {
      maxRequestLineBytes: 64,
      maxHeaderBytes: 64,
      maxHeaders: 3,
      maxBodyBytes: 10,
      maxChunkExtensionBytes: 8
    } as const
    const check = (text: string, expected: Http1Parser.HttpParseReason | undefined) => {
      const input = bytes(text)
      const whole = parseChunks([input], options)
      assert.strictEqual(whole.error?.reason, expected, text.slice(0, 60))
      if (expected === undefined) assert.strictEqual(whole.messages.length, 1)
      for (let i = 0; i <= input.length; i++) same(parseChunks(splitAt(input, [i]), options), whole)
    }

    it("request line: exactly at the limit, then one byte over -> 414", () => {
      assert.strictEqual(withLine(64).indexOf("\r\n"), 64)
      check(withLine(64), undefined)
      check(withLine(65), "RequestLineTooLong")
    })

    it("header section: exactly at the limit, then one byte over -> 431", () => {
      const text = withSection(64)
      assert.strictEqual(text.indexOf("\r\n\r\n") + 2 - text.indexOf("\r\n") - 2, 64)
      check(text, undefined)
      check(withSection(65), "HeaderSectionTooLarge")
    })

    it("header count: exactly at the limit, then one more -> 431", () => {
      check("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n", undefined)
      check("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", "TooManyHeaders")
    })

    it("body: Content-Length exactly at the limit, then one over -> 413", () => {
      check("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789", undefined)
      check("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n0123456789a", "ContentTooLarge")
    })

    it("body: chunk sizes summing exactly to the limit, then one over -> 413", () => {
      const head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      check(`${head}4\r\n0123\r\n6\r\n456789\r\n0\r\n\r\n`, undefined)
      check(`${head}4\r\n0123\r\n7\r\n456789a\r\n0\r\n\r\n`, "ContentTooLarge")
    })

    it("chunk extensions: exactly at the limit, then one byte over", () => {
      const head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      check(`${head}1;abcdefg\r\nx\r\n0\r\n\r\n`, undefined)
      check(`${head}1;abcdefgh\r\nx\r\n0\r\n\r\n`, "ChunkExtensionTooLong")
      check(`${head}1;abc\r\nx\r\n0;abcd\r\n\r\n`, "ChunkExtensionTooLong")
    })

    it("trailer section: the header limits apply", () => {
      const head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n"
      check(`${head}A: 1\r\nB: 2\r\nC: 3\r\n\r\n`, undefined)
      check(`${head}A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n`, "TooManyHeaders")
      check(`${head}X: ${"v".repeat(59)}\r\n\r\n`, undefined)
      check(`${head}X: ${"v".repeat(60)}\r\n\r\n`, "HeaderSectionTooLarge")
    })

    it("a limit error wins over a later syntax error at any split", () => {
      check(`GET /${"t".repeat(80)}\x00 HTTP/1.1\r\n\r\n`, "RequestLineTooLong")
      check(`${"M".repeat(80)}\r\n\r\n`, "RequestLineTooLong")
      check(`GET / HTTP/1.1\r\nHost: h\r\nX: ${"v".repeat(80)}\x00\r\n\r\n`, "HeaderSectionTooLarge")
    })

    it("default limits: 8 KiB request line, 16 KiB header section, 2000 fields", () => {
      assert.strictEqual(Http1Parser.defaultMaxRequestLineBytes, 8192)
      assert.strictEqual(Http1Parser.defaultMaxHeaderBytes, 16384)
      assert.strictEqual(Http1Parser.defaultMaxHeaders, 2000)
      const line = `GET /${"a".repeat(8192 - 14)} HTTP/1.1`
      assert.strictEqual(line.length, 8192)
      assert.isUndefined(parseChunks([bytes(`${line}\r\nHost: h\r\n\r\n`)]).error)
      assert.strictEqual(parseChunks([bytes(`${line}a\r\nHost: h\r\n\r\n`)]).error?.status, 414)
    })

    it("default limits: a request with a hundred ordinary fields is served", () => {
      const fields = Array.from({ length: 100 }, (_, i) => `X-Forwarded-Field-${i}: some value ${i}\r\n`).join("")
      const outcome = parseChunks([bytes(`GET / HTTP/1.1\r\nHost: h\r\n${fields}\r\n`)])
      assert.isUndefined(outcome.error)
      assert.strictEqual(outcome.messages[0]?.head.headers.length, 101)
    })

    // `x:N` lines keep 2000 fields under the byte limit, so the count is what is tested
    const manyFields = (count: number) =>
      `GET / HTTP/1.1\r\nHost: h\r\n${Array.from({ length: count - 1 }, (_, i) => `x:${i}\r\n`).join("")}\r\n`

    it("default header count: exactly at the limit, then one more -> 431", () => {
      const atLimit = manyFields(2000)
      assert.isBelow(atLimit.length, 16384)
      const outcome = parseChunks([bytes(atLimit)])
      assert.isUndefined(outcome.error)
      assert.strictEqual(outcome.messages[0]?.head.headers.length, 2000)
      assert.deepStrictEqual(parseChunks([bytes(manyFields(2001))]).error, { reason: "TooManyHeaders", status: 431 })
    })

    it("default header section: exactly 16 KiB of fields, then one byte over -> 431", () => {
      // Host line (9 bytes) + one field line of the rest; the limit counts every field line with its CRLF
      const withSection = (size: number) => `GET / HTTP/1.1\r\nHost: h\r\nX: ${"v".repeat(size - 9 - 5)}\r\n\r\n`
      assert.isUndefined(parseChunks([bytes(withSection(16384))]).error)
      assert.deepStrictEqual(parseChunks([bytes(withSection(16385))]).error, {
        reason: "HeaderSectionTooLarge",
        status: 431
      })
    })

    it("after a head with many fields, the next head parses as usual", () => {
      const parser = Http1Parser.makeRequestParser()
      for (const text of [manyFields(2000), manyFields(3)]) {
        const events = parser.push(bytes(text))
        assert.deepStrictEqual(events.map((e) => e._tag), ["Head", "End"])
      }
    })

    it("a bad option is a defect", () => {
      assert.throws(() => Http1Parser.makeRequestParser({ maxHeaders: -1 }), RangeError)
      assert.throws(() => Http1Parser.makeRequestParser({ maxRequestLineBytes: 1.5 }), RangeError)
      assert.doesNotThrow(() => Http1Parser.makeRequestParser({ maxBodyBytes: Infinity }))
    })
  })

  describe("pipelining", () => {
    it("1000 pipelined requests in one buffer parse in order", () => {
      let text = ""
      for (let i = 0; i < 1000; i++) {
        text += i % 3 === 0
          ? `GET /r/${i} HTTP/1.1\r\nHost: h\r\nX-Seq: ${i}\r\n\r\n`
          : i % 3 === 1
          ? `POST /r/${i} HTTP/1.1\r\nHost: h\r\nContent-Length: ${String(i).length}\r\n\r\n${i}`
          : `PUT /r/${i} HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n${
            String(i).length.toString(16)
          }\r\n${i}\r\n0\r\n\r\n`
      }
      const input = bytes(text)
      const whole = parseChunks([input], undefined, true)
      assert.isUndefined(whole.error)
      assert.strictEqual(whole.messages.length, 1000)
      whole.messages.forEach((message, i) => {
        assert.strictEqual(message.head.target, `/r/${i}`)
        assert.strictEqual(message.body, i % 3 === 0 ? "" : String(i))
      })
      const chunks: Array<Uint8Array> = []
      for (let i = 0; i < input.length; i += 997) chunks.push(input.subarray(i, i + 997))
      same(parseChunks(chunks, undefined, true), whole)
    })

    it("the parser continues after each message end", () => {
      const parser = Http1Parser.makeRequestParser()
      for (let i = 0; i < 3; i++) {
        const events = parser.push(bytes(`GET /${i} HTTP/1.1\r\nHost: h\r\n\r\n`))
        assert.deepStrictEqual(events.map((e) => e._tag), ["Head", "End"])
      }
    })
  })

  describe("end and errors", () => {
    it("end() between messages produces nothing", () => {
      const parser = Http1Parser.makeRequestParser()
      parser.push(bytes(`${get}\r\n`))
      assert.deepStrictEqual(parser.end(), [])
    })

    it("end() inside a head or a body is UnexpectedEnd", () => {
      for (const text of [get.slice(0, 20), postLength.slice(0, -3), chunkedWithTrailers.slice(0, -2)]) {
        const outcome = parseChunks([bytes(text)], undefined, true)
        assert.deepStrictEqual(outcome.error, { reason: "UnexpectedEnd", status: 400 })
      }
    })

    it("an error is terminal", () => {
      const parser = Http1Parser.makeRequestParser()
      const events = parser.push(bytes("GET / HTTP/9.9\r\n\r\n"))
      assert.strictEqual(events.length, 1)
      assert.deepStrictEqual(parser.push(bytes(get)), [])
      assert.deepStrictEqual(parser.end(), [])
    })

    it("errors carry status and a message that does not echo the input", () => {
      const secret = "s3cr3t-token"
      const events = Http1Parser.makeRequestParser().push(bytes(`GET / HTTP/1.1\r\nX-Auth: ${secret}\x00\r\n\r\n`))
      const last = events[events.length - 1]
      assert.strictEqual(last._tag, "Error")
      if (last._tag === "Error") {
        assert.strictEqual(last.error._tag, "HttpParseError")
        assert.strictEqual(last.error.status, 400)
        assert.notInclude(last.error.message, secret)
      }
    })

    it("statusOf maps every reason to a status", () => {
      for (const reason of Http1Parser.HttpParseReason.literals) {
        assert.include([400, 413, 414, 431, 501, 505], Http1Parser.statusOf[reason])
      }
    })
  })

  describe("protocol switch", () => {
    const upgrade = "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    // a masked WebSocket text frame, then bytes that would be a malformed request line if parsed as HTTP
    const frame = "\x81\x85\x01\x02\x03\x04iguhn GARBAGE\r\n\r\n"
    const latin1 = (data: Uint8Array) => String.fromCharCode(...data)

    it("pauses after the request and hands over what follows, at every split point", () => {
      const input = bytes(upgrade + frame)
      for (let cut = 0; cut <= input.length; cut++) {
        for (const chunks of [splitAt(input, [cut]), cut === 0 ? byteAtATime(input) : []]) {
          if (chunks.length === 0) continue
          const parser = Http1Parser.makeRequestParser()
          const events = chunks.flatMap((chunk) => parser.push(chunk))
          const outcome = summarize(events)
          assert.isUndefined(outcome.error)
          assert.strictEqual(outcome.messages.length, 1)
          assert.isTrue(outcome.messages[0]!.head.upgrade)
          assert.deepStrictEqual(parser.end(), [])
          assert.strictEqual(latin1(parser.takeRemaining()), frame)
          // done for good
          assert.deepStrictEqual(parser.push(bytes("GET / HTTP/1.1\r\nHost: h\r\n\r\n")), [])
          assert.strictEqual(parser.takeRemaining().length, 0)
        }
      }
    })

    it("pauses only after the body of the switching request", () => {
      const withBody = "POST /up HTTP/1.1\r\nHost: h\r\nUpgrade: x\r\nConnection: upgrade\r\nContent-Length: 3\r\n\r\nabc"
      const parser = Http1Parser.makeRequestParser()
      const outcome = summarize(parser.push(bytes(withBody + "rest")))
      assert.strictEqual(outcome.messages[0]!.body, "abc")
      assert.strictEqual(latin1(parser.takeRemaining()), "rest")
    })

    it("resumes HTTP when the server did not switch, and pauses again at the next switch", () => {
      const parser = Http1Parser.makeRequestParser()
      const first = summarize(parser.push(bytes(upgrade + "GET /a HTTP/1.1\r\nHost: h\r\n\r\n" + upgrade)))
      assert.strictEqual(first.messages.length, 1)
      assert.deepStrictEqual(parser.push(bytes("GET /b HTTP/1.1\r\nHost: h\r\n\r\n")), [])
      const resumed = summarize(parser.resume())
      assert.deepStrictEqual(resumed.messages.map((m) => [m.head.target, m.head.upgrade]), [["/a", false], ["/ws", true]])
      const again = summarize(parser.resume())
      assert.deepStrictEqual(again.messages.map((m) => m.head.target), ["/b"])
      assert.deepStrictEqual(parser.resume(), [])
    })

    it("takes nothing from a parser that is not paused", () => {
      const parser = Http1Parser.makeRequestParser()
      parser.push(bytes("GET / HTTP/1.1\r\nHost: h\r\n\r\n"))
      assert.deepStrictEqual(parser.resume(), [])
      assert.strictEqual(parser.takeRemaining().length, 0)
    })
  })

  describe("properties", () => {
    const validInputs = [...samples.map(([, text]) => text), ...accepted.map((c) => c.raw)]

    it("any split of a valid request parses the same", () => {
      fc.assert(
        fc.property(
          fc.constantFrom(...validInputs),
          fc.array(fc.nat(), { maxLength: 8 }),
          (text, points) => {
            const input = bytes(text)
            same(parseChunks(splitAt(input, points.map((p) => p % (input.length + 1)))), parseChunks([input]))
          }
        ),
        { numRuns: 500 }
      )
    })

    it("parsers of different connections may take turns, each with heads split across its pushes", () => {
      // parsers share their field slots while a head is scanned within one push
      const manyFields = `GET /many HTTP/1.1\r\n${
        Array.from({ length: 40 }, (_, i) => `X-F${i}: v${i}\r\n`).join("")
      }Host: h\r\n\r\n`
      const inputs = [...validInputs, manyFields]
      fc.assert(
        fc.property(
          fc.array(
            fc.tuple(fc.constantFrom(...inputs), fc.array(fc.nat(), { maxLength: 6 })),
            { minLength: 2, maxLength: 4 }
          ),
          fc.array(fc.nat(), { maxLength: 40 }),
          (connections, turns) => {
            const queues = connections.map(([text, points]) => {
              const input = bytes(text)
              return splitAt(input, points.map((p) => p % (input.length + 1)))
            })
            const parsers = connections.map(() => Http1Parser.makeRequestParser())
            const events = connections.map((): Array<Http1Parser.ParseEvent> => [])
            const pushNext = (i: number) => {
              const chunk = queues[i].shift()
              if (chunk !== undefined) events[i].push(...parsers[i].push(chunk))
            }
            for (const turn of turns) pushNext(turn % connections.length)
            connections.forEach((_, i) => {
              while (queues[i].length > 0) pushNext(i)
              same(summarize(events[i]), parseChunks([bytes(connections[i][0])]))
            })
          }
        ),
        { numRuns: 300 }
      )
    })

    it("arbitrary bytes give events or a typed error, never a throw", () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 400 }), fc.array(fc.nat(), { maxLength: 6 }), (input, points) => {
          const outcome = parseChunks(splitAt(input, points.map((p) => p % (input.length + 1))), undefined, true)
          assert.isTrue(outcome.error !== undefined || !outcome.partial)
        }),
        { numRuns: 1000 }
      )
    })

    // Pieces of valid and invalid syntax, so that random sequences reach deep states of the machine.
    const fragments = [
      "GET ", "POST ", "CONNECT ", "OPTIONS ", "/", "/a?b", "*", "h:1", "http://h/", " ", "\t", " HTTP/1.1",
      " HTTP/1.0",
      " HTTP/2.0", "\r\n", "\r", "\n", "Host: h\r\n", "Host:", "Content-Length: 3\r\n", "Content-Length: ", "3", "0",
      "Transfer-Encoding: chunked\r\n", "Transfer-Encoding: ", "chunked", "gzip", ",", ";", "=", "\"", "\\", "a", "Z",
      ":", "X-A: b\r\n", "\x00", "\x7f", "\xe9", "Connection: close\r\n", "Expect: 100-continue\r\n", "5", "f",
      "\r\n\r\n"
    ]
    const soup = fc.array(fc.constantFrom(...fragments), { maxLength: 40 }).map((parts) => parts.join(""))
    const tiny = {
      maxRequestLineBytes: 12,
      maxHeaderBytes: 20,
      maxHeaders: 2,
      maxBodyBytes: 6,
      maxChunkExtensionBytes: 3
    }

    it("fragment soup: the outcome does not depend on the split, with default and tiny limits", () => {
      fc.assert(
        fc.property(soup, fc.array(fc.nat(), { maxLength: 6 }), fc.boolean(), (text, points, small) => {
          const input = bytes(text)
          const options = small ? tiny : undefined
          const whole = parseChunks([input], options, true)
          same(parseChunks(splitAt(input, points.map((p) => p % (input.length + 1))), options, true), whole)
          same(parseChunks(byteAtATime(input), options, true), whole)
        }),
        { numRuns: 2000 }
      )
    })

    it("events are well ordered for any event stream", () => {
      fc.assert(
        fc.property(soup, (text) => {
          const parser = Http1Parser.makeRequestParser()
          summarize([...parser.push(bytes(text)), ...parser.end()])
        }),
        { numRuns: 500 }
      )
    })
  })
})

import { assert, describe, it } from "@effect/vitest"
import { Option, Result, Schema } from "effect"
import * as fc from "fast-check"
import * as ChatMessage from "../../src/protocol/ChatMessage.ts"
import * as LengthPrefixedFraming from "../../src/protocol/LengthPrefixedFraming.ts"

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s)
const bytes = (...values: ReadonlyArray<number>): Uint8Array => Uint8Array.from(values)
const json = (value: unknown): Uint8Array => utf8(JSON.stringify(value))
const asText = (payload: Uint8Array): string => new TextDecoder().decode(payload)

const failureOf = <A>(result: Result.Result<A, ChatMessage.ChatMessageError>): ChatMessage.ChatMessageError => {
  assert.isTrue(Result.isFailure(result), `expected a failure, got ${JSON.stringify(result)}`)
  return (result as Result.Failure<A, ChatMessage.ChatMessageError>).failure
}

const emoji = "\u{1F600}" // one character, two UTF-16 code units, four UTF-8 bytes

// One fixture per protocol rule: the raw payload and the outcome the server must see.
type Outcome =
  | { readonly ok: ChatMessage.ClientMessage }
  | { readonly reason: "bad_message" | "bad_name"; readonly kind: ChatMessage.ChatMessageErrorKind }

const login = (name: string): ChatMessage.Login => ({ type: "login", name })
const say = (text: string): ChatMessage.Say => ({ type: "say", text })
const ok = (message: ChatMessage.ClientMessage): Outcome => ({ ok: message })
const badName: Outcome = { reason: "bad_name", kind: "invalid_field" }
const bad = (kind: ChatMessage.ChatMessageErrorKind): Outcome => ({ reason: "bad_message", kind })

const clientFixtures: ReadonlyArray<readonly [string, Uint8Array, Outcome]> = [
  ["a login", utf8(`{"type":"login","name":"alice"}`), ok(login("alice"))],
  ["a say", utf8(`{"type":"say","text":"hello, world"}`), ok(say("hello, world"))],
  ["whitespace around JSON tokens", utf8(` { "type" : "say" , "text" : "x" } `), ok(say("x"))],
  ["extra fields, ignored", utf8(`{"type":"login","name":"bob","n":[1]}`), ok(login("bob"))],
  ["a name of 32 characters", json(login("a".repeat(32))), ok(login("a".repeat(32)))],
  ["a name of 32 emoji (64 code units)", json(login(emoji.repeat(32))), ok(login(emoji.repeat(32)))],
  ["a name with spaces and accents", json(login("Zoë Ann")), ok(login("Zoë Ann"))],
  ["a name containing 'server'", json(login("servers")), ok(login("servers"))],
  ["a text of 4096 characters", json(say("t".repeat(4096))), ok(say("t".repeat(4096)))],
  ["a text of 4096 emoji", json(say(emoji.repeat(4096))), ok(say(emoji.repeat(4096)))],
  ["a text with line breaks and tabs", json(say("a\nb\tc")), ok(say("a\nb\tc"))],
  ["a name with @", json(login("a@b")), badName],
  ["the name SERVER", json(login("SERVER")), badName],
  ["the name server", json(login("server")), badName],
  ["the name Server", json(login("Server")), badName],
  ["the name \u017Ferver (long s)", json(login("\u017Ferver")), badName],
  ["a name with NUL", json(login("a\u0000b")), badName],
  ["a name with a line feed", json(login("a\nb")), badName],
  ["a name with DEL", json(login("a\u007fb")), badName],
  ["a name with a C1 control", json(login("a\u0085b")), badName],
  ["a name of 33 characters", json(login("a".repeat(33))), badName],
  ["a name of 33 emoji", json(login(emoji.repeat(33))), badName],
  ["an empty name", json(login("")), badName],
  ["a number as name", json({ type: "login", name: 42 }), badName],
  ["a null name", json({ type: "login", name: null }), badName],
  ["a login without name", json({ type: "login" }), badName],
  ["a text of 4097 characters", json(say("t".repeat(4097))), bad("invalid_field")],
  ["a text of 4097 emoji", json(say(emoji.repeat(4097))), bad("invalid_field")],
  ["an empty text", json(say("")), bad("invalid_field")],
  ["a number as text", json({ type: "say", text: 42 }), bad("invalid_field")],
  ["an object as text", json({ type: "say", text: { a: 1 } }), bad("invalid_field")],
  ["a say without text", json({ type: "say" }), bad("invalid_field")],
  ["text hidden in __proto__", utf8(`{"type":"say","__proto__":{"text":"x"}}`), bad("invalid_field")],
  ["an unknown type", json({ type: "shout", text: "x" }), bad("unknown_type")],
  ["a server message type", json({ type: "welcome", name: "a", address: "b", count: 1 }), bad("unknown_type")],
  ["a type named like an Object property", json({ type: "constructor" }), bad("unknown_type")],
  ["an uppercase type", json({ type: "LOGIN", name: "alice" }), bad("unknown_type")],
  ["a missing type", json({ name: "alice" }), bad("unknown_type")],
  ["a number as type", json({ type: 1 }), bad("unknown_type")],
  ["a JSON array", json([{ type: "say", text: "x" }]), bad("not_an_object")],
  ["a JSON string", json("hello"), bad("not_an_object")],
  ["a JSON number", utf8("42"), bad("not_an_object")],
  ["JSON null", utf8("null"), bad("not_an_object")],
  ["JSON true", utf8("true"), bad("not_an_object")],
  ["truncated JSON", utf8(`{"type":"say","text":"x"`), bad("invalid_json")],
  ["plain text", utf8("hello"), bad("invalid_json")],
  ["JSON with a trailing comma", utf8(`{"type":"say","text":"x",}`), bad("invalid_json")],
  ["single-quoted JSON", utf8(`{'type':'say','text':'x'}`), bad("invalid_json")],
  ["two JSON objects", utf8(`{"type":"say","text":"x"}{}`), bad("invalid_json")],
  ["an empty payload", new Uint8Array(0), bad("invalid_json")],
  ["an invalid UTF-8 byte", bytes(0x7b, 0xff, 0x7d), bad("invalid_utf8")],
  ["a truncated UTF-8 sequence", bytes(0x22, 0xe2, 0x82), bad("invalid_utf8")],
  ["an overlong UTF-8 encoding", bytes(0x22, 0xc0, 0xaf, 0x22), bad("invalid_utf8")],
  ["a UTF-8 encoded surrogate", bytes(0x22, 0xed, 0xa0, 0x80, 0x22), bad("invalid_utf8")],
  [
    "invalid UTF-8 inside a message",
    Uint8Array.from([...utf8(`{"type":"say","text":"`), 0xff, 34, 125]),
    bad("invalid_utf8")
  ]
]

const validClientMessages: ReadonlyArray<ChatMessage.ClientMessage> = [
  { type: "login", name: "alice" },
  { type: "login", name: emoji },
  { type: "say", text: "hi \"there\" \\ \u0000 \u2028" }
]

const validServerMessages: ReadonlyArray<readonly [ChatMessage.ServerMessage, string]> = [
  [
    { type: "welcome", name: "alice@127.0.0.1", address: "127.0.0.1", count: 1 },
    `{"type":"welcome","name":"alice@127.0.0.1","address":"127.0.0.1","count":1}`
  ],
  [{ type: "joined", client: "bob@127.0.0.1", count: 2 }, `{"type":"joined","client":"bob@127.0.0.1","count":2}`],
  [
    { type: "message", from: "alice@127.0.0.1", text: "héllo\n" },
    `{"type":"message","from":"alice@127.0.0.1","text":"héllo\\n"}`
  ],
  [{ type: "left", client: "bob@local", count: 0 }, `{"type":"left","client":"bob@local","count":0}`],
  [{ type: "error", code: "frame_too_large" }, `{"type":"error","code":"frame_too_large"}`],
  [
    { type: "error", code: "bad_message", detail: "text: Expected 1 to 4096 characters" },
    `{"type":"error","code":"bad_message","detail":"text: Expected 1 to 4096 characters"}`
  ],
  [{ type: "shutdown" }, `{"type":"shutdown"}`]
]

// Valid names: any code points, then kept when the schema says so (most random strings pass).
const nameArbitrary = fc.string({ unit: "binary", minLength: 1, maxLength: 32 }).filter(Schema.is(ChatMessage.Name))
const textArbitrary = fc.oneof(
  fc.string({ unit: "binary", minLength: 1, maxLength: 200 }),
  fc.string({ unit: "grapheme", minLength: 1, maxLength: 50 })
).filter(Schema.is(ChatMessage.Text))
const clientMessageArbitrary: fc.Arbitrary<ChatMessage.ClientMessage> = fc.oneof(
  nameArbitrary.map((name) => ({ type: "login" as const, name })),
  textArbitrary.map((text) => ({ type: "say" as const, text }))
)
const countArbitrary = fc.nat()
const anyString = fc.string({ unit: "binary", maxLength: 60 })
const errorCodeArbitrary = fc.constantFrom(...ChatMessage.ErrorCode.literals)
const serverMessageArbitrary: fc.Arbitrary<ChatMessage.ServerMessage> = fc.oneof(
  fc.record({ type: fc.constant("welcome" as const), name: anyString, address: anyString, count: countArbitrary }),
  fc.record({ type: fc.constant("joined" as const), client: anyString, count: countArbitrary }),
  fc.record({ type: fc.constant("message" as const), from: anyString, text: anyString }),
  fc.record({ type: fc.constant("left" as const), client: anyString, count: countArbitrary }),
  fc.record({ type: fc.constant("error" as const), code: errorCodeArbitrary }),
  fc.record({ type: fc.constant("error" as const), code: errorCodeArbitrary, detail: anyString }),
  fc.constant({ type: "shutdown" as const })
)

// Payloads that are often close to valid: random JSON values, and objects with a known type and random fields.
const jsonishPayload = fc.oneof(
  fc.jsonValue().map(json),
  fc.record({
    type: fc.constantFrom("login", "say", "welcome", "error", "nope"),
    name: fc.oneof(anyString, fc.jsonValue()),
    text: fc.oneof(anyString, fc.jsonValue())
  }, { requiredKeys: ["type"] }).map(json),
  fc.string({ unit: "binary" }).map(utf8),
  fc.uint8Array({ maxLength: 80 })
)

describe("ChatMessage", () => {
  describe("Name", () => {
    const isName = Schema.is(ChatMessage.Name)

    it("accepts 1 to 32 characters, counted as code points", () => {
      assert.isTrue(isName("a"))
      assert.isTrue(isName("a".repeat(32)))
      assert.isTrue(isName(emoji.repeat(32)))
      assert.isTrue(isName("Zoë"))
      assert.isFalse(isName(""))
      assert.isFalse(isName("a".repeat(33)))
      assert.isFalse(isName(emoji.repeat(33)))
      assert.isFalse(isName("a".repeat(31) + emoji + "b"))
      assert.strictEqual(ChatMessage.maxNameLength, 32)
    })

    it("rejects control characters: C0, DEL and C1", () => {
      for (const control of ["\u0000", "\u0009", "\n", "\u001f", "\u007f", "\u0080", "\u0085", "\u009f"]) {
        assert.isFalse(isName(`a${control}b`), JSON.stringify(control))
      }
      assert.isTrue(isName("a\u00a0b"))
    })

    it("rejects @ and server in any case", () => {
      assert.isFalse(isName("@"))
      assert.isFalse(isName("alice@home"))
      for (const name of ["server", "SERVER", "Server", "sErVeR", "\u017Ferver"]) assert.isFalse(isName(name), name)
      assert.isTrue(isName("server1"))
      assert.isTrue(isName("the server"))
    })

    it("reports which rule broke", () => {
      const decode = Schema.decodeUnknownResult(ChatMessage.Name)
      assert.include(Result.getFailure(decode("a@b")).pipe(Option.getOrThrow).message, "\"@\"")
      assert.include(Result.getFailure(decode("SERVER")).pipe(Option.getOrThrow).message, "server")
      assert.include(Result.getFailure(decode("a\u0001")).pipe(Option.getOrThrow).message, "control")
      assert.include(Result.getFailure(decode("")).pipe(Option.getOrThrow).message, "1 to 32 characters")
    })
  })

  describe("Text", () => {
    const isText = Schema.is(ChatMessage.Text)

    it("accepts 1 to 4096 characters, counted as code points", () => {
      assert.isTrue(isText("x"))
      assert.isTrue(isText("x".repeat(4096)))
      assert.isTrue(isText(emoji.repeat(4096)))
      assert.isTrue(isText("x".repeat(4095) + emoji))
      assert.isTrue(isText("multi\nline\u0000text"))
      assert.isFalse(isText(""))
      assert.isFalse(isText("x".repeat(4097)))
      assert.isFalse(isText(emoji.repeat(4097)))
      assert.isFalse(isText("x".repeat(4096) + emoji))
      assert.strictEqual(ChatMessage.maxTextLength, 4096)
    })

    it("counts a lone surrogate as one character", () => {
      assert.isTrue(isText("\ud800".repeat(4096)))
      assert.isFalse(isText("\ud800".repeat(4097)))
      assert.isTrue(isText(`${"x".repeat(4094)}\udc00\ud800`))
    })
  })

  describe("ErrorCode", () => {
    it("lists the codes of the spec's error table", () => {
      assert.deepStrictEqual([...ChatMessage.ErrorCode.literals].sort(), [
        "bad_message",
        "bad_name",
        "empty_frame",
        "frame_too_large",
        "login_timeout",
        "name_taken",
        "not_logged_in",
        "slow_consumer"
      ])
    })
  })

  describe("decodeClientMessage", () => {
    for (const [name, payload, outcome] of clientFixtures) {
      it(`decodes ${name}`, () => {
        const decoded = ChatMessage.decodeClientMessage(payload)
        if ("ok" in outcome) {
          assert.deepStrictEqual(decoded, Result.succeed(outcome.ok))
        } else {
          const error = failureOf(decoded)
          assert.strictEqual(error._tag, "ChatMessageError")
          assert.strictEqual(error.reason, outcome.reason)
          assert.strictEqual(error.kind, outcome.kind)
          assert.isAbove(error.detail.length, 0)
          assert.isAtMost(error.detail.length, 200)
        }
      })
    }

    it("explains the failure in the detail", () => {
      const detailOf = (payload: Uint8Array) => failureOf(ChatMessage.decodeClientMessage(payload)).detail
      assert.strictEqual(detailOf(json({ type: "login", name: "a@b" })), "name: Expected no \"@\"")
      assert.strictEqual(detailOf(json(login("SERVER"))), "name: Expected a name other than \"server\"")
      assert.strictEqual(detailOf(json({ type: "login", name: "a\u0001" })), "name: Expected no control characters")
      assert.strictEqual(detailOf(json({ type: "login", name: "a".repeat(33) })), "name: Expected 1 to 32 characters")
      assert.strictEqual(detailOf(json({ type: "login", name: 42 })), "name: Expected string")
      assert.strictEqual(detailOf(json({ type: "login" })), "name: Missing key")
      assert.strictEqual(detailOf(json({ type: "say", text: "" })), "text: Expected 1 to 4096 characters")
      assert.strictEqual(detailOf(json({ type: "shout" })), "unknown message type \"shout\"")
      assert.strictEqual(detailOf(json({ type: "x".repeat(100) })), `unknown message type "${"x".repeat(32)}…"`)
      assert.strictEqual(detailOf(json({})), "payload has no string field \"type\"")
      assert.strictEqual(detailOf(json([])), "payload is not a JSON object (got an array)")
      assert.strictEqual(detailOf(utf8("null")), "payload is not a JSON object (got null)")
      assert.strictEqual(detailOf(utf8("7")), "payload is not a JSON object (got a number)")
      assert.strictEqual(detailOf(bytes(0xff)), "payload is not valid UTF-8")
      assert.match(detailOf(utf8("{")), /^payload is not valid JSON \(.+\)$/)
    })

    it("drops unknown fields from the decoded message", () => {
      const payload = utf8(`{"name":"x","type":"login","admin":true}`)
      const decoded = Result.getOrThrow(ChatMessage.decodeClientMessage(payload))
      assert.deepStrictEqual(Object.keys(decoded), ["type", "name"])
    })

    it("leaves later frames intact after a bad one", () => {
      const wire = LengthPrefixedFraming.encodeFrames([
        json({ type: "login", name: "alice" }),
        utf8("{oops"),
        json({ type: "say", text: "still here" })
      ])
      const decoded = Result.getOrThrow(LengthPrefixedFraming.decodeAll(wire)).map(ChatMessage.decodeClientMessage)
      assert.deepStrictEqual(decoded[0], Result.succeed({ type: "login", name: "alice" }))
      assert.strictEqual(failureOf(decoded[1]).kind, "invalid_json")
      assert.deepStrictEqual(decoded[2], Result.succeed({ type: "say", text: "still here" }))
    })

    it("never throws on arbitrary bytes, strings or JSON: a message or a typed error (property)", () => {
      fc.assert(
        fc.property(jsonishPayload, (payload) => {
          const decoded = ChatMessage.decodeClientMessage(payload)
          if (Result.isSuccess(decoded)) {
            assert.isTrue(Schema.is(ChatMessage.ClientMessage)(decoded.success))
          } else {
            assert.instanceOf(decoded.failure, ChatMessage.ChatMessageError)
            assert.include(["bad_message", "bad_name"], decoded.failure.reason)
            assert.isAbove(decoded.failure.detail.length, 0)
          }
        }),
        { numRuns: 2000 }
      )
    })

    it("gives bad_name exactly for logins whose name breaks the rule (property)", () => {
      fc.assert(
        fc.property(fc.oneof(anyString, fc.jsonValue()), (name) => {
          const decoded = ChatMessage.decodeClientMessage(json({ type: "login", name }))
          if (Schema.is(ChatMessage.Name)(name)) {
            assert.deepStrictEqual(decoded, Result.succeed({ type: "login", name }))
          } else {
            assert.strictEqual(failureOf(decoded).reason, "bad_name")
          }
        }),
        { numRuns: 1000 }
      )
    })

    it("agrees with the ClientMessageFromBytes schema (property)", () => {
      const bySchema = Schema.decodeUnknownResult(ChatMessage.ClientMessageFromBytes)
      fc.assert(
        fc.property(jsonishPayload, (payload) => {
          const decoded = ChatMessage.decodeClientMessage(payload)
          const expected = bySchema(payload)
          assert.strictEqual(Result.isSuccess(decoded), Result.isSuccess(expected))
          if (Result.isSuccess(decoded) && Result.isSuccess(expected)) {
            assert.deepStrictEqual(decoded.success, expected.success)
          }
        }),
        { numRuns: 1000 }
      )
      for (const [, payload] of clientFixtures) {
        assert.strictEqual(
          Result.isSuccess(ChatMessage.decodeClientMessage(payload)),
          Result.isSuccess(bySchema(payload))
        )
      }
    })
  })

  describe("encodeClientMessage", () => {
    it("writes compact JSON with type first", () => {
      assert.strictEqual(
        asText(Result.getOrThrow(ChatMessage.encodeClientMessage({ type: "login", name: "alice" }))),
        `{"type":"login","name":"alice"}`
      )
      assert.strictEqual(
        asText(Result.getOrThrow(ChatMessage.encodeClientMessage({ type: "say", text: "hi\n" }))),
        `{"type":"say","text":"hi\\n"}`
      )
    })

    it("drops fields the schema does not declare", () => {
      const message = { type: "say", text: "x", secret: "y" } as ChatMessage.ClientMessage
      const encoded = Result.getOrThrow(ChatMessage.encodeClientMessage(message))
      assert.strictEqual(asText(encoded), `{"type":"say","text":"x"}`)
    })

    it("refuses messages that break a rule, with the server's reasons", () => {
      const badName = failureOf(ChatMessage.encodeClientMessage({ type: "login", name: "root@host" }))
      assert.strictEqual(badName.reason, "bad_name")
      assert.strictEqual(badName.detail, "name: Expected no \"@\"")
      assert.strictEqual(failureOf(ChatMessage.encodeClientMessage({ type: "say", text: "" })).reason, "bad_message")
      const unknown = { type: "shout", text: "x" } as unknown as ChatMessage.ClientMessage
      assert.strictEqual(failureOf(ChatMessage.encodeClientMessage(unknown)).kind, "unknown_type")
    })

    it("round-trips every valid client message (property)", () => {
      for (const message of validClientMessages) {
        assert.deepStrictEqual(
          Result.flatMap(ChatMessage.encodeClientMessage(message), ChatMessage.decodeClientMessage),
          Result.succeed(message)
        )
      }
      fc.assert(
        fc.property(clientMessageArbitrary, (message) => {
          const encoded = Result.getOrThrow(ChatMessage.encodeClientMessage(message))
          assert.deepStrictEqual(ChatMessage.decodeClientMessage(encoded), Result.succeed(message))
          const bySchema = Schema.encodeUnknownResult(ChatMessage.ClientMessageFromBytes)(message)
          assert.deepStrictEqual(bySchema, Result.succeed(encoded))
        }),
        { numRuns: 1000 }
      )
    })
  })

  describe("encodeClientFrame", () => {
    it("writes header and payload in one buffer", () => {
      const message: ChatMessage.ClientMessage = { type: "say", text: `${emoji} hi` }
      const frame = Result.getOrThrow(ChatMessage.encodeClientFrame(message))
      const payload = Result.getOrThrow(ChatMessage.encodeClientMessage(message))
      assert.deepStrictEqual(frame, LengthPrefixedFraming.encodeFrame(payload))
      assert.strictEqual(frame.byteLength, frame.buffer.byteLength)
    })

    it("fails like encodeClientMessage", () => {
      assert.strictEqual(failureOf(ChatMessage.encodeClientFrame({ type: "login", name: "" })).reason, "bad_name")
    })
  })

  describe("decodeServerMessage", () => {
    it("decodes every server message type", () => {
      for (const [message, wire] of validServerMessages) {
        assert.deepStrictEqual(ChatMessage.decodeServerMessage(utf8(wire)), Result.succeed(message))
      }
    })

    it("rejects malformed server messages as bad_message", () => {
      const cases: ReadonlyArray<readonly [unknown, ChatMessage.ChatMessageErrorKind]> = [
        [{ type: "welcome", name: "a", address: "b", count: -1 }, "invalid_field"],
        [{ type: "joined", client: "a", count: 1.5 }, "invalid_field"],
        [{ type: "left", client: "a", count: "1" }, "invalid_field"],
        [{ type: "message", from: "a" }, "invalid_field"],
        [{ type: "error", code: "oops" }, "invalid_field"],
        [{ type: "error", code: "bad_message", detail: 1 }, "invalid_field"],
        [{ type: "login", name: "alice" }, "unknown_type"],
        [[1, 2], "not_an_object"]
      ]
      for (const [value, kind] of cases) {
        const error = failureOf(ChatMessage.decodeServerMessage(json(value)))
        assert.strictEqual(error.reason, "bad_message")
        assert.strictEqual(error.kind, kind, JSON.stringify(value))
      }
      assert.strictEqual(failureOf(ChatMessage.decodeServerMessage(bytes(0xc3))).kind, "invalid_utf8")
    })

    it("ignores unknown fields", () => {
      assert.deepStrictEqual(
        ChatMessage.decodeServerMessage(utf8(`{"type":"shutdown","reason":"maintenance"}`)),
        Result.succeed({ type: "shutdown" })
      )
    })

    it("never throws on arbitrary input (property)", () => {
      fc.assert(
        fc.property(jsonishPayload, (payload) => {
          const decoded = ChatMessage.decodeServerMessage(payload)
          if (Result.isFailure(decoded)) assert.strictEqual(decoded.failure.reason, "bad_message")
        }),
        { numRuns: 1000 }
      )
    })
  })

  describe("encodeServerMessage", () => {
    it("writes the spec's bytes for every server message type", () => {
      for (const [message, wire] of validServerMessages) {
        assert.strictEqual(asText(Result.getOrThrow(ChatMessage.encodeServerMessage(message))), wire)
      }
    })

    it("refuses a message that breaks its schema", () => {
      const error = failureOf(ChatMessage.encodeServerMessage({ type: "joined", client: "a", count: -1 }))
      assert.strictEqual(error.reason, "bad_message")
      assert.strictEqual(error.kind, "invalid_field")
      assert.strictEqual(error.detail, "count: Expected a value greater than or equal to 0")
    })

    it("round-trips every valid server message (property)", () => {
      fc.assert(
        fc.property(serverMessageArbitrary, (message) => {
          const encoded = Result.getOrThrow(ChatMessage.encodeServerMessage(message))
          assert.deepStrictEqual(ChatMessage.decodeServerMessage(encoded), Result.succeed(message))
          const bySchema = Schema.encodeUnknownResult(ChatMessage.ServerMessageFromBytes)(message)
          assert.deepStrictEqual(bySchema, Result.succeed(encoded))
        }),
        { numRuns: 1000 }
      )
    })
  })

  describe("encodeServerFrame", () => {
    it("writes header and payload in one buffer", () => {
      for (const [message, wire] of validServerMessages) {
        const frame = Result.getOrThrow(ChatMessage.encodeServerFrame(message))
        assert.deepStrictEqual(frame, LengthPrefixedFraming.encodeFrame(utf8(wire)))
        assert.strictEqual(frame.byteLength, frame.buffer.byteLength)
      }
    })

    it("handles large multi-byte messages", () => {
      const text = emoji.repeat(4096) + "é".repeat(3000)
      const message: ChatMessage.ServerMessage = { type: "message", from: "a@b", text }
      const frame = Result.getOrThrow(ChatMessage.encodeServerFrame(message))
      const [payload] = Result.getOrThrow(LengthPrefixedFraming.decodeAll(frame))
      assert.deepStrictEqual(ChatMessage.decodeServerMessage(payload), Result.succeed(message))
      // Smaller messages afterwards are not polluted by what the larger one left in any scratch space.
      const small = Result.getOrThrow(ChatMessage.encodeServerFrame({ type: "shutdown" }))
      assert.strictEqual(asText(small.subarray(4)), `{"type":"shutdown"}`)
    })

    it("frames messages of any size, even beyond the default frame limit", () => {
      const message: ChatMessage.ServerMessage = { type: "message", from: "a@b", text: "ü".repeat(70000) }
      const frame = Result.getOrThrow(ChatMessage.encodeServerFrame(message))
      const [payload] = Result.getOrThrow(LengthPrefixedFraming.decodeAll(frame, { maxFrameBytes: frame.length }))
      const expected = LengthPrefixedFraming.encodeFrame(Result.getOrThrow(ChatMessage.encodeServerMessage(message)))
      assert.deepStrictEqual(frame, expected)
      assert.deepStrictEqual(ChatMessage.decodeServerMessage(payload), Result.succeed(message))
    })

    it("round-trips through the framing decoder (property)", () => {
      fc.assert(
        fc.property(fc.array(serverMessageArbitrary, { maxLength: 5 }), (messages) => {
          const wire = LengthPrefixedFraming.encodeFrames(
            messages.map((message) => Result.getOrThrow(ChatMessage.encodeServerMessage(message)))
          )
          const frames = messages.map((message) => Result.getOrThrow(ChatMessage.encodeServerFrame(message)))
          assert.deepStrictEqual(Uint8Array.from(frames.flatMap((frame) => [...frame])), wire)
          const decoded = Result.getOrThrow(LengthPrefixedFraming.decodeAll(wire)).map((payload) =>
            Result.getOrThrow(ChatMessage.decodeServerMessage(payload))
          )
          assert.deepStrictEqual(decoded, messages)
        }),
        { numRuns: 300 }
      )
    })

    it("fails like encodeServerMessage", () => {
      assert.strictEqual(
        failureOf(ChatMessage.encodeServerFrame({ type: "left", client: "a", count: 0.5 })).kind,
        "invalid_field"
      )
    })
  })

  describe("errorMessage", () => {
    it("builds an error message, leaving detail out when absent", () => {
      assert.deepStrictEqual(ChatMessage.errorMessage("name_taken"), { type: "error", code: "name_taken" })
      assert.deepStrictEqual(ChatMessage.errorMessage("bad_message", "why"), {
        type: "error",
        code: "bad_message",
        detail: "why"
      })
      assert.isFalse("detail" in ChatMessage.errorMessage("slow_consumer", undefined))
    })
  })

  describe("errorMessageOf", () => {
    it("answers a decoding failure with its reason and detail", () => {
      const error = failureOf(ChatMessage.decodeClientMessage(json({ type: "login", name: "a@b" })))
      assert.deepStrictEqual(
        ChatMessage.errorMessageOf(error),
        Option.some({ type: "error" as const, code: "bad_name" as const, detail: "name: Expected no \"@\"" })
      )
    })

    it("answers framing failures with the bare wire code, byte for byte", () => {
      const tooLarge = new LengthPrefixedFraming.FramingError({ reason: "frame_too_large", length: 70000 })
      const message = Option.getOrThrow(ChatMessage.errorMessageOf(tooLarge))
      assert.strictEqual(
        asText(Result.getOrThrow(ChatMessage.encodeServerMessage(message))),
        `{"type":"error","code":"frame_too_large"}`
      )
      const empty = new LengthPrefixedFraming.FramingError({ reason: "empty_frame", length: 0 })
      assert.deepStrictEqual(
        ChatMessage.errorMessageOf(empty),
        Option.some({ type: "error" as const, code: "empty_frame" as const })
      )
    })

    it("has no answer for a truncated frame: the peer is gone", () => {
      const truncated = new LengthPrefixedFraming.FramingError({ reason: "truncated_frame", length: 9, received: 5 })
      assert.isTrue(Option.isNone(ChatMessage.errorMessageOf(truncated)))
    })
  })

  describe("ChatMessageError", () => {
    it("has a readable message", () => {
      const error = new ChatMessage.ChatMessageError({ reason: "bad_name", kind: "invalid_field", detail: "name: x" })
      assert.strictEqual(error.message, "bad_name: name: x")
      assert.instanceOf(error, Error)
    })
  })

  describe("ClientMessageFromBytes", () => {
    it("decodes and encodes the wire contract", () => {
      const schema = ChatMessage.ClientMessageFromBytes
      assert.deepStrictEqual(
        Schema.decodeUnknownResult(schema)(utf8(`{"type":"say","text":"x","y":1}`)),
        Result.succeed({ type: "say", text: "x" })
      )
      assert.isTrue(Result.isFailure(Schema.decodeUnknownResult(schema)(bytes(0xff))))
      assert.isTrue(Result.isFailure(Schema.decodeUnknownResult(schema)(json({ type: "login", name: "server" }))))
      assert.deepStrictEqual(
        Result.map(Schema.encodeUnknownResult(schema)({ type: "login", name: "bob" }), asText),
        Result.succeed(`{"type":"login","name":"bob"}`)
      )
    })
  })

  describe("ServerMessageFromBytes", () => {
    it("decodes and encodes the wire contract", () => {
      const schema = ChatMessage.ServerMessageFromBytes
      for (const [message, wire] of validServerMessages) {
        assert.deepStrictEqual(Schema.decodeUnknownResult(schema)(utf8(wire)), Result.succeed(message))
        assert.deepStrictEqual(Result.map(Schema.encodeUnknownResult(schema)(message), asText), Result.succeed(wire))
      }
    })
  })

  describe("Utf8String", () => {
    it("rejects invalid UTF-8 instead of replacing it", () => {
      const decode = Schema.decodeUnknownResult(ChatMessage.Utf8String)
      assert.deepStrictEqual(decode(utf8("héllo")), Result.succeed("héllo"))
      assert.isTrue(Result.isFailure(decode(bytes(0x68, 0xff))))
    })
  })
})

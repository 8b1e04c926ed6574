/**
 * effect's `HttpServerRequest` over a netkit exchange: the parsed head (headers made on first use), the body pulled
 * from the connection, multipart through effect's own parser, and `upgrade`. `modify` makes another view of the same
 * exchange, so the body is shared by every view.
 */
import { Effect, Inspectable, Option, Stream } from "effect"
import type { FileSystem, Path, Schema, Scope } from "effect"
import {
  Cookies,
  Headers,
  HttpIncomingMessage,
  HttpServerError,
  HttpServerRequest,
  Multipart,
  UrlParams
} from "effect/http"
import type { Socket } from "effect/socket"
import type { Exchange } from "./exchange.ts"
import { upgradeWith } from "./upgrade.ts"
import type { UpgradeContext } from "./upgrade.ts"

const textDecoder = new TextDecoder()
const formDecoder = new TextDecoder("utf-8", { ignoreBOM: true })

/** What `modify` can change. */
interface Overrides {
  readonly url?: string | undefined
  readonly headers?: Headers.Headers | undefined
  readonly remoteAddress?: Option.Option<string> | undefined
  readonly peerAddress?: Option.Option<string> | undefined
  readonly protocol?: "http" | "https" | undefined
}

const parseFailure = (request: HttpServerRequest.HttpServerRequest, cause: unknown) =>
  new HttpServerError.HttpServerError({ reason: new HttpServerError.RequestParseError({ request, cause }) })

/** One view of a request. */
export class ServerRequest extends Inspectable.Class implements HttpServerRequest.HttpServerRequest {
  readonly [HttpServerRequest.TypeId]: typeof HttpServerRequest.TypeId = HttpServerRequest.TypeId
  readonly [HttpIncomingMessage.TypeId]: typeof HttpIncomingMessage.TypeId = HttpIncomingMessage.TypeId
  readonly exchange: Exchange
  readonly upgrades: UpgradeContext
  readonly overrides: Overrides | undefined
  #cookies: Record<string, string> | undefined = undefined

  constructor(exchange: Exchange, upgrades: UpgradeContext, overrides?: Overrides) {
    super()
    this.exchange = exchange
    this.upgrades = upgrades
    this.overrides = overrides
  }

  /** The parsed head (`RequestHead.HttpRequestHead`). */
  get source(): object {
    return this.exchange.head
  }

  get method(): string {
    return this.exchange.method
  }

  get url(): string {
    return this.overrides?.url ?? this.exchange.location.url
  }

  get originalUrl(): string {
    return this.exchange.originalUrl
  }

  get protocol(): "http" | "https" | undefined {
    return this.overrides?.protocol
  }

  get headers(): Headers.Headers {
    return this.overrides?.headers ?? this.exchange.headers
  }

  get cookies(): Record<string, string> {
    return this.#cookies ??= Cookies.parseHeader(this.headers.cookie ?? "")
  }

  get remoteAddress(): Option.Option<string> {
    const overrides = this.overrides
    return overrides !== undefined && "remoteAddress" in overrides
      ? overrides.remoteAddress ?? Option.none()
      : this.exchange.remoteAddress
  }

  get peerAddress(): Option.Option<string> {
    return this.overrides?.peerAddress ?? this.remoteAddress
  }

  get stream(): Stream.Stream<Uint8Array, HttpServerError.HttpServerError> {
    return this.exchange.stream(this)
  }

  get arrayBuffer(): Effect.Effect<ArrayBuffer, HttpServerError.HttpServerError> {
    return this.exchange.arrayBuffer(this)
  }

  get text(): Effect.Effect<string, HttpServerError.HttpServerError> {
    return Effect.map(this.arrayBuffer, (buffer) => textDecoder.decode(buffer))
  }

  get json(): Effect.Effect<Schema.Json, HttpServerError.HttpServerError> {
    return Effect.flatMap(this.text, (text) =>
      Effect.try({
        try: () => text === "" ? null : JSON.parse(text),
        catch: (cause) => parseFailure(this, cause)
      }))
  }

  get urlParamsBody(): Effect.Effect<UrlParams.UrlParams, HttpServerError.HttpServerError> {
    return Effect.flatMap(this.arrayBuffer, (buffer) =>
      Effect.try({
        // a leading "?" is form data; URLSearchParams would drop it as a query prefix
        try: () => UrlParams.fromInput(new URLSearchParams(formDecoder.decode(buffer).replace(/^\?/, "%3F"))),
        catch: (cause) => parseFailure(this, cause)
      }))
  }

  get multipartStream(): Stream.Stream<Multipart.Part, Multipart.MultipartError> {
    return Stream.pipeThroughChannel(
      Stream.mapError(this.stream, (error) =>
        Multipart.MultipartError.fromReason(
          error.reason._tag === "RequestParseError" && error.reason.reason === "BodyTooLarge"
            ? "BodyTooLarge"
            : "InternalError",
          error
        )),
      Multipart.makeChannel(this.headers)
    )
  }

  get multipart(): Effect.Effect<
    Multipart.Persisted,
    Multipart.MultipartError,
    Scope.Scope | FileSystem.FileSystem | Path.Path
  > {
    const exchange = this.exchange
    exchange.multipart ??= Effect.runSync(Effect.cached(Multipart.toPersisted(this.multipartStream)))
    return exchange.multipart as Effect.Effect<
      Multipart.Persisted,
      Multipart.MultipartError,
      Scope.Scope | FileSystem.FileSystem | Path.Path
    >
  }

  get upgrade(): Effect.Effect<Socket.Socket, HttpServerError.HttpServerError> {
    return this.upgradeWith({})
  }

  upgradeWith(
    options: { readonly headers?: Headers.Input | undefined }
  ): Effect.Effect<Socket.Socket, HttpServerError.HttpServerError> {
    return upgradeWith(this.exchange, this, Headers.fromInput(options.headers), this.upgrades)
  }

  modify(options: Overrides): ServerRequest {
    const previous = this.overrides
    return new ServerRequest(this.exchange, this.upgrades, {
      url: options.url ?? previous?.url,
      headers: options.headers ?? previous?.headers,
      peerAddress: options.peerAddress ?? previous?.peerAddress,
      protocol: options.protocol ?? previous?.protocol,
      ...("remoteAddress" in options
        ? { remoteAddress: options.remoteAddress }
        : previous !== undefined && "remoteAddress" in previous
        ? { remoteAddress: previous.remoteAddress }
        : {})
    })
  }

  override toString(): string {
    return `ServerRequest(${this.method} ${UrlParams.redactUrl(this.url)})`
  }

  toJSON(): unknown {
    return HttpIncomingMessage.inspect(this, {
      _id: "HttpServerRequest",
      method: this.method,
      url: UrlParams.redactUrl(this.originalUrl)
    })
  }
}

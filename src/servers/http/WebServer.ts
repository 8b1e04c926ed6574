/**
 * The "epoll web server" of the examples: every request gets `200`, `Content-Type: text/plain` and the body
 * `Hello from Epoll Server`, once the whole request has been read: a body that is malformed or cut short gets the
 * parser's status (`HttpRequestError`) and the connection closes. One response object serves every request, so the
 * server encodes it once per second; a request without a body is answered with a ready value, in the read event.
 */
import { Effect } from "effect"
import type * as HttpRequest from "./HttpRequest.ts"
import * as HttpResponse from "./HttpResponse.ts"
import * as HttpServer from "./HttpServer.ts"

/**
 * The body every request gets.
 * @category constants
 */
export const greeting = "Hello from Epoll Server"

const hello = HttpResponse.text(greeting, { contentType: "text/plain" })
const answer = Effect.succeed(hello)

const respond = (request: HttpRequest.HttpRequest) => request.hasBody ? Effect.as(request.discard, hello) : answer

/**
 * The web server handler, loadable by reference (fork and worker strategies).
 * @category handlers
 */
export const webServer = HttpServer.define(respond, { name: "web", module: import.meta.url, export: "webServer" })

/**
 * The "epoll web server" of the examples: every request gets `200`, `Content-Type: text/plain` and the body
 * `Hello from Epoll Server`. One response object serves every request, so the server encodes it once per second.
 */
import { Effect } from "effect"
import * as HttpResponse from "./HttpResponse.ts"
import * as HttpServer from "./HttpServer.ts"

/**
 * The body every request gets.
 * @category constants
 */
export const greeting = "Hello from Epoll Server"

const hello = HttpResponse.text(greeting, { contentType: "text/plain" })
const answer = Effect.succeed(hello)

/**
 * The web server handler, loadable by reference (fork and worker strategies).
 * @category handlers
 */
export const webServer = HttpServer.define(() => answer, { name: "web", module: import.meta.url, export: "webServer" })

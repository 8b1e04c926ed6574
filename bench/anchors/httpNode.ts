/**
 * Anchor: Node's own `node:http` server answering every request with `200`, `Content-Type: text/plain` and
 * `Hello from Epoll Server`, the same response as `examples/web-server.ts`. `--keep-alive-ms N` replaces Node's
 * 5 s keep-alive timeout (the connections benchmark keeps connections idle for longer). With `--tls-cert` and
 * `--tls-key` it is `node:https` instead, with ALPN `http/1.1`, as the web server with the same flags.
 */
import { readFileSync } from "node:fs"
import * as http from "node:http"
import * as https from "node:https"
import type { AddressInfo } from "node:net"
import { parseArgs } from "node:util"
import { announce, exitWith, hostPort } from "./common.ts"

const { host, port } = hostPort()
const { values } = parseArgs({
  options: { "keep-alive-ms": { type: "string" }, "tls-cert": { type: "string" }, "tls-key": { type: "string" } },
  strict: false
})
const keepAlive = values["keep-alive-ms"]
const body = Buffer.from("Hello from Epoll Server")

const respond = (_request: http.IncomingMessage, response: http.ServerResponse) => {
  response.writeHead(200, { "Content-Type": "text/plain", "Content-Length": body.length })
  response.end(body)
}

const server = typeof values["tls-cert"] === "string" && typeof values["tls-key"] === "string"
  ? https.createServer({
    cert: readFileSync(values["tls-cert"]),
    key: readFileSync(values["tls-key"]),
    ALPNProtocols: ["http/1.1"]
  }, respond)
  : http.createServer(respond)
if (keepAlive !== undefined) server.keepAliveTimeout = Number(keepAlive)

server.listen(port, host, () => {
  const address = server.address() as AddressInfo
  announce(address.address, address.port)
})

exitWith(() => server.close())

/**
 * Anchor: Node's own `node:http` server answering every request with `200`, `Content-Type: text/plain` and
 * `Hello from Epoll Server`, the same response as `examples/web-server.ts`. `--keep-alive-ms N` replaces Node's
 * 5 s keep-alive timeout (the connections benchmark keeps connections idle for longer).
 */
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { parseArgs } from "node:util"
import { announce, exitWith, hostPort } from "./common.ts"

const { host, port } = hostPort()
const keepAlive = parseArgs({ options: { "keep-alive-ms": { type: "string" } }, strict: false }).values["keep-alive-ms"]
const body = Buffer.from("Hello from Epoll Server")

const server = http.createServer({ ...(keepAlive === undefined ? {} : { keepAliveTimeout: Number(keepAlive) }) }, (_request, response) => {
  response.writeHead(200, { "Content-Type": "text/plain", "Content-Length": body.length })
  response.end(body)
})

server.listen(port, host, () => {
  const address = server.address() as AddressInfo
  announce(address.address, address.port)
})

exitWith(() => server.close())

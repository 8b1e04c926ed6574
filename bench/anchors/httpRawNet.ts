/**
 * Reference: a raw `node:net` server that writes one canned HTTP response per request it sees (it counts the
 * `\r\n\r\n` that end request heads, bodies are not supported). No parsing, no framework: the ceiling for a
 * Node process answering this workload.
 */
import * as net from "node:net"
import type { AddressInfo } from "node:net"
import { announce, exitWith, hostPort } from "./common.ts"

const { host, port } = hostPort()
const canned = Buffer.from(
  "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 23\r\n\r\nHello from Epoll Server",
  "latin1"
)

const server = net.createServer({ noDelay: true }, (socket) => {
  socket.on("error", () => socket.destroy())
  // how many bytes of "\r\n\r\n" the previous chunk ended with
  let matched = 0
  socket.on("data", (chunk: Buffer) => {
    let count = 0
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i]
      if (c === (matched % 2 === 0 ? 0x0d : 0x0a)) {
        if (++matched === 4) {
          count++
          matched = 0
        }
      } else matched = c === 0x0d ? 1 : 0
    }
    if (count === 1) socket.write(canned)
    else if (count > 1) {
      const out = Buffer.allocUnsafe(canned.length * count)
      for (let i = 0; i < count; i++) canned.copy(out, i * canned.length)
      socket.write(out)
    }
  })
})

server.listen(port, host, () => {
  const address = server.address() as AddressInfo
  announce(address.address, address.port)
})

exitWith(() => server.close())

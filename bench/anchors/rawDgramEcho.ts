/**
 * Anchor: plain `node:dgram` UDP echo, each datagram sent back to its sender.
 * The project's UDP echo server is compared against this in the same run.
 */
import * as dgram from "node:dgram"
import { announce, exitWith, hostPort } from "./common.ts"

const { host, port } = hostPort()

const socket = dgram.createSocket("udp4")
socket.on("message", (message, remote) => {
  socket.send(message, remote.port, remote.address)
})
// Sends to a client that has already gone fail with ECONNREFUSED; keep serving.
socket.on("error", () => {})

socket.bind(port, host, () => {
  const address = socket.address()
  announce(address.address, address.port)
})

exitWith(() => socket.close())

/**
 * Anchor: the fastest plain `node:net` TCP echo, `socket.pipe(socket)`.
 * The project's TCP echo server is compared against this in the same run.
 */
import * as net from "node:net"
import type { AddressInfo } from "node:net"
import { announce, exitWith, hostPort } from "./common.ts"

const { host, port } = hostPort()

// noDelay: small-message round trips must not wait on Nagle/delayed ACK.
const server = net.createServer({ noDelay: true }, (socket) => {
  // A client vanishing (reset at the end of a run) is normal, not a crash.
  socket.on("error", () => socket.destroy())
  socket.pipe(socket)
})

server.listen(port, host, () => {
  const address = server.address() as AddressInfo
  announce(address.address, address.port)
})

exitWith(() => server.close())

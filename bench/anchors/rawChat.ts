/**
 * Anchor: the least a `node:net` server can do and still speak the chat protocol the load generator uses
 * (`login` -> `welcome` + `joined`, `say` relayed as `message` to every other client, `left` on close): a
 * hand-written u32 frame splitter, `JSON.parse`, and one frame encoded per message and written to every other
 * socket. No validation, limits or slow-consumer handling; the project's chat server is compared against it.
 *
 * `--cork` batches like the project's server does: the frames one read produces for a socket are corked and
 * flushed together (one writev) when the read is done, instead of one send per frame.
 */
import * as net from "node:net"
import type { AddressInfo } from "node:net"
import { announce, exitWith, hostPort } from "./common.ts"

const { host, port } = hostPort()
const cork = process.argv.includes("--cork")
const corked = new Set<net.Socket>()

interface Member {
  readonly socket: net.Socket
  readonly identity: string
}

const members = new Set<Member>()

const encode = (message: unknown): Buffer => {
  const payload = Buffer.from(JSON.stringify(message))
  const frame = Buffer.allocUnsafe(4 + payload.length)
  frame.writeUInt32BE(payload.length, 0)
  payload.copy(frame, 4)
  return frame
}

const broadcast = (frame: Buffer, except: Member | undefined): void => {
  for (const member of members) {
    if (member === except) continue
    if (cork && !corked.has(member.socket)) {
      member.socket.cork()
      corked.add(member.socket)
    }
    member.socket.write(frame)
  }
}

const uncorkAll = (): void => {
  for (const socket of corked) socket.uncork()
  corked.clear()
}

// noDelay: small frames must not wait on Nagle/delayed ACK.
const server = net.createServer({ noDelay: true }, (socket) => {
  const address = (socket.remoteAddress ?? "local").replace(/^::ffff:/, "")
  let self: Member | undefined
  let rest: Buffer | undefined

  const onMessage = (message: { type?: unknown; name?: unknown; text?: unknown }) => {
    if (message.type === "login" && self === undefined) {
      self = { socket, identity: `${String(message.name)}@${address}` }
      members.add(self)
      socket.write(encode({ type: "welcome", name: self.identity, address, count: members.size }))
      broadcast(encode({ type: "joined", client: self.identity, count: members.size }), self)
    } else if (message.type === "say" && self !== undefined) {
      broadcast(encode({ type: "message", from: self.identity, text: message.text }), self)
    }
  }

  socket.on("data", (chunk: Buffer) => {
    const buffer = rest === undefined ? chunk : Buffer.concat([rest, chunk])
    let offset = 0
    while (buffer.length - offset >= 4) {
      const length = buffer.readUInt32BE(offset)
      if (length === 0 || length > 65536) {
        uncorkAll()
        return socket.destroy()
      }
      if (buffer.length - offset - 4 < length) break
      onMessage(JSON.parse(buffer.toString("utf8", offset + 4, offset + 4 + length)))
      offset += 4 + length
    }
    rest = offset === buffer.length ? undefined : buffer.subarray(offset)
    if (cork) uncorkAll()
  })
  // A client vanishing (reset at the end of a run) is normal, not a crash.
  socket.on("error", () => socket.destroy())
  socket.on("close", () => {
    if (self === undefined || !members.delete(self)) return
    broadcast(encode({ type: "left", client: self.identity, count: members.size }), undefined)
  })
})

server.listen(port, host, () => {
  const address = server.address() as AddressInfo
  announce(address.address, address.port)
})

exitWith(() => server.close())

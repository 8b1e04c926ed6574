/**
 * Raw HTTP/1.1 clients for the server tests: write exact bytes, read back responses parsed just enough to check
 * status, headers, framing and body, and see whether the server closed the connection. Every wait is bounded.
 */
import { Buffer } from "node:buffer"
import * as Net from "node:net"

/** A response as read off the wire. */
export interface WireResponse {
  readonly status: number
  readonly headers: Record<string, string>
  readonly body: string
  readonly chunked: boolean
}

/** Parses complete responses from `buf`; `methods` says which requests they answer (HEAD has no body). */
export const parseResponses = (
  buf: Buffer,
  methods: ReadonlyArray<string>,
  closed: boolean
): { readonly responses: Array<WireResponse>; readonly rest: number } => {
  const responses: Array<WireResponse> = []
  let offset = 0
  for (;;) {
    const headEnd = buf.indexOf("\r\n\r\n", offset, "latin1")
    if (headEnd < 0) break
    const lines = buf.toString("latin1", offset, headEnd).split("\r\n")
    const status = Number(lines[0]!.split(" ")[1])
    const headers: Record<string, string> = {}
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(":")
      headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim()
    }
    let p = headEnd + 4
    if (status < 200) {
      responses.push({ status, headers, body: "", chunked: false })
      offset = p
      continue
    }
    const method = methods[responses.filter((r) => r.status >= 200).length] ?? "GET"
    if (method === "HEAD" || status === 204 || status === 304) {
      responses.push({ status, headers, body: "", chunked: false })
      offset = p
      continue
    }
    if (headers["transfer-encoding"] === "chunked") {
      const parts: Array<Buffer> = []
      let complete = false
      for (;;) {
        const lineEnd = buf.indexOf("\r\n", p, "latin1")
        if (lineEnd < 0) break
        const size = parseInt(buf.toString("latin1", p, lineEnd), 16)
        if (size === 0) {
          if (buf.length < lineEnd + 4) break
          p = lineEnd + 4
          complete = true
          break
        }
        if (buf.length < lineEnd + 2 + size + 2) break
        parts.push(buf.subarray(lineEnd + 2, lineEnd + 2 + size))
        p = lineEnd + 2 + size + 2
      }
      if (!complete) break
      responses.push({ status, headers, body: Buffer.concat(parts).toString("utf8"), chunked: true })
      offset = p
      continue
    }
    if (headers["content-length"] !== undefined) {
      const length = Number(headers["content-length"])
      if (buf.length < p + length) break
      responses.push({ status, headers, body: buf.toString("utf8", p, p + length), chunked: false })
      offset = p + length
      continue
    }
    // no framing: the body runs to the close
    if (!closed) break
    responses.push({ status, headers, body: buf.toString("utf8", p), chunked: false })
    offset = buf.length
  }
  return { responses, rest: offset }
}

/** A connected raw client that accumulates what it receives. */
export interface Client {
  readonly socket: Net.Socket
  readonly send: (data: string | Uint8Array) => void
  /** Waits until `count` responses (1xx included) arrived; fails on timeout. */
  readonly responses: (count: number, methods?: ReadonlyArray<string>, timeoutMs?: number) => Promise<Array<WireResponse>>
  /** Resolves once the server closed the connection; fails after the timeout. */
  readonly closed: (timeoutMs?: number) => Promise<void>
  readonly isClosed: () => boolean
  readonly received: () => Buffer
  readonly destroy: () => void
}

export const connect = (port: number): Promise<Client> =>
  new Promise((resolve, reject) => {
    const socket = Net.connect({ host: "127.0.0.1", port })
    const chunks: Array<Buffer> = []
    let ended = false
    const waiters = new Set<() => void>()
    const notify = () => waiters.forEach((w) => w())
    socket.on("data", (chunk: Buffer) => {
      chunks.push(chunk)
      notify()
    })
    socket.on("end", () => {
      ended = true
      notify()
    })
    socket.on("close", () => {
      ended = true
      notify()
    })
    socket.on("error", () => {
      ended = true
      notify()
    })
    const received = () => Buffer.concat(chunks)
    const waitUntil = <A>(check: () => A | undefined, timeoutMs: number, what: () => string) =>
      new Promise<A>((res, rej) => {
        const run = () => {
          try {
            const value = check()
            if (value !== undefined) {
              cleanup()
              res(value)
            }
          } catch (error) {
            cleanup()
            rej(error)
          }
        }
        const timer = setTimeout(() => {
          cleanup()
          rej(new Error(`timed out waiting for ${what()}`))
        }, timeoutMs)
        const cleanup = () => {
          clearTimeout(timer)
          waiters.delete(run)
        }
        waiters.add(run)
        run()
      })
    socket.once("connect", () =>
      resolve({
        socket,
        send: (data) => socket.write(data),
        responses: (count, methods = [], timeoutMs = 10_000) =>
          waitUntil(() => {
            const { responses } = parseResponses(received(), methods, ended)
            if (responses.length >= count) return responses
            if (ended) throw new Error(`closed after ${responses.length} of ${count} responses: ${received().toString("latin1").slice(0, 300)}`)
            return undefined
          }, timeoutMs, () => `${count} responses, got: ${received().toString("latin1").slice(-300)}`),
        closed: (timeoutMs = 10_000) => waitUntil(() => (ended ? true : undefined), timeoutMs, () => "close").then(() => undefined),
        isClosed: () => ended,
        received,
        destroy: () => socket.destroy()
      }))
    socket.once("error", reject)
  })

/** `GET path` with a Host header and any extra header lines. */
export const get = (path: string, extra = "", method = "GET"): string =>
  `${method} ${path} HTTP/1.1\r\nHost: test\r\n${extra}\r\n`

/** Waits `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

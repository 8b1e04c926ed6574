import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import type { Layer } from "effect"
import type { NetAddress } from "effect/net"
import * as Https from "node:https"
import * as ForkStrategy from "../../../src/core/ForkStrategy.ts"
import * as Strategy from "../../../src/core/Strategy.ts"
import * as Tls from "../../../src/core/Tls.ts"
import * as Transport from "../../../src/core/Transport.ts"
import * as WorkerStrategy from "../../../src/core/WorkerStrategy.ts"
import * as HttpServer from "../../../src/servers/http/HttpServer.ts"
import * as Apps from "../../fixtures/httpApps.ts"
import * as Certificates from "../../utils/certificates.ts"
import * as TlsPeers from "../../utils/tlsPeers.ts"

const portOf = (address: NetAddress.SocketAddress) => (address as NetAddress.InetAddress).port

const strategies: ReadonlyArray<readonly [string, () => Layer.Layer<Strategy.Strategy>]> = [
  ["fiber", () => Strategy.layerFiber()],
  ["sequential", () => Strategy.layerSequential],
  ["fork pool", () => ForkStrategy.layerPool({ size: 2 })],
  ["worker pool", () => WorkerStrategy.layer({ size: 2 })]
]

/** `curl` with a bounded run time; `-w` prints status, connections opened and HTTP version per URL. */
const curl = (args: ReadonlyArray<string>) =>
  Effect.promise(() =>
    TlsPeers.run("curl", ["-sS", "--max-time", "15", "-w", "\n%{http_code} %{num_connects} %{http_version}\n", ...args])
  )

const startHttps = (strategy: Layer.Layer<Strategy.Strategy>) =>
  Effect.gen(function*() {
    const certs = yield* Certificates.make
    const tls = yield* Tls.make({ key: certs.server.key, cert: certs.server.cert, alpn: HttpServer.alpnProtocols })
    const server = yield* TlsPeers.startServer(Transport.tcp(), tls, strategy, Apps.app)
    return { certs, port: portOf(server.address) }
  })

describe("HTTPS", () => {
  for (const [name, strategy] of strategies) {
    it.live(`${name}: curl --cacert gets answers over one kept-alive connection, ALPN http/1.1`, () =>
      Effect.gen(function*() {
        const { certs, port } = yield* startHttps(strategy())
        const base = `https://localhost:${port}`
        const result = yield* curl([
          "-v",
          "--cacert",
          certs.ca.certPath,
          "--resolve",
          `localhost:${port}:127.0.0.1`,
          `${base}/hello`,
          `${base}/query?a=1`,
          "--data",
          "over tls",
          `${base}/text`
        ])
        assert.strictEqual(result.code, 0, result.stderr)
        const lines = result.stdout.split("\n")
        assert.deepStrictEqual(lines.filter((line) => /^\d{3} \d+ /.test(line)), ["200 1 1.1", "200 0 1.1", "200 0 1.1"])
        assert.include(result.stdout, "hello")
        assert.include(result.stdout, "got over tls")
        assert.include(result.stderr, "ALPN: server accepted http/1.1")
      }))
  }

  it.live("curl trusting another CA is refused (exit 60); plain HTTP on the port gets no answer; the server goes on", () =>
    Effect.gen(function*() {
      const { certs, port } = yield* startHttps(Strategy.layerFiber())
      const untrusted = yield* curl(["--cacert", certs.otherCa.certPath, `https://127.0.0.1:${port}/hello`])
      assert.strictEqual(untrusted.code, 60)
      const plain = yield* curl([`http://127.0.0.1:${port}/hello`])
      assert.notStrictEqual(plain.code, 0)
      assert.notInclude(plain.stdout, "hello")
      const ok = yield* curl(["--cacert", certs.ca.certPath, `https://127.0.0.1:${port}/hello`])
      assert.strictEqual(ok.code, 0, ok.stderr)
      assert.include(ok.stdout, "hello")
    }))

  it.live("node:https with the CA gets the answer", () =>
    Effect.gen(function*() {
      const { certs, port } = yield* startHttps(Strategy.layerFiber())
      const body = yield* Effect.promise(() =>
        new Promise<string>((resolve, reject) => {
          const request = Https.request(
            { host: "127.0.0.1", port, path: "/json", method: "POST", servername: "localhost", ca: certs.ca.cert, timeout: 10_000 },
            (response) => {
              const chunks: Array<Buffer> = []
              response.on("data", (chunk: Buffer) => chunks.push(chunk))
              response.on("end", () => resolve(Buffer.concat(chunks).toString()))
            }
          )
          request.on("error", reject)
          request.on("timeout", () => request.destroy(new Error("timed out")))
          request.end(JSON.stringify({ x: 2, y: 3 }))
        })
      )
      assert.deepStrictEqual(JSON.parse(body), { sum: 5 })
    }))
})

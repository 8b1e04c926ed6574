/**
 * `@effect/platform-node` for the conformance run: everything is the real package, except that `NodeHttpServer`'s
 * `layer` and `layerTest` serve on the netkit engine (`EffectHttpServer`). The strategy comes from
 * `NETKIT_STRATEGY` (`sequential` or `fiber`, the default): upstream tests hand the server closures, which only
 * in-process strategies can run. `NETKIT_STRATEGY=node` keeps effect's own `NodeHttpServer`: the baseline, which
 * shows what the suite makes of the installed effect version.
 *
 * `vitest.config.ts` aliases the bare specifier `@effect/platform-node` to this file; subpath imports
 * (`@effect/platform-node/NodeSocket`, ...) stay the real ones.
 */
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type { LazyArg } from "effect/Function"
import { HttpServer } from "effect/http"
import * as Layer from "effect/Layer"
import * as NetAddress from "effect/net/NetAddress"
import type * as Http from "node:http"
// the real package, past the alias
import * as Real from "../node_modules/@effect/platform-node/dist/index.js"
import * as Strategy from "../src/core/Strategy.ts"
import * as Transport from "../src/core/Transport.ts"
import * as EffectHttpServer from "../src/servers/effect-http/EffectHttpServer.ts"

export * from "../node_modules/@effect/platform-node/dist/index.js"

const strategyName = process.env.NETKIT_STRATEGY ?? "fiber"

const strategy = (): Layer.Layer<Strategy.Strategy> => {
  switch (strategyName) {
    case "sequential":
      return Strategy.layerSequential
    case "fiber":
      return Strategy.layerFiber()
    default:
      throw new Error(`NETKIT_STRATEGY must be node, sequential or fiber (closures cannot cross to ${strategyName})`)
  }
}

/** The listen options of `NodeHttpServer.layer` that matter here. */
interface ListenOptions {
  readonly host?: string | undefined
  readonly port?: number | undefined
  readonly path?: string | undefined
  readonly gracefulShutdownTimeout?: Duration.Input | undefined
  readonly websocket?: EffectHttpServer.Options["websocket"]
}

const layerOptions = (options: ListenOptions): EffectHttpServer.LayerOptions => ({
  transport: options.path !== undefined
    ? Transport.unix({ path: options.path })
    : Transport.tcp({ host: options.host ?? "127.0.0.1", port: options.port ?? 0 }),
  strategy: strategy(),
  gracefulShutdownTimeout: options.gracefulShutdownTimeout,
  websocket: options.websocket
})

/**
 * Some tests create the Node server they pass to `layer` and ask it for its port. It never listens here, so it is
 * made to report the address our server is bound to (and to be listening), which is what those tests want to know.
 */
const reportAddress = (evaluate: LazyArg<unknown>) => (context: Context.Context<HttpServer.HttpServer>) =>
  Effect.sync(() => {
    const node = evaluate() as Http.Server
    const address = Context.get(context, HttpServer.HttpServer).address
    if (!NetAddress.isInetAddress(address)) return
    const info = {
      address: NetAddress.formatIp(address.address),
      family: address._tag === "InetAddressV4" ? "IPv4" : "IPv6",
      port: address.port
    }
    node.address = () => info
    Object.defineProperty(node, "listening", { get: () => true, configurable: true })
    node.emit("listening")
  })

/** `NodeHttpServer` with `layer` and `layerTest` on the netkit engine. */
export const NodeHttpServer = strategyName === "node" ? Real.NodeHttpServer : {
  ...Real.NodeHttpServer,
  layer: (evaluate: LazyArg<unknown>, options: ListenOptions) =>
    EffectHttpServer.layer(layerOptions(options)).pipe(Layer.tap(reportAddress(evaluate))),
  layerTest: EffectHttpServer.layerTestWith({ strategy: strategy() })
}

/**
 * The strategies benchmark's server: `cpuHandler` over TCP under one strategy, in one process.
 *
 *   node bench/targets/cpuServer.ts --strategy fiber|fork|worker|fork-per-connection
 *     [--workers 2] [--rounds 4000] [--host 127.0.0.1] [--port 0]
 *
 * `--workers` sizes the fork pool and the worker pool; `fork-per-connection` forks a child per
 * connection. `--rounds` is the hashing per request (see `cpuHandler.ts`). Prints
 * `listening on HOST:PORT` once bound; SIGTERM stops it gracefully (exit 0).
 */
import { Console, Context, Effect, Layer } from "effect"
import { NetAddress } from "effect/net"
import * as ForkStrategy from "../../src/core/ForkStrategy.ts"
import * as Main from "../../src/core/Main.ts"
import * as Server from "../../src/core/Server.ts"
import * as Strategy from "../../src/core/Strategy.ts"
import * as StreamListener from "../../src/core/StreamListener.ts"
import * as Transport from "../../src/core/Transport.ts"
import * as WorkerStrategy from "../../src/core/WorkerStrategy.ts"
import * as Args from "../../examples/internal/Args.ts"
import * as CpuHandler from "./cpuHandler.ts"

/** The strategies this server can run, as the suite names them. */
export const strategies = ["fiber", "fork", "worker", "fork-per-connection"] as const

const flags = {
  strategy: Args.choice(strategies, "fiber"),
  workers: Args.int({ min: 1, max: 64, default: 2 }),
  rounds: Args.int({ min: 0, max: 10_000_000, default: CpuHandler.defaultRounds }),
  host: Args.string("127.0.0.1"),
  port: Args.int({ min: 0, max: 65535, default: 0 })
}

const layerFor = (strategy: typeof strategies[number], workers: number): Layer.Layer<Strategy.Strategy> => {
  switch (strategy) {
    case "fiber":
      return Strategy.layerFiber()
    case "fork":
      return ForkStrategy.layer({ mode: "pool", size: workers })
    case "worker":
      return WorkerStrategy.layer({ size: workers })
    case "fork-per-connection":
      return ForkStrategy.layer({ mode: "perConnection" })
  }
}

const program = Effect.gen(function*() {
  const args = yield* Args.parse(flags)
  // Read by the handler wherever it runs: fork children and worker threads inherit the environment.
  process.env[CpuHandler.roundsVariable] = String(args.rounds)
  const context = yield* Layer.build(
    Server.layer().pipe(Layer.provide([
      StreamListener.layer(Transport.tcp({ host: args.host, port: args.port })),
      layerFor(args.strategy, args.workers)
    ]))
  )
  const server = Context.get(context, Server.Server)
  yield* Console.log(`listening on ${NetAddress.formatSocketAddress(server.address)}`)
  yield* server.serve(CpuHandler.cpuHandler)
}).pipe(Effect.scoped)

Main.runMain(program)

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
import { Effect, Layer } from "effect"
import * as Cli from "../../examples/internal/Cli.ts"
import * as ForkStrategy from "../../src/core/ForkStrategy.ts"
import * as Main from "../../src/core/Main.ts"
import * as Server from "../../src/core/Server.ts"
import * as Strategy from "../../src/core/Strategy.ts"
import * as StreamListener from "../../src/core/StreamListener.ts"
import * as Transport from "../../src/core/Transport.ts"
import * as WorkerStrategy from "../../src/core/WorkerStrategy.ts"
import * as CpuHandler from "./cpuHandler.ts"

/** The strategies this server can run, as the suite names them. */
export const strategies = ["fiber", "fork", "worker", "fork-per-connection"] as const

const flags = {
  strategy: Cli.choice("strategy", strategies, { default: "fiber", description: "how connections run" }),
  workers: Cli.int("workers", { min: 1, max: 64, default: 2, description: "fork/worker pool size" }),
  rounds: Cli.int("rounds", {
    min: 0,
    max: 10_000_000,
    default: CpuHandler.defaultRounds,
    description: "hashing rounds per request"
  }),
  host: Cli.string("host", { default: "127.0.0.1", description: "address to bind" }),
  port: Cli.int("port", { min: 0, max: 65535, default: 0, description: "port to bind; 0 picks a free one" })
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

const cpuServer = Cli.run(
  { name: "cpuServer", description: "The strategies benchmark's server: CPU-bound requests under one strategy." },
  flags,
  (args) => {
    // Read by the handler wherever it runs: fork children and worker threads inherit the environment.
    process.env[CpuHandler.roundsVariable] = String(args.rounds)
    const ServerLive = Server.layer().pipe(Layer.provide([
      StreamListener.layer(Transport.tcp({ host: args.host, port: args.port })),
      layerFor(args.strategy, args.workers)
    ]))
    return Server.serve(CpuHandler.cpuHandler, { onListening: Main.printListening }).pipe(Effect.provide(ServerLive))
  }
)

Main.runMain(cpuServer)

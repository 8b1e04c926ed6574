/**
 * Strategy layers by name, as the example programs' `--strategy` flag selects them.
 */
import type { Layer } from "effect"
import * as Os from "node:os"
import * as ForkStrategy from "../../src/core/ForkStrategy.ts"
import * as Strategy from "../../src/core/Strategy.ts"
import * as WorkerStrategy from "../../src/core/WorkerStrategy.ts"
import * as Cli from "./Cli.ts"

/** The names `--strategy` accepts. */
export const names = ["sequential", "fiber", "fork", "worker"] as const satisfies ReadonlyArray<Strategy.Name>

/** `--strategy` and `--workers`, as every example that serves takes them. */
export const flags = {
  strategy: Cli.choice("strategy", names, { default: "fiber", description: "how connections run" }),
  workers: Cli.int("workers", {
    min: 1,
    max: 1024,
    default: Os.availableParallelism(),
    description: "fork/worker pool size"
  })
}

/** The layer for a strategy name; `workers` sizes the fork and worker pools. */
export const layerFor = (name: Strategy.Name, workers: number): Layer.Layer<Strategy.Strategy> => {
  switch (name) {
    case "sequential":
      return Strategy.layerSequential
    case "fiber":
      return Strategy.layerFiber()
    case "fork":
      return ForkStrategy.layer({ mode: "pool", size: workers })
    case "worker":
      return WorkerStrategy.layer({ size: workers })
  }
}

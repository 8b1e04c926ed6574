/**
 * Strategy layers by name, as the example programs' `--strategy` flag selects them.
 */
import { Effect, Layer } from "effect"
import * as ForkStrategy from "../../src/core/ForkStrategy.ts"
import * as Strategy from "../../src/core/Strategy.ts"
import * as WorkerStrategy from "../../src/core/WorkerStrategy.ts"
import { ArgumentError } from "./Args.ts"

/** The names `--strategy` accepts. */
export const names = ["sequential", "fiber", "fork", "worker"] as const satisfies ReadonlyArray<Strategy.Name>

/** The layer for a strategy name; `workers` sizes the fork and worker pools. */
export const layerFor = (
  name: Strategy.Name,
  workers: number
): Effect.Effect<Layer.Layer<Strategy.Strategy>, ArgumentError> => {
  switch (name) {
    case "sequential":
      return Effect.succeed(Strategy.layerSequential)
    case "fiber":
      return Effect.succeed(Strategy.layerFiber())
    case "fork":
      return Effect.succeed(ForkStrategy.layer({ mode: "pool", size: workers }))
    case "worker":
      return Effect.succeed(WorkerStrategy.layer({ size: workers }))
  }
}

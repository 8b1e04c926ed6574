/**
 * HTTP suite: `examples/web-server.ts` (fiber, and a worker pool of 2) against `node:http` (the anchor), effect's
 * own `NodeHttpServer`, and a raw `node:net` server writing a canned response per request (the ceiling), all
 * answering `200 text/plain "Hello from Epoll Server"`. Load: `wrk` (Debian package `wrk`, installed when missing),
 * the same settings for every target, pinned to the load core while the target is pinned to the server core:
 *
 *   keep-alive   wrk -t1 -c50              one request in flight per connection
 *   pipelined    wrk -t1 -c50 -s pipeline  16 requests per write (bench/wrk/pipeline.lua)
 *
 * Reported: requests/s, p99 latency, server CPU (from /proc, all threads of the server process) per request, and
 * both as ratios to node:http. Every target (the worker pool too) runs on the one server core, so the pool row shows
 * what the strategy costs, not what a second core would add. Targets alternate round by round.
 */
import { ourProgram } from "../lib/system.ts"
import { anchorTarget, BENCH_HOST } from "../lib/target.ts"
import type { TargetSpec } from "../lib/target.ts"
import type { Scenario } from "../lib/wrk.ts"
import { wrkSuite } from "../lib/wrk.ts"

const CONNECTIONS = 50
const PIPELINE_DEPTH = 16

/** `examples/web-server.ts` as a target: `strategy` with `workers` members, plus `extra` flags (TLS, say). */
export const webServerTarget = (
  id: string,
  label: string,
  strategy: "fiber" | "fork" | "worker",
  workers: number,
  ...extra: ReadonlyArray<string>
): TargetSpec => ({
  id,
  label,
  role: "ours",
  argv: ourProgram(
    "examples/web-server.ts",
    "--strategy",
    strategy,
    "--workers",
    String(workers),
    ...extra,
    "--host",
    BENCH_HOST,
    "--port",
    "0"
  ),
  requiredFile: "examples/web-server.ts"
})

const ours = (strategy: "fiber" | "worker", workers: number): TargetSpec =>
  webServerTarget(
    `netkit-http-${strategy}`,
    strategy === "fiber" ? "effect-netkit web-server (fiber)" : `effect-netkit web-server (worker x${workers})`,
    strategy,
    workers
  )

const nodeHttp = anchorTarget("node-http", "node:http (anchor)", "bench/anchors/httpNode.ts")
const targets: ReadonlyArray<TargetSpec> = [
  nodeHttp,
  anchorTarget("effect-node-http", "effect NodeHttpServer", "bench/anchors/httpEffectPlatform.ts"),
  anchorTarget("raw-net-canned", "raw node:net canned (reference)", "bench/anchors/httpRawNet.ts"),
  ours("fiber", 1),
  ours("worker", 2)
]

const scenarios: ReadonlyArray<Scenario> = [
  {
    id: "keepalive",
    title: `HTTP hello world, keep-alive: wrk -t1 -c${CONNECTIONS}`,
    wrkArgs: ["-t1", `-c${CONNECTIONS}`]
  },
  {
    id: "pipelined",
    title: `HTTP hello world, pipelined depth ${PIPELINE_DEPTH}: wrk -t1 -c${CONNECTIONS} -s bench/wrk/pipeline.lua`,
    wrkArgs: ["-t1", `-c${CONNECTIONS}`, "-s", "bench/wrk/pipeline.lua"],
    scriptArgs: [String(PIPELINE_DEPTH)]
  }
]

/** The goal for the worker pool: its server CPU per keep-alive request at most this many times fiber's. */
const WORKER_CPU_GOAL = 1.3

/** How the worker pool's CPU per request compares with fiber's, the same server on one thread. */
const workerVsFiber = (scenario: Scenario, cpuPerRequest: (id: string) => number | undefined): string | undefined => {
  const fiber = cpuPerRequest("netkit-http-fiber")
  const worker = cpuPerRequest("netkit-http-worker")
  if (fiber === undefined || worker === undefined) return undefined
  const x = worker / fiber
  const line = `worker pool vs fiber, server CPU per request: ${worker.toFixed(2)} / ${fiber.toFixed(2)} µs = ${x.toFixed(2)}x`
  return scenario.id === "keepalive"
    ? `goal: ${line} <= ${WORKER_CPU_GOAL.toFixed(1)}x: ${x <= WORKER_CPU_GOAL ? "met" : "NOT met"}`
    : line
}

export const httpSuite = wrkSuite({
  name: "http",
  description: "HTTP/1.1 hello world with wrk (keep-alive, pipelined x16) vs node:http, effect NodeHttpServer, raw net",
  targets,
  anchor: "node:http",
  scenarios,
  facts: { connections: CONNECTIONS, pipelineDepth: PIPELINE_DEPTH },
  summary: workerVsFiber
})

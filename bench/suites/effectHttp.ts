/**
 * effect-http suite: one effect `HttpRouter` app (`bench/targets/routerApp.ts`: GET /hello text, GET /json, POST
 * /echo) served unchanged by effect's own `NodeHttpServer` (the anchor) and by `EffectHttpServer` on the netkit
 * engine (fiber strategy). Load: `wrk` with `bench/wrk/router.lua`, the three requests in turn, keep-alive (one
 * request in flight per connection) and pipelined (16 per write). Same harness as the http suite (`lib/wrk.ts`).
 */
import { ourProgram } from "../lib/system.ts"
import { BENCH_HOST } from "../lib/target.ts"
import type { TargetSpec } from "../lib/target.ts"
import type { Scenario } from "../lib/wrk.ts"
import { wrkSuite } from "../lib/wrk.ts"

const CONNECTIONS = 50
const PIPELINE_DEPTH = 16

const server = (engine: "node" | "netkit"): TargetSpec => ({
  id: `effect-router-${engine}`,
  label: engine === "node" ? "effect NodeHttpServer (anchor)" : "effect-netkit EffectHttpServer (fiber)",
  role: engine === "node" ? "anchor" : "ours",
  argv: ourProgram("bench/targets/routerServer.ts", "--engine", engine, "--host", BENCH_HOST, "--port", "0"),
  requiredFile: "bench/targets/routerServer.ts"
})

const scenarios: ReadonlyArray<Scenario> = [
  {
    id: "keepalive",
    title: `effect HttpRouter app, keep-alive: wrk -t1 -c${CONNECTIONS} -s bench/wrk/router.lua`,
    wrkArgs: ["-t1", `-c${CONNECTIONS}`, "-s", "bench/wrk/router.lua"],
    scriptArgs: ["1"]
  },
  {
    id: "pipelined",
    title: `effect HttpRouter app, pipelined depth ${PIPELINE_DEPTH}: wrk -t1 -c${CONNECTIONS} -s bench/wrk/router.lua`,
    wrkArgs: ["-t1", `-c${CONNECTIONS}`, "-s", "bench/wrk/router.lua"],
    scriptArgs: [String(PIPELINE_DEPTH)]
  }
]

export const effectHttpSuite = wrkSuite({
  name: "effect-http",
  description: "one effect HttpRouter app (text, JSON, echo) on effect's NodeHttpServer vs on EffectHttpServer, wrk",
  targets: [server("node"), server("netkit")],
  anchor: "NodeHttpServer",
  scenarios,
  facts: { connections: CONNECTIONS, pipelineDepth: PIPELINE_DEPTH }
})

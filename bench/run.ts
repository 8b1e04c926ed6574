/**
 * Benchmark runner.
 *
 *   npm run bench                      all suites
 *   npm run bench -- echo              only the named suite(s)
 *   npm run bench -- echo --quick      short smoke run
 *   npm run bench -- --rounds 3        override rounds per target
 *   npm run bench -- --list            list suites
 *
 * Prints a header (date, Node, CPU, pinning) and each suite's tables, and
 * writes everything to bench/results/latest.json (git-ignored). Every child
 * process is ended on completion, errors, Ctrl-C and SIGTERM.
 */
import { mkdirSync, writeFileSync } from "node:fs"
import * as path from "node:path"
import { parseArgs } from "node:util"
import { killAllNow, terminateAll } from "./lib/children.ts"
import type { Suite } from "./lib/suite.ts"
import { describeEnv, formatHeader, repoRoot } from "./lib/system.ts"
import { chatSuite } from "./suites/chat.ts"
import { connectionsSuite } from "./suites/connections.ts"
import { echoSuite } from "./suites/echo.ts"
import { strategiesSuite } from "./suites/strategies.ts"
import { effectHttpSuite } from "./suites/effectHttp.ts"
import { httpSuite } from "./suites/http.ts"
import { httpsSuite } from "./suites/https.ts"

/** Registry: each suite lives in its own file under bench/suites/. */
const suites: ReadonlyArray<Suite> = [
  echoSuite,
  strategiesSuite,
  chatSuite,
  httpSuite,
  httpsSuite,
  effectHttpSuite,
  connectionsSuite
]

const usage = `usage: npm run bench -- [suite ...] [--quick] [--rounds N] [--list]
suites: ${suites.map((suite) => suite.name).join(", ")}`

let stopping = false

const main = async (): Promise<number> => {
  const { values, positionals } = parseArgs({
    options: {
      quick: { type: "boolean", default: false },
      rounds: { type: "string" },
      list: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false }
    },
    allowPositionals: true
  })
  if (values.help) {
    console.log(usage)
    return 0
  }
  if (values.list) {
    for (const suite of suites) console.log(`${suite.name.padEnd(10)} ${suite.description}`)
    return 0
  }
  const unknown = positionals.filter((name) => !suites.some((suite) => suite.name === name))
  if (unknown.length > 0) {
    console.error(`unknown suite(s): ${unknown.join(", ")}\n${usage}`)
    return 2
  }
  const rounds = values.rounds === undefined ? undefined : Number(values.rounds)
  if (rounds !== undefined && !(Number.isInteger(rounds) && rounds >= 1 && rounds <= 20)) {
    console.error(`--rounds must be an integer from 1 to 20\n${usage}`)
    return 2
  }
  const selected = positionals.length === 0 ? suites : suites.filter((suite) => positionals.includes(suite.name))

  const env = describeEnv()
  console.log(formatHeader(env))
  const results: Record<string, unknown> = {}
  const startedAt = Date.now()
  for (const suite of selected) {
    // Once stopping, children die under the suite's feet; its failure output would only mislead.
    const print = (text: string) => {
      if (!stopping) console.log(text)
    }
    results[suite.name] = await suite.run({ env, quick: values.quick, rounds, print })
    if (stopping) return 130
  }
  const file = path.join(repoRoot, "bench", "results", "latest.json")
  mkdirSync(path.dirname(file), { recursive: true })
  writeFileSync(file, `${JSON.stringify({ env, quick: values.quick, suites: results }, null, 2)}\n`)
  console.log(`\ndone in ${((Date.now() - startedAt) / 1000).toFixed(1)} s; results: ${path.relative(repoRoot, file)}`)
  return 0
}

const stop = (code: number) => {
  if (stopping) return
  stopping = true
  console.error(`\nstopping: ending child processes`)
  void terminateAll().finally(() => process.exit(code))
}
process.on("SIGINT", () => stop(130))
process.on("SIGTERM", () => stop(143))
// Last resort if the process exits any other way with children still alive.
process.on("exit", killAllNow)

main()
  .then(async (code) => {
    await terminateAll()
    process.exitCode = code
  })
  .catch(async (error: unknown) => {
    console.error(error)
    await terminateAll()
    process.exitCode = 1
  })

/**
 * Runs effect's own HTTP server test suites against `EffectHttpServer` (see the README, "Conformance with effect's
 * suite"). The suites are not part of this repository: put them (with their fixtures) in `conformance/upstream/`,
 * for example `NodeHttpServer.test.ts` and `fixtures/text.txt` from `packages/platform/node/test` of
 * Effect-TS/effect. This script
 *
 * 1. copies them to `conformance/.run/`, rewriting the import paths of effect 4.0 (`effect/unstable/http`, ...) to
 *    those of 4.1 (`effect/http`, ...);
 * 2. runs them with vitest once per strategy (`NETKIT_STRATEGIES`, default `node,sequential,fiber`), with
 *    `@effect/platform-node` aliased to `conformance/platformNode.ts`, whose `NodeHttpServer.layer` and `layerTest`
 *    are ours (`node` runs effect's own server: the baseline of the installed effect version);
 * 3. prints how many cases passed, and which failed, per strategy.
 *
 *   npm run conformance                      # every file in conformance/upstream
 *   npm run conformance -- NodeHttpServer    # only files whose name contains the word
 */
import { spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

const here = Path.dirname(fileURLToPath(import.meta.url))
const root = Path.dirname(here)
const upstream = Path.join(here, "upstream")
const prepared = Path.join(here, ".run")

const rewrites: ReadonlyArray<readonly [RegExp, string]> = [
  [/(["'])effect\/unstable\/httpapi(\/|["'])/g, "$1effect/http-api$2"],
  [/(["'])effect\/unstable\/http(\/|["'])/g, "$1effect/http$2"],
  [/(["'])effect\/unstable\/socket(\/|["'])/g, "$1effect/socket$2"],
  [/(["'])effect\/unstable\/rpc(\/|["'])/g, "$1effect/rpc$2"],
  [/(["'])effect\/unstable\/workers(\/|["'])/g, "$1effect/workers$2"],
  // newer effect 4 groups core modules in folders (`effect/schema/Schema`); 4.1 has them at the top
  [/(["'])effect\/(?:schema|stream|time)\/([A-Z]\w*)(["'])/g, "$1effect/$2$3"],
  // renamed after 4.1 (same arguments)
  [/\bSchema\.ErrorClass\b/g, "Schema.Error"],
  // newer platform-node re-exports ws from NodeSocket; 4.1.0 has it as its own module
  [/import \{ NodeWS \} from "@effect\/platform-node\/NodeSocket"/g, 'import * as NodeWS from "@effect/platform-node/NodeWS"']
]

const copy = (from: string, to: string): number => {
  let tests = 0
  Fs.mkdirSync(to, { recursive: true })
  for (const entry of Fs.readdirSync(from, { withFileTypes: true })) {
    const source = Path.join(from, entry.name)
    const target = Path.join(to, entry.name)
    if (entry.isDirectory()) {
      tests += copy(source, target)
    } else if (entry.name.endsWith(".ts")) {
      let text = Fs.readFileSync(source, "utf8")
      for (const [pattern, replacement] of rewrites) text = text.replace(pattern, replacement)
      Fs.writeFileSync(target, text)
      if (entry.name.endsWith(".test.ts")) tests++
    } else {
      Fs.copyFileSync(source, target)
    }
  }
  return tests
}

interface Assertion {
  readonly fullName: string
  readonly status: string
  readonly failureMessages?: ReadonlyArray<string>
}

/** One test file in vitest's JSON report. */
interface FileResult {
  readonly name: string
  readonly status: string
  readonly message?: string
  readonly assertionResults: ReadonlyArray<Assertion>
}

const filters = process.argv.slice(2)
if (!Fs.existsSync(upstream)) {
  console.error(`no suites: put effect's test files in ${Path.relative(root, upstream)}/ (see conformance/run.ts)`)
  process.exit(2)
}
Fs.rmSync(prepared, { recursive: true, force: true })
const files = copy(upstream, prepared)
if (files === 0) {
  console.error(`no *.test.ts files in ${Path.relative(root, upstream)}/`)
  process.exit(2)
}

const strategies = (process.env.NETKIT_STRATEGIES ?? "node,sequential,fiber").split(",").map((s) => s.trim())
const summary: Array<string> = []
let failed = false
for (const strategy of strategies) {
  const output = Path.join(prepared, `result-${strategy}.json`)
  console.log(`\n== ${strategy}`)
  // vitest's entry under this very Node: the `.bin` shim would take whichever `node` comes first on the PATH
  const run = spawnSync(
    process.execPath,
    [
      Path.join(root, "node_modules", "vitest", "vitest.mjs"),
      "run",
      "--config",
      Path.join(here, "vitest.config.ts"),
      "--reporter=default",
      "--reporter=json",
      `--outputFile.json=${output}`,
      ...filters
    ],
    { cwd: root, stdio: "inherit", env: { ...process.env, NETKIT_STRATEGY: strategy } }
  )
  if (!Fs.existsSync(output)) {
    summary.push(`${strategy}: vitest produced no report (exit ${run.status})`)
    failed = true
    continue
  }
  const report = JSON.parse(Fs.readFileSync(output, "utf8")) as {
    readonly testResults: ReadonlyArray<FileResult>
  }
  const cases = report.testResults.flatMap((file) => file.assertionResults)
  const passed = cases.filter((c) => c.status === "passed")
  const skipped = cases.filter((c) => c.status === "skipped" || c.status === "pending" || c.status === "todo")
  const notPassed = cases.filter((c) => c.status !== "passed" && !skipped.includes(c))
  // a file that throws while loading has no cases at all: without this it would read as "0 of 0 passed"
  const unloaded = report.testResults.filter((file) => file.status === "failed" && file.assertionResults.length === 0)
  if (notPassed.length > 0 || unloaded.length > 0 || cases.length === 0) failed = true
  summary.push(
    `${strategy}: ${passed.length} of ${cases.length} cases passed` +
      (skipped.length > 0 ? ` (${skipped.length} skipped or left out by .only: not run)` : "") +
      unloaded.map((file) =>
        `\n  could not load ${Path.relative(prepared, file.name)}: ${(file.message ?? "").split("\n")[0]}`
      ).join("") +
      notPassed.map((c) => `\n  ${c.status}: ${c.fullName}`).join("")
  )
}
console.log(`\n# conformance (${files} file(s) from conformance/upstream)\n${summary.join("\n")}`)
process.exit(failed ? 1 : 0)

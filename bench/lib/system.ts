/**
 * Facts about the machine and toolchain the harness needs: where the repo and
 * its Node 24 binary are, whether taskset pinning works, and a header line set
 * for interpreting the numbers later.
 */
import { spawnSync } from "node:child_process"
import { existsSync, readFileSync } from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

/** Repository root (bench/lib/ is two levels below it). */
export const repoRoot = path.resolve(import.meta.dirname, "../..")

/**
 * The Node 24 binary installed as a dev dependency. The machine's global node
 * is older, so targets and load generators are always started by path.
 */
export const nodeBin = path.join(repoRoot, "node_modules", ".bin", "node")

/**
 * The command line that starts one of the project's programs: Node 24 runs the TypeScript itself
 * (type stripping), as it runs the anchors and as a deployment would. Not through tsx: its
 * transform wraps every closure creation in a naming helper, and the UDP echo measured 2.5x
 * slower that way than the same code run natively. One process, so its /proc CPU time is all.
 */
export const ourProgram = (file: string, ...args: ReadonlyArray<string>): ReadonlyArray<string> => [nodeBin, file, ...args]

/** CPU placement: servers on one core, load generators on another. */
export interface Pinning {
  readonly enabled: boolean
  readonly serverCore: number
  readonly loadCore: number
  readonly note: string
}

const tasksetWorks = (core: number): boolean => {
  const probe = spawnSync("taskset", ["-c", String(core), "true"], { stdio: "ignore" })
  return probe.error === undefined && probe.status === 0
}

/**
 * Probes taskset on both cores instead of only checking it is installed: a
 * container's cpuset can make `taskset -c 1` fail even with 2 visible CPUs.
 */
export const detectPinning = (): Pinning => {
  const serverCore = 0
  const loadCore = 1
  if (!tasksetWorks(serverCore) || !tasksetWorks(loadCore)) {
    return {
      enabled: false,
      serverCore,
      loadCore,
      note: "UNPINNED: taskset missing or cores 0/1 unavailable; server and load generator share CPUs"
    }
  }
  const note = `taskset: server on core ${serverCore}, load generator on core ${loadCore}`
  return { enabled: true, serverCore, loadCore, note }
}

/** Prefixes a command line with taskset when pinning is available. */
export const pinned = (pinning: Pinning, core: number, argv: ReadonlyArray<string>): Array<string> =>
  pinning.enabled ? ["taskset", "-c", String(core), ...argv] : [...argv]

/**
 * Runs `argv` under a limit on open files of `limit` (`ulimit -n`, soft and hard), or under the hard limit when
 * `limit` is above it and cannot be raised (raising the hard limit needs privileges). `exec` keeps one process, so
 * the pid the harness holds is the program's. Read what was obtained with `readFileLimit` (procStat.ts).
 */
export const withFileLimit = (limit: number, argv: ReadonlyArray<string>): Array<string> => [
  "bash",
  "-c",
  `ulimit -n ${limit} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@"`,
  "bash",
  ...argv
]

/** Environment for children: node_modules/.bin first, so any nested `node` is Node 24 too. */
export const childEnv = (): NodeJS.ProcessEnv => ({
  ...process.env,
  PATH: `${path.join(repoRoot, "node_modules", ".bin")}${path.delimiter}${process.env["PATH"] ?? ""}`
})

const cpuModel = (): string => {
  try {
    const match = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))
    if (match?.[1] !== undefined) return match[1].trim()
  } catch {
    // fall through to os.cpus()
  }
  return os.cpus()[0]?.model ?? "unknown"
}

const targetNodeVersion = (): string => {
  if (!existsSync(nodeBin)) return "missing"
  const result = spawnSync(nodeBin, ["--version"], { encoding: "utf8" })
  return result.status === 0 ? result.stdout.trim() : "unknown"
}

/** What the header prints and the JSON records. */
export interface BenchEnv {
  readonly date: string
  readonly nodeVersion: string
  readonly harnessNodeVersion: string
  readonly cpuModel: string
  readonly cpuCount: number
  readonly kernel: string
  readonly pinning: Pinning
}

export const describeEnv = (): BenchEnv => ({
  date: new Date().toISOString(),
  nodeVersion: targetNodeVersion(),
  harnessNodeVersion: process.version,
  cpuModel: cpuModel(),
  cpuCount: os.availableParallelism(),
  kernel: `${os.type()} ${os.release()}`,
  pinning: detectPinning()
})

export const formatHeader = (env: BenchEnv): string =>
  [
    `date:     ${env.date}`,
    `node:     ${env.nodeVersion} (targets and load generators: ${path.relative(repoRoot, nodeBin)})`,
    `cpu:      ${env.cpuModel} x ${env.cpuCount}`,
    `kernel:   ${env.kernel}`,
    `pinning:  ${env.pinning.note}`
  ].join("\n")

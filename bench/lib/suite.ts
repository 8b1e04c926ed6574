/**
 * The contract between `bench/run.ts` and each suite file.
 */
import type { BenchEnv } from "./system.ts"

export interface SuiteContext {
  readonly env: BenchEnv
  /** Short smoke run: fewer rounds, shorter windows. */
  readonly quick: boolean
  /** Rounds per target requested on the command line, if any. */
  readonly rounds: number | undefined
  /** Progress and table output. */
  readonly print: (text: string) => void
}

export interface Suite {
  /** Name used by the command-line filter, e.g. `npm run bench -- echo`. */
  readonly name: string
  readonly description: string
  /** Runs the suite, prints its tables and returns JSON-serialisable results. */
  readonly run: (ctx: SuiteContext) => Promise<unknown>
}

/**
 * One measurement as the load-generator suites (echo, chat, strategies) take it: wait (bounded) for a quiet
 * machine, start a fresh target, run one load generator process pinned to the load core, stop the target, and
 * record the run, or why it failed, in the target's outcome with a progress line.
 */
import { runLoad } from "./load.ts"
import type { LoadOutcome } from "./load.ts"
import { waitForQuietMachine } from "./quiet.ts"
import type { Quiet } from "./quiet.ts"
import { startRoundTarget } from "./rounds.ts"
import type { TargetOutcome } from "./rounds.ts"
import type { SuiteContext } from "./suite.ts"
import type { Pinning } from "./system.ts"
import type { ExitInfo, RunningTarget } from "./target.ts"

const START_TIMEOUT_MS = 20_000

interface RunBase {
  readonly round: number
  /** How the server ended; null when it never started. */
  readonly exit: ExitInfo | null
  readonly quiet: Quiet
}

/** A run record: the suite's figures `F` when it succeeded, the reason when not. */
export type LoadRun<F extends object> =
  | (RunBase & { readonly ok: true } & F)
  | (RunBase & { readonly ok: false; readonly reason: string })

/** What a suite makes of the load generator's outcome: its figures and progress text, or a failure reason. */
export type Interpreted<F extends object> =
  | { readonly ok: true; readonly figures: F; readonly line: string }
  | { readonly ok: false; readonly reason: string }

export interface MeasureOptions<F extends object> {
  /** Prefix of the progress lines. */
  readonly scenarioId: string
  readonly quietWaitMs: number
  /** Where the server runs (default: pinned to the server core); the load generator always runs on the load core. */
  readonly server?: { readonly pinning: Pinning; readonly core: number }
  readonly loadScript: string
  readonly loadArgs: (target: RunningTarget) => ReadonlyArray<string>
  readonly loadTimeoutMs: number
  /** Open files the load generator needs (see `withFileLimit`); default: the harness's own limit. */
  readonly loadFileLimit?: number | undefined
  /** `crashed` describes a server that died during the run ("" when it did not). Called after the server stopped. */
  readonly interpret: (load: LoadOutcome, crashed: string) => Interpreted<F>
}

/** The load generator flags for the started target's address. */
export const addressArgs = (target: RunningTarget): Array<string> => [
  "--host",
  target.host,
  "--port",
  String(target.port)
]

export const measureOnce = async <F extends object>(
  ctx: SuiteContext,
  outcome: TargetOutcome<LoadRun<F>>,
  round: number,
  options: MeasureOptions<F>
): Promise<void> => {
  const { pinning } = ctx.env
  const quiet = await waitForQuietMachine(options.quietWaitMs, ctx.print)
  const server = options.server ?? { pinning, core: pinning.serverCore }
  const notStarted = (reason: string): LoadRun<F> => ({ round, ok: false, reason, exit: null, quiet })
  const target = await startRoundTarget(ctx, outcome, round, options.scenarioId, notStarted, {
    ...server,
    timeoutMs: START_TIMEOUT_MS
  })
  if (target === null) return
  const label = `  ${options.scenarioId} round ${round}: ${outcome.spec.label}`
  let exit: ExitInfo | null = null
  try {
    const load = await runLoad(options.loadScript, options.loadArgs(target), {
      pinning,
      core: pinning.loadCore,
      timeoutMs: options.loadTimeoutMs,
      fileLimit: options.loadFileLimit
    })
    const crashed = target.exited() ? ` (server exited; output: ${target.tail()})` : ""
    exit = await target.stop()
    const verdict = options.interpret(load, crashed)
    if (!verdict.ok) {
      outcome.runs.push({ round, ok: false, reason: verdict.reason, exit, quiet })
      ctx.print(`${label}: failed: ${verdict.reason}`)
      return
    }
    outcome.runs.push({ round, ok: true, ...verdict.figures, exit, quiet })
    ctx.print(`${label}: ${verdict.line}`)
  } finally {
    if (exit === null) await target.stop()
  }
}

/**
 * The `fork` strategy: child processes own the connections, like Python's `ForkingMixIn`.
 *
 * The server accepts; each connection's socket handle is passed to a child over Node's IPC
 * channel (`child.send(message, socket)`) and the child runs the handler on it directly, loaded
 * by its `Handler.Reference`. Bytes never pass through the parent. Datagrams go to a child as IPC
 * messages; the child's replies come back the same way and are sent from the server's socket.
 *
 * Two modes:
 * - `"pool"` (default): `size` pre-forked children; each job goes to the least busy one; a child
 *   that dies is replaced.
 * - `"perConnection"`: a fresh child per job, at most `maxChildren` at once; at the bound the
 *   strategy stops taking jobs until a child has exited.
 *
 * A child that crashes costs only its own jobs (they complete as failed). Children report each
 * job's outcome over IPC, and their log lines (and stderr) reach the server's log annotated with
 * their `pid`. Every child is reaped: `run` returns only after each child's `exit`. When the server
 * stops accepting (graceful shutdown), children are told, so `Server.Shutdown` fires for their
 * handlers too. All of this is the remote engine shared with the `worker` strategy
 * (`internal/remote.ts`); this module is the child-process transport under it.
 *
 * @since 0.1.0
 */
import { Deferred, Duration, Effect, Layer } from "effect"
import * as ChildProcess from "node:child_process"
import * as Os from "node:os"
import * as Url from "node:url"
import * as Remote from "./internal/remote.ts"
import * as Strategy from "./Strategy.ts"

/**
 * Options of the fork strategy.
 * @category models
 */
export interface Options {
  /** `"pool"` (default) or `"perConnection"`. */
  readonly mode?: "pool" | "perConnection" | undefined
  /** Pool size. Default: `os.availableParallelism()`. */
  readonly size?: number | undefined
  /** Per-connection mode: at most this many children at once. Default: `defaultMaxChildren`. */
  readonly maxChildren?: number | undefined
  /** How long a child may take to load the handler and say it is ready. Default: `defaultStartTimeout`. */
  readonly startTimeout?: Duration.Input | undefined
  /** How long a stopping child gets before SIGKILL (after `Stop`, or after SIGTERM). Default: `defaultKillGrace`. */
  readonly killGrace?: Duration.Input | undefined
}

/** @category constants */
export const defaultMaxChildren = 64

/** @category constants */
export const defaultStartTimeout: Duration.Input = Remote.defaultStartTimeout

/** @category constants */
export const defaultKillGrace: Duration.Input = Remote.defaultStopGrace

/**
 * The strategy, plus the pids of its live children (for tests and diagnostics).
 * @category models
 */
export type ForkStrategy = Strategy.Strategy["Service"] & {
  readonly children: Effect.Effect<ReadonlyArray<number>>
}

const entry = Url.fileURLToPath(new URL("./internal/runner.ts", import.meta.url))

/** Child processes as members of the remote engine. */
const transport = (killGrace: Duration.Input): Remote.MemberTransport => ({
  strategy: "fork",
  noun: "fork child",
  idKey: "pid",
  spawn: (reference, report) => {
    const child = ChildProcess.fork(entry, [JSON.stringify(reference)], {
      // Inherit the loader flags (tsx's --import) so the child loads .ts exactly as we do;
      // plain Node 24 strips types natively.
      execArgv: process.execArgv,
      // `advanced` (structured clone) carries Uint8Array payloads without base64.
      serialization: "advanced",
      stdio: ["ignore", "inherit", "pipe", "ipc"]
    })
    /** Completed on Node's `close` (after `exit`): the child is reaped and its IPC channel and stderr drained. */
    const closed = Deferred.makeUnsafe<void>()
    let exitCode: number | null = null
    let exitSignal: string | null = null
    child.on("message", (message) => report({ _tag: "Message", message }))
    // Send failures are reported through the send callback; without this listener they would crash us.
    child.on("error", () => {})
    Remote.forwardLines(child.stderr, (line) => report({ _tag: "Stderr", line }))
    child.on("exit", (code, signal) => {
      exitCode = code
      exitSignal = signal
    })
    child.on("close", (code, signal) => {
      Deferred.doneUnsafe(closed, Effect.void)
      const how = exitSignal ?? signal
      report({ _tag: "Exited", reason: how !== null ? `signal ${how}` : `exit code ${exitCode ?? code}` })
    })
    const send = (message: unknown, socket: unknown, callback: (error: Error | null) => void) => {
      if (!child.connected) return callback(new Error("the IPC channel is closed"))
      try {
        // keepOpen: with `false` Node closes our copy only when the child acknowledges the handle,
        // so a child that dies at the wrong moment would leave the peer hanging forever. We close
        // our copy ourselves when the job ends, whatever way it ends.
        const handle = socket as ChildProcess.SendHandle
        child.send(message as ChildProcess.Serializable, handle, { keepOpen: true }, callback)
      } catch (error) {
        callback(error instanceof Error ? error : new Error(String(error)))
      }
    }
    return {
      id: child.pid ?? -1,
      post: (message) => send(message, undefined, () => {}),
      pass: ({ message, socket }) =>
        Effect.gen(function*() {
          if (socket === undefined) {
            return yield* Effect.fail(new Error("the listener attached no socket handle to pass to a child process"))
          }
          yield* Effect.addFinalizer(() => Effect.sync(() => socket.destroy()))
          yield* Effect.callback<void, Error>((resume) =>
            send(message, socket, (error) => resume(error ? Effect.fail(error) : Effect.void))
          )
        }),
      // SIGTERM (the child interrupts its handlers and exits), a grace period, then SIGKILL.
      kill: Effect.gen(function*() {
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM")
        const gone = yield* Effect.timeoutOption(Deferred.await(closed), killGrace)
        if (gone._tag === "None") {
          child.kill("SIGKILL")
          yield* Deferred.await(closed)
        }
      })
    }
  }
})

/**
 * Builds the fork strategy.
 * @category constructors
 */
export const make = (options?: Options): ForkStrategy => {
  const killGrace = options?.killGrace ?? defaultKillGrace
  const engine = Remote.make(transport(killGrace), {
    mode: (options?.mode ?? "pool") === "pool"
      ? { _tag: "Pool", size: options?.size ?? Os.availableParallelism() }
      : { _tag: "PerJob", max: options?.maxChildren ?? defaultMaxChildren },
    startTimeout: options?.startTimeout ?? defaultStartTimeout,
    stopGrace: killGrace
  })
  return { name: "fork", run: engine.run, children: engine.members }
}

/**
 * The fork strategy as a layer.
 * @category layers
 */
export const layer = (options?: Options): Layer.Layer<Strategy.Strategy> => Layer.succeed(Strategy.Strategy, make(options))

/**
 * A pool of `size` pre-forked children (default: one per CPU).
 * @category layers
 */
export const layerPool = (options?: { readonly size?: number | undefined }): Layer.Layer<Strategy.Strategy> =>
  layer({ mode: "pool", size: options?.size })

/**
 * A fresh child per connection or datagram, at most `maxChildren` at once.
 * @category layers
 */
export const layerPerConnection = (options?: { readonly maxChildren?: number | undefined }): Layer.Layer<Strategy.Strategy> =>
  layer({ mode: "perConnection", maxChildren: options?.maxChildren })

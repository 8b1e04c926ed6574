/**
 * The `worker` strategy: a pool of worker threads runs the handlers, like Python's `ThreadingMixIn`
 * but with real parallelism: a CPU-bound handler occupies one worker, not the server.
 *
 * How a connection reaches a worker: the accepted TCP socket itself is transferred to the worker
 * (`postMessage(message, [socket])`), as the `fork` strategy passes the handle to a child. The
 * worker owns it from then on and serves it with the same `Connection` as the in-process strategies,
 * fast paths included; bytes never pass through the main thread. Node moves only TCP sockets between
 * threads, so a Unix-stream connection stays in the main thread, which relays its bytes to the
 * worker over a `MessagePort` (credit-based reads, acknowledged writes: see `internal/portBridge.ts`).
 * Datagram sockets stay in the main thread too: a worker gets each datagram as a message and asks
 * the main thread to send its replies.
 *
 * Each job goes to the least busy ready worker. A handler that fails or throws costs only its job;
 * a worker that dies (e.g. `process.exit` in the handler) costs only its own jobs and is replaced.
 * When the server stops accepting (graceful shutdown) the workers are told, so `Server.Shutdown`
 * fires for their handlers too. When `run` ends every worker has been stopped. All of this is the
 * remote engine shared with the `fork` strategy (`internal/remote.ts`); this module is the
 * worker-thread transport under it.
 *
 * @since 0.1.0
 */
import { Duration, Effect, Layer } from "effect"
import * as Os from "node:os"
import { MessageChannel, type Transferable, Worker } from "node:worker_threads"
import * as PortBridge from "./internal/portBridge.ts"
import * as Remote from "./internal/remote.ts"
import * as Strategy from "./Strategy.ts"

/**
 * Options of the worker strategy.
 * @category models
 */
export interface Options {
  /** Number of worker threads. Default: `os.availableParallelism()`. */
  readonly size?: number | undefined
  /** How long a worker may take to load the handler. Default: `defaultStartTimeout`. */
  readonly startTimeout?: Duration.Input | undefined
}

/** @category constants */
export const defaultStartTimeout: Duration.Input = Remote.defaultStartTimeout

/**
 * The strategy, plus the thread ids of its live workers (for tests and diagnostics).
 * @category models
 */
export type WorkerStrategy = Strategy.Strategy["Service"] & {
  readonly workers: Effect.Effect<ReadonlyArray<number>>
}

const entry = new URL("./internal/runner.ts", import.meta.url)

/** Worker threads as members of the remote engine. */
const transport: Remote.MemberTransport = {
  strategy: "worker",
  noun: "worker",
  idKey: "threadId",
  spawn: (reference, report) => {
    // execArgv is inherited: under tsx the loader applies here too; plain Node 24 strips types itself.
    // stderr: the worker's lines reach the server's log, as a fork child's do.
    const thread = new Worker(entry, { workerData: { reference }, stderr: true })
    let error: string | undefined
    thread.on("message", (message) => report({ _tag: "Message", message }))
    thread.on("error", (cause) => {
      error = String(cause)
    })
    Remote.forwardLines(thread.stderr, (line) => report({ _tag: "Stderr", line }))
    thread.on("exit", (code) => report({ _tag: "Exited", reason: error ?? `exit code ${code}` }))
    // What travels alongside a message goes in `attached`, moved (not copied) to the worker. Node 24 can
    // move a `net.Socket` too; the type list does not say so yet.
    const post = (message: unknown, attached?: unknown) =>
      attached === undefined
        ? thread.postMessage(message)
        : thread.postMessage({ ...(message as object), attached }, [attached as Transferable])
    return {
      id: thread.threadId,
      post: (message) => post(message),
      pass: ({ message, open, socket }) =>
        Effect.gen(function*() {
          if (socket !== undefined && message.meta.transport === "tcp") {
            try {
              // Node refuses a socket that has read or written anything, or is closed: then relay it.
              post(message, socket)
              return
            } catch {}
          }
          const connection = yield* open
          const { port1, port2 } = new MessageChannel()
          yield* PortBridge.relay(connection, port1)
          post(message, port2)
        }),
      kill: Effect.asVoid(Effect.promise(() => thread.terminate()))
    }
  }
}

/**
 * Builds the worker strategy.
 * @category constructors
 */
export const make = (options?: Options): WorkerStrategy => {
  const engine = Remote.make(transport, {
    mode: { _tag: "Pool", size: options?.size ?? Os.availableParallelism() },
    startTimeout: options?.startTimeout ?? defaultStartTimeout,
    stopGrace: Remote.defaultStopGrace
  })
  return { name: "worker", run: engine.run, workers: engine.members }
}

/**
 * The worker strategy as a layer.
 * @category layers
 */
export const layer = (options?: Options): Layer.Layer<Strategy.Strategy> => Layer.succeed(Strategy.Strategy, make(options))

/**
 * The request loop of one HTTP/1.1 connection, shared by every way of answering requests (`HttpServer`'s own
 * applications and effect's `HttpApp`s): it reads, parses, hands each request head to the responder in order,
 * answers parse errors, writes what the responders queued, and stops on a timeout or a graceful shutdown.
 *
 * Between waits the loop is plain code, and it runs as the bytes arrive (`Connection.readWhile`), so a keep-alive
 * request that a responder answers without waiting costs no fiber step at all. The effects it waits on are built
 * once per connection.
 *
 * The loop runs in the handler's fiber. A stop from outside (a deadline, a graceful shutdown) reaches it without a
 * fiber of its own to interrupt, which an idle connection would keep for as long as it lives (~1.3 KB): the state
 * ends the input of a loop that waits for it, and interrupts a request that its responder answers in a fiber of its
 * own (`answerInFiber`); the loop then ends with the stop's reason.
 */
import { Cause, Effect, Exit, Fiber } from "effect"
import type { NonEmptyReadonlyArray } from "effect/Array"
import type * as Connection from "../../../core/Connection.ts"
import * as Server from "../../../core/Server.ts"
import type { HttpRequestHead } from "../../../protocol/http/RequestHead.ts"
import { ConnectionState, Phase } from "./connectionState.ts"
import type { Config } from "./connectionState.ts"
import { StopReason } from "./supervisor.ts"
import type { Supervisor } from "./supervisor.ts"
import { encodeFixed, errorResponse, Mode } from "./wire.ts"

/**
 * Starts answering one request: `undefined` when it was answered without waiting (the response is queued in the
 * state's `out` and the request finished), else the effect that answers it. It must finish the request
 * (`finishRequest`) before it is done.
 */
export type ServeRequest<R> = (
  head: HttpRequestHead,
  state: ConnectionState
) => Effect.Effect<void, Connection.ConnectionError, R> | undefined

const idleStop: Effect.Effect<StopReason> = Effect.succeed(StopReason.Idle)

const loop = <R>(state: ConnectionState, serve: ServeRequest<R>): Effect.Effect<StopReason, Connection.ConnectionError, R> => {
  // What comes next: an effect for the fiber to run, or `undefined` to wait for more bytes.
  const advance = (): Effect.Effect<StopReason, Connection.ConnectionError, R> | undefined => {
    if (state.stopReason !== undefined) return Effect.succeed(state.stopReason)
    for (;;) {
      const event = state.closing ? undefined : state.nextEvent()
      if (event === undefined) {
        // the request before asked to switch protocols and was answered over HTTP: go on with HTTP
        if (state.switchAsked && state.phase === Phase.Idle && !state.closing) {
          state.resumeHttp()
          continue
        }
        if (state.out.length > 0) {
          if (!state.connection.tryWriteAll(state.out)) return flushThenStep ??= Effect.flatMap(state.flush, step)
          // the socket took the chunks; the list itself is ours to reuse
          state.out.length = 0
        }
        if (state.closing || state.inputEnded || (state.shuttingDown && state.phase === Phase.Idle)) return idleStop
        state.awaitingInput = true
        return undefined
      }
      if (event._tag === "Head") {
        const serving = serve(event.head, state)
        if (serving !== undefined) return Effect.flatMap(serving, step)
      } else if (event._tag === "Error") {
        // RFC 9112 §9.6 (and every parse error): answer if possible, then close
        state.out.push(encodeFixed(errorResponse(event.error.status), Mode.Close, false))
        state.closing = true
      }
    }
  }
  const step = (): Effect.Effect<StopReason, Connection.ConnectionError, R> => advance() ?? readThenStep
  const onBatch = (batch: NonEmptyReadonlyArray<Uint8Array>) => {
    state.pushAll(batch)
    return advance()
  }
  const readThenStep = Effect.matchEffect(state.connection.readWhile(onBatch), {
    onSuccess: (next) => next,
    onFailure: (error) => {
      if (!Cause.isDone(error)) return Effect.fail(error)
      state.endOfInput()
      return step()
    }
  })
  // built when a write first has to wait: most idle connections never needed it
  let flushThenStep: Effect.Effect<StopReason, Connection.ConnectionError, R> | undefined
  return Effect.suspend(step)
}

/**
 * Serves one connection until it closes, times out or shuts down. `responder` is called once, with the connection's
 * state, and gives what answers each request.
 */
export const serveConnection = <R>(
  connection: Connection.Connection,
  config: Config,
  supervisor: Supervisor,
  responder: (state: ConnectionState) => ServeRequest<R>
): Effect.Effect<void, Connection.ConnectionError, R> =>
  // A chain of effects, not a generator: what waits for the whole life of the connection is one continuation, not a
  // suspended generator with its registers.
  Effect.flatMap(Effect.service(Server.Shutdown), (signal) => {
    const state = new ConnectionState(connection, supervisor, config, signal)
    state.setDeadline(config.keepAliveTimeout, StopReason.Idle)
    return Effect.andThen(
      supervisor.join(state),
      Effect.suspend(() =>
        Effect.flatMap(
          Effect.ensuring(Effect.exit(loop(state, responder(state))), supervisor.leave(state)),
          (exit) => afterLoop(state, exit)
        )
      )
    )
  })

/** Answers 408 when a headers or request timeout stopped the loop before any byte of a response went out. */
const afterLoop = (
  state: ConnectionState,
  exit: Exit.Exit<StopReason, Connection.ConnectionError>
): Effect.Effect<void, Connection.ConnectionError> => {
  // a stop ends the loop with its reason (see `advance`), never with an interruption
  if (Exit.isFailure(exit)) return Effect.failCause(exit.cause)
  const reason = exit.value
  if ((reason === StopReason.Headers || reason === StopReason.Request) && !state.responseStarted) {
    const out = state.out
    out.push(encodeFixed(errorResponse(408), Mode.Close, false))
    return Effect.ignore(state.connection.writeAll(out))
  }
  return Effect.void
}

/**
 * Answers a request in a fiber of its own, which a stop (the request timeout) interrupts through
 * `ConnectionState.cancelRequest`, while the loop waits for it; one that is done without waiting needs no more. For
 * responders whose requests would otherwise run in the loop's fiber, where nothing could interrupt them alone.
 */
export const answerInFiber = <R>(
  state: ConnectionState,
  serving: Effect.Effect<void, Connection.ConnectionError, R>
): Effect.Effect<void, Connection.ConnectionError, R> =>
  Effect.flatMap(Effect.context<R>(), (context) => {
    const fiber = Effect.runForkWith(context)(serving)
    const done = fiber.pollUnsafe()
    if (done !== undefined) return done
    state.cancelRequest = () => fiber.interruptUnsafe()
    return Effect.flatMap(
      Effect.callback<Exit.Exit<void, Connection.ConnectionError>>((resume) => {
        fiber.addObserver((exit) => resume(Effect.succeed(exit)))
        // the loop itself is interrupted (the server's drain ran out): so is the request, and the loop waits for it
        return Fiber.interrupt(fiber)
      }),
      (exit) => {
        state.cancelRequest = undefined
        // cut short by a stop: the loop goes on to end with the stop's reason
        return Exit.isFailure(exit) && state.stopReason !== undefined && Cause.hasInterruptsOnly(exit.cause)
          ? Effect.void
          : exit
      }
    )
  })

/**
 * Handlers: what a server does with each connection or datagram.
 *
 * A handler is an ordinary Effect function plus, optionally, a *reference*: the module URL and
 * export name under which the same handler can be found again. Closures cannot cross a process
 * or thread boundary, so the `fork` and `worker` strategies load the handler by reference in the
 * child; `sequential` and `fiber` call the function directly. Define handlers in a module without
 * top-level side effects and give them a reference, and every strategy can run them unchanged:
 *
 * ```ts
 * export const echo = Handler.stream((connection) => ..., { module: import.meta.url, export: "echo" })
 * ```
 *
 * @since 0.1.0
 */
import { Effect, Predicate, Schema } from "effect"
import type * as Connection from "./Connection.ts"
import type * as Datagram from "./Datagram.ts"

const TypeId = "~effect-netkit/core/Handler" as const

/**
 * Where another process or thread finds a handler: `import(module)[export]`.
 * @category models
 */
export interface Reference {
  /** Module URL, usually `import.meta.url` of the module that defines the handler. */
  readonly module: string
  /** Name of the export holding the handler. */
  readonly export: string
}

interface Base {
  readonly [TypeId]: typeof TypeId
  /** Shown in logs and metrics. */
  readonly name: string
  /** Set when the handler can be loaded in another process or thread. */
  readonly reference: Reference | undefined
}

/**
 * Serves one connection; the connection is closed when the returned Effect ends, fails or is interrupted.
 * @category models
 */
export interface StreamHandler<E = never, R = never> extends Base {
  readonly _tag: "StreamHandler"
  readonly handle: (connection: Connection.Connection) => Effect.Effect<unknown, E, R>
}

/**
 * Serves one datagram.
 * @category models
 */
export interface DatagramHandler<E = never, R = never> extends Base {
  readonly _tag: "DatagramHandler"
  readonly handle: (datagram: Datagram.Datagram) => Effect.Effect<unknown, E, R>
}

/**
 * Either kind of handler.
 * @category models
 */
export type Handler<E = never, R = never> = StreamHandler<E, R> | DatagramHandler<E, R>

/**
 * Options shared by the handler constructors.
 * @category models
 */
export interface Options {
  /** Shown in logs and metrics. Default: the export name, or `"handler"`. */
  readonly name?: string | undefined
  /** Module URL for loading in another process or thread (`import.meta.url`). Needs `export` too. */
  readonly module?: string | undefined
  /** Export name of this handler in `module`. */
  readonly export?: string | undefined
}

const base = (options: Options | undefined): Base => {
  if ((options?.module === undefined) !== (options?.export === undefined)) {
    throw new TypeError("Handler options: `module` and `export` go together")
  }
  const reference = options?.module !== undefined && options.export !== undefined
    ? { module: options.module, export: options.export }
    : undefined
  return { [TypeId]: TypeId, name: options?.name ?? options?.export ?? "handler", reference }
}

/**
 * A handler for stream transports (TCP, Unix).
 * @category constructors
 */
export const stream = <E = never, R = never>(
  handle: (connection: Connection.Connection) => Effect.Effect<unknown, E, R>,
  options?: Options
): StreamHandler<E, R> => ({ ...base(options), _tag: "StreamHandler", handle })

/**
 * A handler for datagram transports (UDP, Unix datagram).
 * @category constructors
 */
export const datagram = <E = never, R = never>(
  handle: (datagram: Datagram.Datagram) => Effect.Effect<unknown, E, R>,
  options?: Options
): DatagramHandler<E, R> => ({ ...base(options), _tag: "DatagramHandler", handle })

/** @category guards */
export const isHandler = (u: unknown): u is Handler<unknown, unknown> => Predicate.hasProperty(u, TypeId)

/**
 * A handler could not be loaded by reference.
 * @category errors
 */
export class HandlerLoadError extends Schema.TaggedError<HandlerLoadError>()("HandlerLoadError", {
  module: Schema.String,
  export: Schema.String,
  message: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {}

/**
 * Loads a handler by reference, as a fork child or worker thread does.
 * @category constructors
 */
export const load = (reference: Reference): Effect.Effect<Handler<unknown, unknown>, HandlerLoadError> =>
  Effect.tryPromise({
    try: () => import(reference.module) as Promise<Record<string, unknown>>,
    catch: (cause) =>
      new HandlerLoadError({ ...reference, message: `cannot import ${reference.module}: ${String(cause)}`, cause })
  }).pipe(Effect.flatMap((module) => {
    const value = module[reference.export]
    return isHandler(value)
      ? Effect.succeed(value)
      : Effect.fail(
        new HandlerLoadError({ ...reference, message: `export ${reference.export} of ${reference.module} is not a Handler` })
      )
  }))

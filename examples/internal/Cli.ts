/**
 * The example programs' command lines, on effect's CLI module (`effect/cli`). `--help` prints the
 * usage and exits 0; a bad flag is one line on stderr and exit 1, naming the flag, what it takes
 * and what it got (`error: --port: expected an integer from 0 to 65535, got "x"`), instead of
 * effect's default of the whole usage followed by the errors.
 */
import * as NodeServices from "@effect/platform-node/NodeServices"
import { Effect, Option, Schema } from "effect"
import { CliConfig, CliError, CliOutput, Command, Flag, GlobalFlag } from "effect/cli"
import { createRequire } from "node:module"

/** The command line could not be parsed; the message names the flag and what it expects. */
export class ArgumentError extends Schema.TaggedError<ArgumentError>()("ArgumentError", {
  message: Schema.String
}) {}

/** One flag: effect's flag, plus what a valid value looks like, for the one-line error. */
export interface Spec<A> {
  readonly name: string
  readonly flag: Flag.Flag<A>
  /** `an integer from 0 to 65535`, `one of tcp, udp`: completes `--NAME: expected ...`. */
  readonly expected: string
}

type Values<Specs extends Record<string, Spec<any>>> = {
  readonly [K in keyof Specs]: Specs[K] extends Spec<infer A> ? A : never
}

const spec = <A>(name: string, expected: string, flag: Flag.Flag<A>): Spec<A> => ({ name, expected, flag })

/** An integer in `[min, max]`. */
export const int = (
  name: string,
  options: { readonly min: number; readonly max: number; readonly default: number; readonly description: string }
): Spec<number> => {
  const expected = `an integer from ${options.min} to ${options.max}`
  return spec(
    name,
    expected,
    Flag.Int(name).pipe(
      Flag.filter((n) => Number.isSafeInteger(n) && n >= options.min && n <= options.max, () => expected),
      Flag.withDefault(options.default),
      Flag.withDescription(`${options.description} (default ${options.default})`)
    )
  )
}

/** One of a fixed set of words. */
export const choice = <const A extends string>(
  name: string,
  values: ReadonlyArray<A>,
  options: { readonly default: A; readonly description: string }
): Spec<A> =>
  spec(
    name,
    `one of ${values.join(", ")}`,
    Flag.Literals(name, values).pipe(
      Flag.withDefault(options.default),
      Flag.withDescription(`${options.description} (default ${options.default})`)
    )
  )

const nonEmpty = (flag: Flag.Flag<string>) => Flag.filter(flag, (s) => s.length > 0, () => "a non-empty value")

/** Any non-empty text. */
export const string = (
  name: string,
  options: { readonly default: string; readonly description: string }
): Spec<string> =>
  spec(
    name,
    "a non-empty value",
    nonEmpty(Flag.String(name)).pipe(
      Flag.withDefault(options.default),
      Flag.withDescription(`${options.description} (default ${options.default})`)
    )
  )

/** Optional non-empty text: `undefined` when the flag is absent. */
export const optionalString = (name: string, options: { readonly description: string }): Spec<string | undefined> =>
  spec(
    name,
    "a non-empty value",
    Flag.optional(nonEmpty(Flag.String(name))).pipe(
      Flag.map(Option.getOrUndefined),
      Flag.withDescription(options.description)
    )
  )

/** Required non-empty text; `description` also completes the error when it is missing. */
export const requiredString = (name: string, options: { readonly description: string }): Spec<string> =>
  spec(name, options.description, nonEmpty(Flag.String(name)).pipe(Flag.withDescription(options.description)))

/** A switch: `true` when given. */
export const flag = (name: string, options: { readonly description: string }): Spec<boolean> =>
  spec(
    name,
    "true or false",
    Flag.Boolean(name).pipe(Flag.withDefault(false), Flag.withDescription(options.description))
  )

/** One line for the first thing wrong with the command line. */
const describe = (error: CliError.CliError, specs: ReadonlyArray<Spec<unknown>>): string => {
  const known = () => specs.map((s) => `--${s.name}`).join(", ")
  const expectedOf = (name: string) => specs.find((s) => s.name === name)?.expected
  switch (error._tag) {
    case "InvalidValue": {
      const expected = expectedOf(error.option)
      if (expected === undefined) return `--${error.option}: ${error.expected}, got ${JSON.stringify(error.value)}`
      if (error.value.length === 0) return `--${error.option}: missing value, expected ${expected}`
      // a repeated flag is reported as "N occurrences" and "at most 1 value"
      if (/^\d+ occurrences$/.test(error.value)) return `--${error.option}: given more than once`
      return `--${error.option}: expected ${expected}, got ${JSON.stringify(error.value)}`
    }
    case "MissingOption":
      return `--${error.option}: required (${expectedOf(error.option) ?? "no default"})`
    case "UnrecognizedOption":
      return error.suggestions.length > 0
        ? `Unknown option '${error.option}' (did you mean ${error.suggestions.join(" or ")}?)`
        : `Unknown option '${error.option}' (known flags: ${known()})`
    case "UnexpectedArgument":
      return `unexpected argument ${JSON.stringify(error.arguments[0])} (flags only: ${known()})`
    default:
      return error.message.split("\n")[0] ?? error._tag
  }
}

// Help for `--help` only: an invalid command line is reported by `describe`, in one line.
const presenter: CliOutput.Presenter = {
  present: (event) =>
    event._tag === "Help" && event.reason === "Implicit" || event._tag === "InvalidInvocation"
      ? Effect.void
      : CliOutput.defaultPresenter.present(event)
}

const builtIns = { builtIns: [GlobalFlag.Help, GlobalFlag.Version, GlobalFlag.LogLevel] }

const version: string = (createRequire(import.meta.url)("../../package.json") as { version: string }).version

/**
 * Parses the process's arguments against `specs` and runs `main` with the values. `--help`,
 * `--version` and `--log-level LEVEL` are understood too.
 */
export const run = <const Specs extends Record<string, Spec<any>>, E, R>(
  command: { readonly name: string; readonly description: string },
  specs: Specs,
  main: (values: Values<Specs>) => Effect.Effect<void, E, R>
): Effect.Effect<void, E | ArgumentError, Exclude<R, NodeServices.NodeServices>> => {
  const flags = Object.fromEntries(Object.entries(specs).map(([key, s]) => [key, s.flag])) as {
    readonly [K in keyof Specs]: Flag.Flag<Values<Specs>[K]>
  }
  const all: ReadonlyArray<Spec<unknown>> = Object.values(specs)
  return Command.make(command.name, flags, (values) => main(values as Values<Specs>)).pipe(
    Command.withDescription(command.description),
    Command.run({ version, renderErrors: false }),
    Effect.catchIf(CliError.isCliError, (error) => {
      // `--help` ends in a `ShowHelp` without errors; a bad command line in one that lists them
      const first = error._tag === "ShowHelp" ? error.errors[0] : error
      return first === undefined ? Effect.void : Effect.fail(new ArgumentError({ message: describe(first, all) }))
    }),
    Effect.provideService(CliOutput.Presenter, presenter),
    Effect.provideService(CliConfig.CliConfig, builtIns),
    Effect.provide(NodeServices.layer)
  ) as Effect.Effect<void, E | ArgumentError, Exclude<R, NodeServices.NodeServices>>
}

/**
 * Command-line flags for the example programs: `--name value` or `--name=value`, validated into
 * typed values with one-line errors (`--port: expected an integer from 0 to 65535, got "x"`).
 */
import { Effect, Schema } from "effect"
import { parseArgs } from "node:util"

/** A flag could not be parsed; the message names the flag and what it expects. */
export class ArgumentError extends Schema.TaggedError<ArgumentError>()("ArgumentError", {
  message: Schema.String
}) {}

/** How one flag is read. */
export interface Flag<A> {
  readonly describe: string
  readonly decode: (name: string, raw: string | undefined) => A | ArgumentError
}

const fail = (name: string, expected: string, raw: string) =>
  new ArgumentError({ message: `--${name}: expected ${expected}, got ${JSON.stringify(raw)}` })

/** An integer in `[min, max]`. */
export const int = (options: { readonly min: number; readonly max: number; readonly default: number }): Flag<number> => ({
  describe: `integer ${options.min}..${options.max} (default ${options.default})`,
  decode: (name, raw) => {
    if (raw === undefined) return options.default
    const value = /^-?\d+$/.test(raw) ? Number(raw) : Number.NaN
    return Number.isSafeInteger(value) && value >= options.min && value <= options.max
      ? value
      : fail(name, `an integer from ${options.min} to ${options.max}`, raw)
  }
})

/** One of a fixed set of words. */
export const choice = <const A extends string>(values: ReadonlyArray<A>, fallback: A): Flag<A> => ({
  describe: `${values.join("|")} (default ${fallback})`,
  decode: (name, raw) => {
    if (raw === undefined) return fallback
    return (values as ReadonlyArray<string>).includes(raw) ? raw as A : fail(name, `one of ${values.join(", ")}`, raw)
  }
})

/** Any non-empty string. */
export const string = (fallback: string): Flag<string> => ({
  describe: `text (default ${fallback})`,
  decode: (name, raw) => raw === undefined ? fallback : raw.length > 0 ? raw : fail(name, "a non-empty value", raw)
})

/** An optional non-empty string. */
export const optionalString: Flag<string | undefined> = {
  describe: "text (optional)",
  decode: (name, raw) => raw === undefined || raw.length > 0 ? raw : fail(name, "a non-empty value", raw)
}

type Parsed<Spec extends Record<string, Flag<any>>> = { readonly [K in keyof Spec]: Spec[K] extends Flag<infer A> ? A : never }

/** Parses `argv` (default: the process's arguments) against `spec`; unknown flags are errors. */
export const parse = <Spec extends Record<string, Flag<any>>>(
  spec: Spec,
  argv: ReadonlyArray<string> = process.argv.slice(2)
): Effect.Effect<Parsed<Spec>, ArgumentError> =>
  Effect.suspend(() => {
    let values: Record<string, string | boolean | undefined>
    try {
      const parsed = parseArgs({
        args: [...argv],
        options: Object.fromEntries(Object.keys(spec).map((name) => [name, { type: "string" as const }])),
        strict: true,
        allowPositionals: false
      })
      values = parsed.values as Record<string, string | undefined>
    } catch (error) {
      const message = error instanceof Error ? error.message.split("\n")[0] ?? "" : String(error)
      const known = Object.keys(spec).map((name) => `--${name}`).join(", ")
      return Effect.fail(new ArgumentError({ message: `${message.replace(/\.$/, "")} (known flags: ${known})` }))
    }
    const out: Record<string, unknown> = {}
    for (const [name, flag] of Object.entries(spec)) {
      const raw = values[name]
      const value = flag.decode(name, typeof raw === "string" ? raw : undefined)
      if (value instanceof ArgumentError) return Effect.fail(value)
      out[name] = value
    }
    return Effect.succeed(out as Parsed<Spec>)
  })

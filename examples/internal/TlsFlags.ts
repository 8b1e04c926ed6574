/**
 * `--tls-cert` and `--tls-key`, as the serving examples take them, and the TLS config they make. While the
 * server runs, SIGHUP reads both files again: new connections get the new certificate, open ones go on.
 */
import { Effect } from "effect"
import type { Scope } from "effect"
import * as Tls from "../../src/core/Tls.ts"
import * as Cli from "./Cli.ts"

/** The flags; both or neither. */
export const flags = {
  tlsCert: Cli.optionalString("tls-cert", { description: "serve TLS with this certificate chain (PEM file; needs --tls-key)" }),
  tlsKey: Cli.optionalString("tls-key", { description: "the private key of --tls-cert (PEM file)" })
}

/**
 * The TLS config the flags ask for, `undefined` without them. Reloads on SIGHUP for as long as the scope is open.
 */
export const serverTls = (
  args: { readonly tlsCert: string | undefined; readonly tlsKey: string | undefined },
  options?: { readonly alpn?: ReadonlyArray<string> | undefined }
): Effect.Effect<Tls.Config | undefined, Cli.ArgumentError | Tls.TlsError, Scope.Scope> =>
  Effect.gen(function*() {
    if (args.tlsCert === undefined && args.tlsKey === undefined) return undefined
    if (args.tlsCert === undefined || args.tlsKey === undefined) {
      return yield* new Cli.ArgumentError({
        message: `--${args.tlsCert === undefined ? "tls-cert" : "tls-key"}: required with --${
          args.tlsCert === undefined ? "tls-key" : "tls-cert"
        }`
      })
    }
    const config = yield* Tls.make({ key: { path: args.tlsKey }, cert: { path: args.tlsCert }, alpn: options?.alpn })
    const runFork = Effect.runForkWith(yield* Effect.context<never>())
    const reload = () =>
      void runFork(
        config.reload().pipe(
          Effect.tap(() => Effect.logInfo("TLS certificate reloaded")),
          Effect.catch((error) => Effect.logWarning("TLS certificate not reloaded; the previous one stays", error.message))
        )
      )
    yield* Effect.acquireRelease(
      Effect.sync(() => process.on("SIGHUP", reload)),
      () => Effect.sync(() => process.off("SIGHUP", reload))
    )
    return config
  })

import { Effect } from "effect"
const N = 20000
const mode = process.argv[2] ?? "bare"
const keep: unknown[] = []
const used = () => { (globalThis as any).gc(); (globalThis as any).gc(); return process.memoryUsage().heapUsed }
const before = used()
for (let i = 0; i < N; i++) {
  const wait = Effect.callback<void>(() => {})
  const eff = mode === "bare" ? wait
    : mode === "scoped" ? Effect.scoped(Effect.andThen(Effect.addFinalizer(() => Effect.void), wait))
    : Effect.ensuring(Effect.scoped(Effect.andThen(Effect.addFinalizer(() => Effect.void), wait)), Effect.void)
  keep.push(Effect.runFork(eff))
}
await new Promise((r) => setTimeout(r, 100))
const after = used()
console.log(mode, before, after, keep.length, ((after - before) / N).toFixed(0), "bytes/fiber")

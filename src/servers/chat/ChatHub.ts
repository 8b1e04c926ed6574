/**
 * The chat hub: what joins several chat servers into one room. It carries `joined`, `left` and `message` events
 * between servers and keeps the cluster-wide presence (who is logged in, hence `count` and `name_taken`).
 *
 * A server delivers to its own clients directly and uses the hub only to reach the others, so local chat never
 * waits for (or depends on) the hub. `layerMemory` is the one-process hub; `layerRedis` (in `ChatHubRedis.ts`)
 * spans processes and machines.
 */
import { Context, Effect, Layer, PubSub, Stream } from "effect"
import type { Scope } from "effect"
import type * as ChatMessage from "../../protocol/ChatMessage.ts"

/**
 * A room event published by one server for the others. `origin` names the publishing server, which skips its own
 * events; `message` is the frame every receiving server sends to all of its logged-in clients.
 *
 * @category models
 */
export interface HubEvent {
  readonly origin: string
  readonly message: ChatMessage.Joined | ChatMessage.Left | ChatMessage.Message
}

/**
 * The outcome of a presence claim: the cluster-wide count after joining, or `taken` when the identity is already
 * logged in somewhere in the cluster.
 *
 * @category models
 */
export type Claim = { readonly _tag: "Claimed"; readonly count: number } | { readonly _tag: "Taken" }

/**
 * The hub as a chat server sees it.
 *
 * - `claim` registers an identity cluster-wide, atomically with the uniqueness check.
 * - `release` removes it and returns the count after leaving; releasing an unknown identity is harmless.
 * - `publish` hands an event to the other servers; best effort, never fails (a hub outage degrades cross-server
 *   delivery and is logged by the hub, local chat goes on).
 * - `subscribe` starts receiving events (all of them, the caller's own included) from the moment it returns, for
 *   as long as the scope is open.
 *
 * @category services
 */
export class ChatHub extends Context.Service<ChatHub, {
  readonly kind: "memory" | "redis"
  readonly claim: (identity: string, origin: string) => Effect.Effect<Claim>
  readonly release: (identity: string, origin: string) => Effect.Effect<number>
  readonly count: Effect.Effect<number>
  readonly publish: (event: HubEvent) => Effect.Effect<void>
  readonly subscribe: Effect.Effect<Stream.Stream<HubEvent>, never, Scope.Scope>
}>()("effect-netkit/servers/chat/ChatHub") {}

/**
 * A hub inside one process: a set of identities and an unbounded `PubSub`. Every chat server built with the same
 * hub instance is in the same room; one server alone behaves exactly like a server without a hub.
 *
 * @category constructors
 */
export const makeMemory: Effect.Effect<ChatHub["Service"], never, Scope.Scope> = Effect.gen(function*() {
  const members = new Set<string>()
  // Unbounded: a subscriber is a server's own dispatch fiber, which only enqueues (never blocks on a socket).
  const events = yield* Effect.acquireRelease(PubSub.unbounded<HubEvent>(), PubSub.shutdown)
  return ChatHub.of({
    kind: "memory",
    claim: (identity) =>
      Effect.sync(() => {
        if (members.has(identity)) return { _tag: "Taken" } as const
        members.add(identity)
        return { _tag: "Claimed", count: members.size } as const
      }),
    release: (identity) =>
      Effect.sync(() => {
        members.delete(identity)
        return members.size
      }),
    count: Effect.sync(() => members.size),
    publish: (event) => Effect.asVoid(PubSub.publish(events, event)),
    subscribe: Effect.map(PubSub.subscribe(events), (subscription) => Stream.fromSubscription(subscription))
  })
})

/**
 * The default, in-process hub as a layer.
 *
 * @category layers
 */
export const layerMemory: Layer.Layer<ChatHub> = Layer.effect(ChatHub, makeMemory)

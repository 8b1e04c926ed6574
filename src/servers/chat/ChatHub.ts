/**
 * The chat hub: what joins several chat servers into one room. It carries `joined`, `left` and `message` events
 * between servers and keeps the cluster-wide presence (who is logged in, hence `count` and `name_taken`).
 *
 * A server delivers to its own clients directly and uses the hub only to reach the others, so local chat never
 * waits for (or depends on) the hub. `layerMemory` is the one-process hub; `layerRedis` spans processes and
 * machines through Redis pub/sub (events) and a hash (presence), and degrades to local-only while Redis is away.
 */
import { Context, Duration, Effect, Layer, PubSub, Stream } from "effect"
import type { Scope } from "effect"
import { createClient } from "redis"
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

/**
 * Redis hub options.
 *
 * - `url`: the Redis server (default `redis://127.0.0.1:6379`).
 * - `prefix`: key and channel prefix, so several rooms can share one Redis (default `netkit:chat`).
 * - `heartbeat`: how often this server proves it is alive (default 2 s); its presence expires after 3 missed beats,
 *   and the members of an expired server are removed by the others.
 * - `commandTimeout`: how long a hub operation waits for Redis before going local-only (default 1 s).
 *
 * @category models
 */
export interface RedisOptions {
  readonly url?: string | undefined
  readonly prefix?: string | undefined
  readonly heartbeat?: Duration.Input | undefined
  readonly commandTimeout?: Duration.Input | undefined
}

/**
 * A hub over Redis. Events go through one pub/sub channel; presence is a hash `identity -> server id` (so
 * `HSETNX` makes `name_taken` cluster-wide and `HLEN` is the cluster-wide count) plus a per-server key with a TTL
 * refreshed by a heartbeat. While Redis is unreachable the hub works for this server alone (local presence, no
 * cross-server events), logs once that delivery is degraded, and when Redis is back re-registers its members and
 * logs that delivery resumed. Messages published during the outage are not replayed.
 *
 * @category constructors
 */
export const makeRedis = (options: RedisOptions = {}): Effect.Effect<ChatHub["Service"], never, Scope.Scope> =>
  Effect.gen(function*() {
    const url = options.url ?? "redis://127.0.0.1:6379"
    const prefix = options.prefix ?? "netkit:chat"
    const heartbeatMillis = Duration.toMillis(Duration.fromInputUnsafe(options.heartbeat ?? "2 seconds"))
    const commandTimeout = options.commandTimeout ?? "1 second"
    const channel = `${prefix}:events`
    const membersKey = `${prefix}:members`
    const serverId = `${process.pid}-${Math.random().toString(36).slice(2, 10)}`
    const aliveKey = (id: string) => `${prefix}:server:${id}`
    // This server's members, the source of truth for re-registering them after an outage.
    const mine = new Set<string>()
    const events = yield* Effect.acquireRelease(PubSub.unbounded<HubEvent>(), PubSub.shutdown)

    // Commands fail at once while disconnected (no offline queue), so an outage never stalls a chat server.
    const clientOptions = {
      url,
      disableOfflineQueue: true,
      socket: { reconnectStrategy: (retries: number) => Math.min(100 * (retries + 1), 1000), connectTimeout: 1000 }
    }
    const commands = createClient(clientOptions)
    const subscriber = createClient(clientOptions)

    let degraded = false
    const degrade = (cause: unknown) =>
      Effect.suspend(() => {
        if (degraded) return Effect.void
        degraded = true
        return Effect.logWarning("redis unreachable: cross-server chat delivery is degraded (local clients only)").pipe(
          Effect.annotateLogs({ url, cause: String(cause) })
        )
      })
    const run = <A>(command: () => Promise<A>) =>
      Effect.tryPromise(command).pipe(
        Effect.timeout(commandTimeout),
        Effect.tapError(degrade)
      )

    const beat = Effect.gen(function*() {
      yield* run(() => commands.set(aliveKey(serverId), "1", { PX: heartbeatMillis * 3 }))
      // Members of servers whose heartbeat expired (crashed, partitioned) would count forever: remove them.
      const all = yield* run(() => commands.hGetAll(membersKey))
      const owners = new Set(Object.values(all))
      owners.delete(serverId)
      for (const owner of owners) {
        if ((yield* run(() => commands.exists(aliveKey(owner)))) === 0) {
          const stale = Object.entries(all).filter(([, id]) => id === owner).map(([identity]) => identity)
          if (stale.length > 0) yield* run(() => commands.hDel(membersKey, stale))
        }
      }
    })

    // After a (re)connection: register our members again (Redis may have restarted empty), then say so.
    const resync = Effect.gen(function*() {
      yield* run(() => commands.set(aliveKey(serverId), "1", { PX: heartbeatMillis * 3 }))
      for (const identity of mine) yield* run(() => commands.hSet(membersKey, identity, serverId))
      if (degraded) {
        degraded = false
        yield* Effect.logInfo("redis reachable again: cross-server chat delivery resumed").pipe(Effect.annotateLogs({ url }))
      }
    }).pipe(Effect.ignore)

    const runFork = Effect.runForkWith(yield* Effect.context<never>())
    commands.on("error", (cause) => runFork(degrade(cause)))
    subscriber.on("error", (cause) => runFork(degrade(cause)))
    commands.on("ready", () => runFork(resync))

    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        if (mine.size > 0) yield* run(() => commands.hDel(membersKey, [...mine])).pipe(Effect.ignore)
        yield* run(() => commands.del(aliveKey(serverId))).pipe(Effect.ignore)
        yield* Effect.promise(() => Promise.allSettled([commands.close(), subscriber.close()]))
      })
    )
    // Connecting retries forever in the background; a server starts (degraded) even when Redis is down.
    const connected = Promise.allSettled([commands.connect(), subscriber.connect()])
    yield* Effect.promise(() => connected).pipe(Effect.timeoutOption(commandTimeout))
    yield* Effect.tryPromise(() =>
      subscriber.subscribe(channel, (raw) => {
        try {
          PubSub.publishUnsafe(events, JSON.parse(raw) as HubEvent)
        } catch {
          // Not ours to judge; a malformed event from another writer is dropped.
        }
      })
    ).pipe(Effect.catch((cause) => degrade(cause)))
    yield* beat.pipe(
      Effect.ignore,
      Effect.andThen(Effect.sleep(Duration.millis(heartbeatMillis))),
      Effect.forever,
      Effect.forkScoped({ startImmediately: true })
    )

    return ChatHub.of({
      kind: "redis",
      claim: (identity) =>
        Effect.gen(function*() {
          if (mine.has(identity)) return { _tag: "Taken" } as const
          const added = yield* run(() => commands.hSetNX(membersKey, identity, serverId))
          if (Number(added) === 0) return { _tag: "Taken" } as const
          mine.add(identity)
          return { _tag: "Claimed", count: yield* run(() => commands.hLen(membersKey)) } as const
        }).pipe(Effect.catch(() =>
          Effect.sync(() => {
            // Degraded: unique and counted on this server only.
            mine.add(identity)
            return { _tag: "Claimed", count: mine.size } as const
          })
        )),
      release: (identity) =>
        Effect.gen(function*() {
          mine.delete(identity)
          yield* run(() => commands.hDel(membersKey, identity))
          return yield* run(() => commands.hLen(membersKey))
        }).pipe(Effect.catch(() => Effect.sync(() => mine.size))),
      count: run(() => commands.hLen(membersKey)).pipe(Effect.catch(() => Effect.sync(() => mine.size))),
      publish: (event) => run(() => commands.publish(channel, JSON.stringify(event))).pipe(Effect.ignore),
      subscribe: Effect.map(PubSub.subscribe(events), (subscription) => Stream.fromSubscription(subscription))
    })
  })

/**
 * The Redis hub as a layer; releasing it removes this server's members and presence from Redis.
 *
 * @category layers
 */
export const layerRedis = (options?: RedisOptions): Layer.Layer<ChatHub> => Layer.effect(ChatHub, makeRedis(options))

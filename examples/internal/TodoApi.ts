/**
 * The app of `examples/api-server.ts`, written only with effect's own HTTP modules, as it would be for effect's
 * `NodeHttpServer`: an `HttpApi` of todos (Schema-validated bodies and typed errors), a streamed response and a
 * WebSocket echo beside it. It lives in its own module, without side effects, so that the fork and worker
 * strategies can load it (`app`, made with `EffectHttpServer.define`). The store is in memory: under fork and
 * worker there is one per process or thread.
 *
 *   GET  /todos            all todos
 *   GET  /todos/:id        one todo, or 404 {"_tag":"TodoNotFound","id":...}
 *   POST /todos            {"title": "..."} (1 to 100 characters, else 400) -> 201 and the new todo
 *   GET  /todos/stream     the todos as NDJSON, one line per todo, streamed
 *   GET  /echo             WebSocket: every message comes back upper-cased
 */
import { Effect, Layer, Ref, Schema, Stream } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiGroup, HttpApiSchema } from "effect/http-api"
import { Socket } from "effect/socket"
import * as EffectHttpServer from "../../src/servers/effect-http/EffectHttpServer.ts"

/** A todo. */
export class Todo extends Schema.Class<Todo>("Todo")({
  id: Schema.Int,
  title: Schema.String,
  done: Schema.Boolean
}) {}

/** What a client sends to create a todo. */
export const NewTodo = Schema.Struct({
  title: Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(100))
})

/** No todo has this id. */
export class TodoNotFound extends Schema.TaggedError<TodoNotFound>()("TodoNotFound", {
  id: Schema.Int
}, { httpApiStatus: 404 }) {}

/** The API, shareable with clients (`HttpApiClient.make(TodoApi)`). */
export class TodoApi extends HttpApi.make("todos").add(
  HttpApiGroup.make("todos")
    .add(
      HttpApiEndpoint.get("list", "/todos", { success: Schema.Array(Todo) }),
      HttpApiEndpoint.get("get", "/todos/:id", {
        params: { id: Schema.FiniteFromString.pipe(Schema.decodeTo(Schema.Int)) },
        success: Todo,
        error: TodoNotFound
      }),
      HttpApiEndpoint.post("create", "/todos", {
        payload: NewTodo,
        success: Todo.pipe(HttpApiSchema.status(201))
      })
    )
) {}

const seed: ReadonlyArray<Todo> = [
  new Todo({ id: 1, title: "serve effect apps on netkit", done: true }),
  new Todo({ id: 2, title: "measure them", done: false })
]

const handlers = HttpApiBuilder.group(
  TodoApi,
  "todos",
  Effect.fn(function*(handlers) {
    const store = yield* Ref.make(seed)
    return handlers.handleAll({
      list: () => Ref.get(store),
      get: ({ params }) =>
        Effect.flatMap(Ref.get(store), (todos) => {
          const todo = todos.find((t) => t.id === params.id)
          return todo === undefined ? Effect.fail(new TodoNotFound({ id: params.id })) : Effect.succeed(todo)
        }),
      create: ({ payload }) =>
        Ref.modify(store, (todos) => {
          const todo = new Todo({ id: todos.length + 1, title: payload.title, done: false })
          return [todo, [...todos, todo]]
        })
    })
  })
)

const encodeTodo = Schema.encodeSync(Schema.fromJsonString(Todo))

/** The todos as NDJSON, a streamed (chunked) response. */
const streamRoute = HttpRouter.add("GET", "/todos/stream", HttpServerResponse.stream(
  Stream.fromIterable(seed).pipe(Stream.map((todo) => `${encodeTodo(todo)}\n`), Stream.encodeText),
  { contentType: "application/x-ndjson" }
))

/** A WebSocket echo: every message back upper-cased, until the client closes. */
const echoRoute = HttpRouter.add("GET", "/echo", Effect.gen(function*() {
  const request = yield* HttpServerRequest.HttpServerRequest
  const socket = yield* Effect.orDie(request.upgrade)
  const write = yield* socket.writer
  const read = yield* Socket.readerString(socket)
  yield* Effect.flatMap(read, (texts) => write.write(texts.join("").toUpperCase())).pipe(
    Effect.forever,
    Effect.catchTag("SocketError", () => Effect.void)
  )
  return HttpServerResponse.empty()
}).pipe(Effect.scoped))

/** Every route of the app. */
export const Routes = Layer.mergeAll(
  HttpApiBuilder.layer(TodoApi).pipe(Layer.provide(handlers)),
  streamRoute,
  echoRoute
)

/** The app as effect users serve it: a layer that needs an `HttpServer`. */
export const AppLive = HttpRouter.serve(Routes, { disableListenLog: true })

/** The app as a netkit handler that every strategy can load. */
export const app = EffectHttpServer.define(AppLive, { module: import.meta.url, export: "app" })

/**
 * effect-netkit: Effect-native TCP, UDP and Unix-socket servers.
 *
 * Each module is exported as a namespace: `import { Server, StreamListener } from "effect-netkit"`.
 * A single module can also be imported by path (`effect-netkit/core/Server.ts`), which loads less:
 * the index brings in every server, the Redis client among them.
 *
 * @since 0.1.0
 */
export * as Connection from "./core/Connection.ts"
export * as Datagram from "./core/Datagram.ts"
export * as DatagramListener from "./core/DatagramListener.ts"
export * as Handler from "./core/Handler.ts"
export * as Listener from "./core/Listener.ts"
export * as Main from "./core/Main.ts"
export * as Metrics from "./core/Metrics.ts"
export * as Server from "./core/Server.ts"
export * as Strategy from "./core/Strategy.ts"
export * as StreamListener from "./core/StreamListener.ts"
export * as Tls from "./core/Tls.ts"
export * as Transport from "./core/Transport.ts"
export * as ForkStrategy from "./core/ForkStrategy.ts"
export * as WorkerStrategy from "./core/WorkerStrategy.ts"
export * as ChatMessage from "./protocol/ChatMessage.ts"
export * as LengthPrefixedFraming from "./protocol/LengthPrefixedFraming.ts"
export * as Http1Parser from "./protocol/http/Http1Parser.ts"
export * as RequestHead from "./protocol/http/RequestHead.ts"
export * as ResponseHead from "./protocol/http/ResponseHead.ts"
export * as EchoServer from "./servers/echo/EchoServer.ts"
export * as ChatClient from "./servers/chat/ChatClient.ts"
export * as ChatHub from "./servers/chat/ChatHub.ts"
export * as ChatServer from "./servers/chat/ChatServer.ts"
export * as HttpRequest from "./servers/http/HttpRequest.ts"
export * as HttpResponse from "./servers/http/HttpResponse.ts"
export * as HttpServer from "./servers/http/HttpServer.ts"
export * as WebServer from "./servers/http/WebServer.ts"
export * as EffectHttpServer from "./servers/effect-http/EffectHttpServer.ts"

/**
 * effect-netkit: Effect-native TCP, UDP and Unix-socket servers.
 *
 * Each module is exported as a namespace: `import { Server, StreamListener } from "effect-netkit"`.
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
export * as Transport from "./core/Transport.ts"
export * as ChatMessage from "./protocol/ChatMessage.ts"
export * as LengthPrefixedFraming from "./protocol/LengthPrefixedFraming.ts"
export * as EchoServer from "./servers/echo/EchoServer.ts"

import { fileURLToPath } from "node:url"
import { defineConfig } from "vitest/config"

/** Runs the prepared upstream tests (`conformance/.run`) against the netkit engine; see `conformance/run.ts`. */
export default defineConfig({
  resolve: {
    alias: [
      { find: /^@effect\/platform-node$/, replacement: fileURLToPath(new URL("./platformNode.ts", import.meta.url)) }
    ]
  },
  test: {
    root: fileURLToPath(new URL("..", import.meta.url)),
    include: ["conformance/.run/**/*.test.ts"],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    pool: "forks"
  }
})

import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Socket tests bind loopback ports and spawn processes: keep files in separate forks.
    pool: "forks",
    reporters: ["default", "./test/utils/SummaryReporter.ts"]
  }
})

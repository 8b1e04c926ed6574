/**
 * Prints one closing line, `vitest: N passed, N failed` (with `, N skipped` when any), so that a
 * run's outcome is readable by tools that look for that plain summary.
 */
import type { Reporter, TestModule } from "vitest/node"

export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    let passed = 0
    let failed = 0
    let skipped = 0
    for (const module of testModules) {
      let tests = 0
      for (const test of module.children.allTests()) {
        tests++
        const state = test.result().state
        if (state === "passed") passed++
        else if (state === "failed") failed++
        else if (state === "skipped") skipped++
      }
      // A file that failed to load has no tests but must not read as a pass.
      if (module.state() === "failed" && tests === 0) failed++
    }
    process.stdout.write(`\nvitest: ${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ""}\n`)
  }
}

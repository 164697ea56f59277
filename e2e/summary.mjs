// Prints the e2e summary from vitest's JSON report: one line per suite (file) with its result, test
// counts and duration, then a closing line. Exits non-zero when a suite failed or no test ran.
//   node e2e/summary.mjs <report.json> [total seconds]
import { readFileSync } from "node:fs";
import path from "node:path";

const [file, totalSeconds] = process.argv.slice(2);
let report;
try {
  report = JSON.parse(readFileSync(file, "utf8"));
} catch (error) {
  console.error(`e2e summary: cannot read ${file}: ${error.message}`);
  process.exit(1);
}

const duration = (ms) => {
  const seconds = Math.round(ms / 1000);
  return seconds >= 60 ? `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, "0")}s` : `${seconds}s`;
};

let failedSuites = 0;
console.log("e2e summary:");
for (const suite of report.testResults ?? []) {
  const name = path.basename(suite.name).replace(/\.test\.ts$/, "");
  const tests = suite.assertionResults ?? [];
  const passed = tests.filter((test) => test.status === "passed").length;
  const failed = tests.filter((test) => test.status === "failed").length;
  const skipped = tests.length - passed - failed;
  const ok = suite.status === "passed" && failed === 0 && passed > 0;
  if (!ok) failedSuites++;
  const counts = `${passed}/${tests.length} passed${failed ? `, ${failed} failed` : ""}${skipped ? `, ${skipped} skipped` : ""}`;
  console.log(`  ${name.padEnd(18)} ${(ok ? "PASSED" : "FAILED").padEnd(7)} ${counts.padEnd(26)} ${duration((suite.endTime ?? 0) - (suite.startTime ?? 0))}`);
  for (const test of tests.filter((test) => test.status === "failed")) {
    console.log(`      failed: ${test.fullName}`);
    const message = (test.failureMessages?.[0] ?? "").split("\n")[0];
    if (message) console.log(`        ${message.slice(0, 300)}`);
  }
  if (suite.status !== "passed" && tests.length === 0) console.log(`      ${(suite.message ?? "the suite did not run").split("\n")[0]}`);
}
const { numPassedTests: passed, numFailedTests: failed, numTotalTests: total } = report;
const suites = (report.testResults ?? []).length;
const wall = totalSeconds === undefined ? "" : ` in ${duration(Number(totalSeconds) * 1000)}`;
console.log(`e2e: ${suites} suites (${suites - failedSuites} passed, ${failedSuites} failed), ${total} tests: ${passed} passed, ${failed} failed${wall}`);
if (failedSuites > 0 || passed === 0) process.exit(1);

// Prints the e2e summary from vitest's JSON report: one line per suite (file) with its result, test
// counts and duration, then a closing line. Exits non-zero when a suite failed or no test ran.
//   node e2e/summary.mjs <report.json> [total seconds]
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";

const [reportFile, totalSeconds] = process.argv.slice(2);
let report;
try {
  report = JSON.parse(readFileSync(reportFile, "utf8"));
} catch (error) {
  console.error(`e2e summary: cannot read ${reportFile}: ${error.message}`);
  process.exit(1);
}

const duration = (ms) => {
  const seconds = Math.round(ms / 1000);
  return seconds >= 60 ? `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, "0")}s` : `${seconds}s`;
};

// Each suite records its wall time including install and cleanup (e2e/support/suite.ts); the report
// itself only times the tests.
const wallTime = (name, suite) => {
  const file = path.join(path.dirname(reportFile), "timings", `${name}.json`);
  if (existsSync(file)) return duration(JSON.parse(readFileSync(file, "utf8")).seconds * 1000);
  return `${duration((suite.endTime ?? 0) - (suite.startTime ?? 0))} (tests only)`;
};

let failedSuites = 0;
console.log("e2e summary:");
// In the order they ran (the report lists them in another).
const suites = [...(report.testResults ?? [])].sort((a, b) => (a.startTime ?? 0) - (b.startTime ?? 0));
for (const suite of suites) {
  const name = path.basename(suite.name).replace(/\.test\.ts$/, "");
  const tests = suite.assertionResults ?? [];
  const passed = tests.filter((test) => test.status === "passed").length;
  const failed = tests.filter((test) => test.status === "failed").length;
  const skipped = tests.length - passed - failed;
  const ok = suite.status === "passed" && failed === 0 && passed > 0;
  if (!ok) failedSuites++;
  const counts = `${passed}/${tests.length} passed${failed ? `, ${failed} failed` : ""}${skipped ? `, ${skipped} skipped` : ""}`;
  console.log(`  ${name.padEnd(20)} ${(ok ? "PASSED" : "FAILED").padEnd(7)} ${counts.padEnd(26)} ${wallTime(name, suite)}`);
  for (const test of tests.filter((test) => test.status === "failed")) {
    console.log(`      failed: ${test.fullName}`);
    const message = (test.failureMessages?.[0] ?? "").split("\n")[0];
    if (message) console.log(`        ${message.slice(0, 300)}`);
  }
  if (suite.status !== "passed" && tests.length === 0) console.log(`      ${(suite.message ?? "the suite did not run").split("\n")[0]}`);
}
const { numPassedTests: passed, numFailedTests: failed, numTotalTests: total } = report;
const wall = totalSeconds === undefined ? "" : ` in ${duration(Number(totalSeconds) * 1000)}`;
console.log(`e2e: ${suites.length} suites (${suites.length - failedSuites} passed, ${failedSuites} failed), ${total} tests: ${passed} passed, ${failed} failed${wall}`);
// The plain closing line CI reads ("word: N passed, N failed").
console.log(`e2e: ${passed} passed, ${failed} failed`);
if (failedSuites > 0 || passed === 0) process.exit(1);

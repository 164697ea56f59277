// Prints vitest's JSON report as one plain closing line ("vitest: N passed, N failed, N skipped"),
// which CI reads; exits non-zero when the report is missing or ran no test.
import { readFileSync } from "node:fs";

const file = process.argv[2];
let report;
try {
  report = JSON.parse(readFileSync(file, "utf8"));
} catch (error) {
  console.error(`test summary: cannot read ${file}: ${error.message}`);
  process.exit(1);
}
const { numPassedTests: passed, numFailedTests: failed, numPendingTests: skipped, numTodoTests: todo } = report;
console.log(`vitest: ${passed} passed, ${failed} failed, ${skipped + todo} skipped`);
if (passed + failed === 0) {
  console.error("test summary: no test ran");
  process.exit(1);
}

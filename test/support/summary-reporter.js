// Ends every run with one plain line, "N passed, N failed[, N skipped]", that tools reading
// the last lines of CI output understand whatever the test runner. Written at process exit so
// it comes after Jest's own summary.
const { writeSync } = require('node:fs');

class SummaryReporter {
  onRunComplete(_contexts, results) {
    const skipped = results.numPendingTests + results.numTodoTests;
    const failed = results.numFailedTests + results.numRuntimeErrorTestSuites;
    const line =
      `${results.numPassedTests} passed, ${failed} failed` +
      (skipped ? `, ${skipped} skipped` : '');
    process.once('exit', () => writeSync(2, `${line}\n`));
  }
}

module.exports = SummaryReporter;

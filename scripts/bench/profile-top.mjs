// Prints where a `node --cpu-prof` profile spent its time: self time per function (top N) and the
// inclusive time of the functions whose names match an optional filter.
// Usage: node scripts/bench/profile-top.mjs <file.cpuprofile | directory> [N] [name-filter]
// Given a directory (one server's, from BENCH_CPU_PROF=1), it reads the profile with the most samples:
// the event loop's, not the upload worker's.
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";

const [file, topText = "25", filter] = process.argv.slice(2);
if (!file) {
  console.error("usage: node scripts/bench/profile-top.mjs <file.cpuprofile | directory> [N] [name-filter]");
  process.exit(2);
}
function load(target) {
  if (!statSync(target).isDirectory()) return JSON.parse(readFileSync(target, "utf8"));
  const profiles = readdirSync(target)
    .filter((name) => name.endsWith(".cpuprofile"))
    .map((name) => JSON.parse(readFileSync(path.join(target, name), "utf8")));
  if (profiles.length === 0) {
    console.error(`no .cpuprofile in ${target}`);
    process.exit(2);
  }
  return profiles.reduce((most, next) => (next.samples.length > most.samples.length ? next : most));
}
const profile = load(file);
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const parentOf = new Map();
for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);

// Sample counts → self time per node; deltas are in microseconds.
const selfMicros = new Map();
profile.samples.forEach((id, index) => selfMicros.set(id, (selfMicros.get(id) ?? 0) + (profile.timeDeltas[index] ?? 0)));
const total = [...selfMicros.values()].reduce((a, b) => a + b, 0);

const label = (node) => {
  const { functionName, url, lineNumber } = node.callFrame;
  const where = url ? `${url.replace(/^.*\/(node_modules\/)?/, "$1")}:${lineNumber + 1}` : "";
  return `${functionName || "(anonymous)"} ${where}`.trim();
};
const self = new Map();
const inclusive = new Map();
for (const [id, micros] of selfMicros) {
  const node = byId.get(id);
  self.set(label(node), (self.get(label(node)) ?? 0) + micros);
  // Inclusive: every distinct function on the stack gets the sample once.
  const seen = new Set();
  for (let current = id; current !== undefined; current = parentOf.get(current)) {
    const name = label(byId.get(current));
    if (seen.has(name)) continue;
    seen.add(name);
    inclusive.set(name, (inclusive.get(name) ?? 0) + micros);
  }
}
const show = (title, map) => {
  console.log(`${title} (total ${(total / 1e6).toFixed(2)} s sampled)`);
  const rows = [...map].filter(([name]) => !filter || name.includes(filter)).sort((a, b) => b[1] - a[1]).slice(0, Number(topText));
  for (const [name, micros] of rows) console.log(`${((100 * micros) / total).toFixed(1).padStart(6)}%  ${name}`);
};
show("self time", self);
console.log();
show("inclusive time", inclusive);

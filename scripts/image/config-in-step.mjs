// Compares the configuration the Dockerfile's final stage gives the image with the configuration of a
// built image, so that the two build paths (the Dockerfile, and build.sh's offline `docker commit`
// changes) cannot drift apart: user, working directory, environment, ports, volumes, health check,
// command and labels. Values the Dockerfile takes from build arguments (${VERSION}, ...) are compared
// by key only; test.sh checks their values.
//
//   docker image inspect -f '{{json .Config}}' IMAGE | node scripts/image/config-in-step.mjs Dockerfile
//
// Prints one line per difference and exits 1 if there is any; prints a summary and exits 0 otherwise.
import fs from "node:fs";

const [dockerfilePath = "Dockerfile"] = process.argv.slice(2);
const image = JSON.parse(fs.readFileSync(0, "utf8"));

// Instructions of the final stage, continuation lines joined, comments dropped.
const lines = fs
  .readFileSync(dockerfilePath, "utf8")
  .replace(/\\\n/g, " ")
  .split("\n")
  .map((line) => line.trim())
  .filter((line) => line !== "" && !line.startsWith("#"));
const finalStage = lines.slice(lines.findLastIndex((line) => /^FROM\s/i.test(line)) + 1);
const instructions = finalStage.map((line) => {
  const [, keyword = "", rest = ""] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
  return { keyword: keyword.toUpperCase(), rest };
});
const all = (keyword) => instructions.filter((instruction) => instruction.keyword === keyword).map((instruction) => instruction.rest);
const last = (keyword) => all(keyword).at(-1);

// Docker stores durations in nanoseconds.
const NANOS = { ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
function duration(text) {
  const match = /^(\d+)(ms|s|m|h)$/.exec(text);
  if (!match) throw new Error(`unsupported duration '${text}'`);
  return Number(match[1]) * NANOS[match[2]];
}

const expected = {};
const user = last("USER");
if (user !== undefined) expected.User = user;
const workdir = last("WORKDIR");
if (workdir !== undefined) expected.WorkingDir = workdir;
const cmd = last("CMD");
if (cmd !== undefined) expected.Cmd = JSON.parse(cmd);
expected.ExposedPorts = all("EXPOSE")
  .flatMap((rest) => rest.split(/\s+/))
  .map((port) => (port.includes("/") ? port : `${port}/tcp`))
  .sort();
expected.Volumes = all("VOLUME")
  .flatMap((rest) => (rest.startsWith("[") ? JSON.parse(rest) : rest.split(/\s+/)))
  .sort();
const healthcheck = last("HEALTHCHECK");
if (healthcheck !== undefined) {
  const [, flags = "", command = ""] = /^((?:--\S+\s+)*)CMD\s+(.*)$/.exec(healthcheck) ?? [];
  const options = Object.fromEntries(flags.trim().split(/\s+/).filter(Boolean).map((flag) => flag.replace(/^--/, "").split("=")));
  expected.Healthcheck = {
    Test: ["CMD", ...JSON.parse(command)],
    Interval: options.interval === undefined ? 0 : duration(options.interval),
    Timeout: options.timeout === undefined ? 0 : duration(options.timeout),
    StartPeriod: options["start-period"] === undefined ? 0 : duration(options["start-period"]),
    Retries: options.retries === undefined ? 0 : Number(options.retries),
  };
}
const env = all("ENV").map((rest) => rest.replace(/^(\S+)\s+/, (_, name) => (name.includes("=") ? `${name} ` : `${name}=`)).trim());
const labels = {};
for (const rest of all("LABEL")) {
  for (const [, key, value] of rest.matchAll(/([\w.-]+)="([^"]*)"/g)) labels[key] = value;
}

const differences = [];
const actual = {
  User: image.User,
  WorkingDir: image.WorkingDir,
  Cmd: image.Cmd,
  ExposedPorts: Object.keys(image.ExposedPorts ?? {}).sort(),
  Volumes: Object.keys(image.Volumes ?? {}).sort(),
  Healthcheck:
    image.Healthcheck === undefined || image.Healthcheck === null
      ? undefined
      : {
          Test: image.Healthcheck.Test,
          Interval: image.Healthcheck.Interval ?? 0,
          Timeout: image.Healthcheck.Timeout ?? 0,
          StartPeriod: image.Healthcheck.StartPeriod ?? 0,
          Retries: image.Healthcheck.Retries ?? 0,
        },
};
for (const [field, value] of Object.entries(expected)) {
  if (JSON.stringify(actual[field]) !== JSON.stringify(value)) {
    differences.push(`${field}: Dockerfile ${JSON.stringify(value)}, image ${JSON.stringify(actual[field])}`);
  }
}
for (const variable of env) {
  if (!(image.Env ?? []).includes(variable)) differences.push(`Env: Dockerfile ${variable}, image ${JSON.stringify(image.Env)}`);
}
// The offline path's own cache key is its only label of its own.
const imageLabels = Object.fromEntries(Object.entries(image.Labels ?? {}).filter(([key]) => !key.startsWith("io.kubeflow.kfp-artifacts.")));
for (const key of new Set([...Object.keys(labels), ...Object.keys(imageLabels)])) {
  const want = labels[key];
  const got = imageLabels[key];
  if (want === undefined || got === undefined) differences.push(`Label ${key}: Dockerfile ${want ?? "(none)"}, image ${got ?? "(none)"}`);
  else if (!want.includes("${") && want !== got) differences.push(`Label ${key}: Dockerfile "${want}", image "${got}"`);
}

if (differences.length > 0) {
  for (const difference of differences) console.log(difference);
  process.exit(1);
}
console.log(
  `user, workdir, env, cmd, ports ${expected.ExposedPorts.join(" ")}, volumes ${expected.Volumes.join(" ")}, ` +
    `health check, ${Object.keys(labels).length} labels`,
);

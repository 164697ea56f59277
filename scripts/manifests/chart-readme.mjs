// Renders the chart's README.md from values.yaml (its `# --` comments are the documentation),
// values.schema.json (types), Chart.yaml and the server's configuration schema (which variable each
// value sets), so the reference table never drifts from the values.
import YAML from "yaml";

/** Documented values in file order: {path, description}. A `# -- text` comment (continued by
 * further `#` lines) documents the key on the line right after it. */
export function documentedValues(valuesText) {
  const documented = [];
  const stack = []; // [{indent, key}]
  let pending;
  for (const line of valuesText.split("\n")) {
    const comment = /^\s*# ?(.*)$/.exec(line);
    if (comment) {
      const text = comment[1] ?? "";
      if (text.startsWith("-- ")) pending = [text.slice(3)];
      else if (pending) pending.push(text);
      continue;
    }
    const keyMatch = /^(\s*)([A-Za-z0-9_]+):/.exec(line);
    if (!keyMatch) {
      if (line.trim() === "") pending = undefined;
      continue;
    }
    const indent = keyMatch[1].length;
    while (stack.length > 0 && stack[stack.length - 1].indent >= indent) stack.pop();
    stack.push({ indent, key: keyMatch[2] });
    if (pending) documented.push({ path: stack.map((entry) => entry.key), description: pending.join(" ") });
    pending = undefined;
  }
  return documented;
}

function schemaAt(schema, keys) {
  let node = schema;
  for (const key of keys) node = node?.properties?.[key];
  return node;
}

function typeOf(node) {
  if (!node) return "";
  if (node.enum) return node.enum.map((v) => JSON.stringify(v)).join(" \\| ");
  if (node.oneOf) return node.oneOf.map((option) => option.type).join(" \\| ");
  return [node.type].flat().join(" \\| ");
}

function valueAt(values, keys) {
  return keys.reduce((node, key) => (node == null ? undefined : node[key]), values);
}

function cell(text) {
  return text.replace(/\|/g, "\\|").replace(/\n/g, " ");
}

/** `variablesByValue`: value path -> the server's environment variables it sets (docs/configuration.md). */
export function renderChartReadme({ valuesText, schema, chart, variablesByValue }) {
  const values = YAML.parse(valuesText);
  const rows = documentedValues(valuesText).map(({ path, description }) => {
    const key = path.join(".");
    const defaultValue = JSON.stringify(valueAt(values, path) ?? null);
    const variables = (variablesByValue.get(key) ?? []).map((name) => `\`${name}\``).join(", ");
    return `| \`${key}\` | ${typeOf(schemaAt(schema, path))} | \`${cell(defaultValue)}\` | ${cell(description)} | ${variables} |`;
  });
  return `<!-- Generated from values.yaml by \`make manifests\` (scripts/manifests/chart-readme.mjs). Do not edit. -->
# ${chart.name}

${chart.description}

Version ${chart.version}, app version ${chart.appVersion}.

## Install

\`\`\`sh
helm install ${chart.name} charts/${chart.name} --namespace kubeflow --create-namespace
helm test ${chart.name} --namespace kubeflow
\`\`\`

## Topologies

| Topology | Values | Example |
|---|---|---|
| Shared server, one ReadWriteOnce PVC (default) | \`ci/shared-rwo-values.yaml\` | \`examples/shared-rwo.yaml\` |
| Shared server, N replicas on ReadWriteMany | \`ci/shared-rwx-values.yaml\` | \`examples/shared-rwx.yaml\` |
| Node-local DaemonSet on ReadWriteMany | \`ci/daemonset-values.yaml\` | \`examples/daemonset.yaml\` |
| Node-local DaemonSet on a shared node path | \`ci/daemonset-hostpath-values.yaml\` | \`examples/daemonset-hostpath.yaml\` |
| Dedicated servers only (team-a, team-b) | \`ci/dedicated-values.yaml\` | \`examples/dedicated.yaml\` |
| Shared plus dedicated | \`ci/shared-dedicated-values.yaml\` | \`examples/shared-dedicated.yaml\` |
| Kubeflow (Istio, \`kubeflow-userid\`) | \`ci/kubeflow-values.yaml\` | \`examples/kubeflow.yaml\` |
| Rebranded by a vendor | \`ci/rebranded-values.yaml\` | \`examples/rebranded.yaml\` |

A node path (\`persistence.hostPath\`) is only correct when every node sees the same files there (an NFS
or CephFS mount on each node): with node-local disks an artifact written on one node is invisible on
the others.

## Rebranding

Change \`name\`, \`home\`, \`sources\` in \`Chart.yaml\`, and \`nameOverride\`/\`fullnameOverride\`,
\`image.registry\`/\`image.repository\`/\`image.tag\` (or \`global.imageRegistry\`), \`imagePullSecrets\` and
\`commonLabels\` in values. No template hard-codes the product name or registry (a test proves it).

## Values

The last column names the server's environment variable a value sets
([docs/configuration.md](../../docs/configuration.md) describes each).

| Key | Type | Default | Description | Sets |
|---|---|---|---|---|
${rows.join("\n")}
`;
}

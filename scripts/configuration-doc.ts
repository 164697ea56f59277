// docs/configuration.md, generated from the server's configuration schema (server/src/config.ts): every
// environment variable with its default, meaning and the chart value that sets it. `make manifests`
// writes it (scripts/manifests/generate.mjs); scripts/configuration-doc.test.ts fails when it drifts.
import { describeSettings, type SettingDescription } from "../server/src/config.js";

export const CONFIGURATION_DOC_PATH = "docs/configuration.md";

function cell(text: string): string {
  return text.replace(/\|/g, "\\|").replace(/\n/g, " ");
}

function defaultCell(setting: SettingDescription): string {
  if (setting.default === undefined) return `unset (${setting.unset ?? "none"})`;
  return setting.default === "" ? "empty" : `\`${setting.default}\``;
}

function chartCell(setting: SettingDescription): string {
  const parts = [setting.chartValue === undefined ? "" : `\`${setting.chartValue}\``, setting.chartNote ?? ""];
  return parts.filter(Boolean).join(": ");
}

/** The chart value each variable is set from: value path -> variable names, in schema order. */
export function variablesByChartValue(settings: readonly SettingDescription[] = describeSettings()): Map<string, string[]> {
  const byValue = new Map<string, string[]>();
  for (const setting of settings) {
    if (setting.chartValue === undefined) continue;
    byValue.set(setting.chartValue, [...(byValue.get(setting.chartValue) ?? []), setting.name]);
  }
  return byValue;
}

export function renderConfigurationDoc(settings: readonly SettingDescription[] = describeSettings()): string {
  const rows = settings.map(
    (setting) =>
      `| \`${setting.name}\` | ${cell(defaultCell(setting))} | ${cell(setting.description)} | ${cell(chartCell(setting))} |`,
  );
  return `<!-- Generated from server/src/config.ts by \`make manifests\` (scripts/configuration-doc.ts). Do not edit. -->
# Configuration

The server reads its configuration from environment variables and validates it once at start-up: a bad
value stops the process with exit code 2 and a message naming the variable. An empty variable counts as
unset. Byte sizes accept a number of bytes or a quantity: \`1048576\`, \`512Mi\`, \`10Gi\`, \`1G\`. \`make run\`
passes every variable below through from its environment.

The Helm chart sets every variable from the value named in the last column (charts/kfp-artifacts/README.md
describes each value), or itself where the column says how. \`extraEnv\` overrides any of them: an entry
naming a variable the chart sets replaces the chart's entry.

A new setting goes into the schema in \`server/src/config.ts\` with its description, default and chart value
(and into \`Config\` and \`loadConfig\`'s mapping, where the server reads it), its value into the
chart's \`values.yaml\` and \`values.schema.json\` and its variable into \`kfp-artifacts.chartEnv\`
(\`templates/_pod.tpl\`); \`make manifests\` regenerates this page and the chart's README, and \`make test\`
fails while any of them is missing or stale.

| Variable | Default | Meaning | Chart |
|---|---|---|---|
${rows.join("\n")}
`;
}

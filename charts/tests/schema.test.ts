// values.schema.json: strict (wrong types, unknown keys and bad enums are refused before rendering),
// and in sync with values.yaml, which documents every value.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { chartDir, helmTemplate, type RenderOptions } from "./lib/render.js";

type Schema = { type?: string | string[]; properties?: Record<string, Schema>; additionalProperties?: unknown };

const schema = JSON.parse(readFileSync(path.join(chartDir, "values.schema.json"), "utf8")) as Schema;
const valuesText = readFileSync(path.join(chartDir, "values.yaml"), "utf8");
const values = parse(valuesText) as Record<string, unknown>;

const scratchDirs: string[] = [];
afterAll(() => {
  for (const dir of scratchDirs) rmSync(dir, { recursive: true, force: true });
});

/** A values file (not --set) with a fractional byte size: YAML reads it as a float the schema refuses. */
function fractionalBytesFile(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "schema-values-"));
  scratchDirs.push(dir);
  const file = path.join(dir, "values.yaml");
  writeFileSync(file, "limits:\n  maxUploadBytes: 1.5\n");
  return file;
}

const rejections: { name: string; options: RenderOptions; error: RegExp }[] = [
  { name: "an unknown top-level key", options: { set: ["replicas=3"] }, error: /additional properties 'replicas' not allowed/ },
  { name: "an unknown nested key", options: { set: ["persistence.sizeGi=5"] }, error: /additional properties 'sizeGi' not allowed/ },
  { name: "an unknown workload kind", options: { set: ["shared.workloadKind=statefulset"] }, error: /shared\/workloadKind/ },
  { name: "an unknown access mode", options: { set: ["persistence.accessMode=ReadOnlyMany"] }, error: /persistence\/accessMode/ },
  { name: "an unknown auth mode", options: { set: ["auth.mode=basic"] }, error: /auth\/mode/ },
  { name: "a string replica count", options: { setString: ["shared.replicas=two"] }, error: /shared\/replicas/ },
  { name: "a negative replica count", options: { set: ["shared.replicas=-1"] }, error: /shared\/replicas/ },
  { name: "a namespace that is not a DNS label", options: { set: ["dedicated.namespaces={Team_A}"] }, error: /dedicated\/namespaces\/0/ },
  { name: "a byte size with an unknown unit", options: { set: ["limits.maxUploadBytes=10GB"] }, error: /limits\/maxUploadBytes/ },
  { name: "a malformed digest", options: { set: ["image.digest=latest"] }, error: /image\/digest/ },
  { name: "a bad traffic policy", options: { set: ["service.internalTrafficPolicy=Node"] }, error: /service\/internalTrafficPolicy/ },
  { name: "no server process", options: { set: ["processes=0"] }, error: /'\/processes': minimum/ },
  { name: "more than 64 server processes", options: { set: ["processes=65"] }, error: /'\/processes': maximum/ },
  { name: "a process count that is not a number", options: { setString: ["processes=four"] }, error: /'\/processes': got string, want integer/ },
  { name: "a bad log level", options: { set: ["logLevel=trace"] }, error: /logLevel/ },
  { name: "an extraEnv value that is not a string", options: { set: ["extraEnv[0].name=FSYNC", "extraEnv[0].value=false"] }, error: /extraEnv\/0\/value/ },
  { name: "an empty audience list", options: { set: ["auth.audiences={}"] }, error: /auth\/audiences/ },
  { name: "a header name with spaces", options: { set: ["auth.trustedUserHeader=x user"] }, error: /auth\/trustedUserHeader/ },
  { name: "a pull policy typo", options: { set: ["image.pullPolicy=IfNotPresnt"] }, error: /image\/pullPolicy/ },
  { name: "an S3 port of 0", options: { set: ["s3.port=0"] }, error: /s3\/port/ },
  { name: "an S3 port that is not a number", options: { setString: ["s3.port=s3"] }, error: /s3\/port/ },
  { name: "an S3 switch that is a string", options: { setString: ["s3.enabled=yes"] }, error: /s3\/enabled/ },
  { name: "a bucket name that S3 refuses", options: { set: ["s3.kubeflowBucket=ML_Pipeline"] }, error: /s3\/kubeflowBucket/ },
  { name: "a system namespace that is not a DNS label", options: { set: ["s3.systemNamespace=Kube.flow"] }, error: /s3\/systemNamespace/ },
  { name: "an unknown S3 credentials key", options: { set: ["s3.credentials.secretName=x"] }, error: /additional properties 'secretName' not allowed/ },
  { name: "a Secret name with capitals", options: { set: ["s3.credentials.existingSecret=KFP"] }, error: /s3\/credentials\/existingSecret/ },
  { name: "a Secret key with a slash", options: { set: ["s3.masterKey.key=a/b"] }, error: /s3\/masterKey\/key/ },
  { name: "an unknown alias", options: { set: ["s3.aliases.minio=true"] }, error: /additional properties 'minio' not allowed/ },
  { name: "a system key user with a space", options: { set: ["s3.systemKeyUser=s3 system"] }, error: /s3\/systemKeyUser/ },
  { name: "a ServiceAccount name with capitals", options: { set: ["s3.namespaceServiceAccount=Default-Editor"] }, error: /s3\/namespaceServiceAccount/ },
  { name: "S3 peers that are not a list", options: { set: ["networkPolicy.s3From.podSelector=x"] }, error: /networkPolicy\/s3From/ },
  { name: "a fractional byte size in a values file", options: { valuesFiles: [fractionalBytesFile()] }, error: /limits\/maxUploadBytes/ },
  // Kubernetes types, typed from the Kubernetes API (a subset of its JSON schema): typos fail at install.
  { name: "a security context field typo", options: { set: ["securityContext.readOnlyRootFileSystem=true"] }, error: /additional properties 'readOnlyRootFileSystem' not allowed/ },
  { name: "a pod security context field typo", options: { set: ["podSecurityContext.runAsUsr=1000"] }, error: /additional properties 'runAsUsr' not allowed/ },
  { name: "an unknown seccomp profile type", options: { set: ["securityContext.seccompProfile.type=Default"] }, error: /securityContext\/seccompProfile\/type/ },
  { name: "a probe field typo", options: { set: ["livenessProbe.periodSecond=5"] }, error: /additional properties 'periodSecond' not allowed/ },
  { name: "a startup probe field typo", options: { set: ["startupProbe.httpGet.paht=/healthz", "startupProbe.httpGet.port=http"] }, error: /additional properties 'paht' not allowed/ },
  { name: "a probe threshold of 0", options: { set: ["readinessProbe.failureThreshold=0"] }, error: /readinessProbe\/failureThreshold/ },
  { name: "a resources field typo", options: { set: ["resources.limit.memory=1Gi"] }, error: /additional properties 'limit' not allowed/ },
  { name: "a resource quantity that is not one", options: { set: ["resources.requests.memory=lots"] }, error: /resources\/requests\/memory/ },
  { name: "a manager resources field typo", options: { set: ["manager.resources.request.cpu=1"] }, error: /additional properties 'request' not allowed/ },
  { name: "a toleration operator in the wrong case", options: { set: ["tolerations[0].key=a", "tolerations[0].operator=exists"] }, error: /tolerations\/0\/operator/ },
  { name: "a toleration field typo", options: { set: ["tolerations[0].key=a", "tolerations[0].efect=NoSchedule"] }, error: /additional properties 'efect' not allowed/ },
  { name: "a dedicated entry's toleration typo", options: { set: ["dedicated.namespaces[0].name=team-a", "dedicated.namespaces[0].tolerations[0].efect=NoSchedule"] }, error: /dedicated\/namespaces\/0/ },
  { name: "an affinity field typo", options: { set: ["affinity.nodeAfinity.x=y"] }, error: /additional properties 'nodeAfinity' not allowed/ },
  { name: "an unknown Deployment strategy", options: { set: ["strategy.type=Rolling"] }, error: /strategy\/type/ },
  { name: "an unknown DaemonSet strategy", options: { set: ["updateStrategy.type=Recreate"] }, error: /updateStrategy\/type/ },
  { name: "a lifecycle field typo", options: { set: ["lifecycle.preStop.sleep.second=5"] }, error: /additional properties 'second' not allowed/ },
  { name: "a volume mount without a path", options: { set: ["extraVolumeMounts[0].name=ca"] }, error: /extraVolumeMounts\/0/ },
  { name: "a volume with no source", options: { set: ["extraVolumes[0].name=ca"] }, error: /extraVolumes\/0/ },
  { name: "an init container without an image", options: { set: ["initContainers[0].name=init"] }, error: /initContainers\/0/ },
  { name: "a sidecar's security context typo", options: { set: ["extraContainers[0].name=s", "extraContainers[0].image=i", "extraContainers[0].securityContext.runAsNonroot=true"] }, error: /additional properties 'runAsNonroot' not allowed/ },
  { name: "an env source typo", options: { set: ["extraEnvFrom[0].secretRf.name=x"] }, error: /additional properties 'secretRf' not allowed/ },
  { name: "an extraEnv field typo", options: { set: ["extraEnv[0].name=A", "extraEnv[0].valu=x"] }, error: /additional properties 'valu' not allowed/ },
  { name: "a relabeling action typo", options: { set: ["serviceMonitor.relabelings[0].action=rename"] }, error: /serviceMonitor\/relabelings\/0\/action/ },
  { name: "a scrape timeout without a unit", options: { set: ["serviceMonitor.scrapeTimeout=10"] }, error: /serviceMonitor\/scrapeTimeout/ },
  { name: "an API server port of 0", options: { set: ["networkPolicy.egress.apiServerPorts={0}"] }, error: /networkPolicy\/egress\/apiServerPorts\/0/ },
  { name: "a token mount switch that is a string", options: { setString: ["automountServiceAccountToken=yes"] }, error: /automountServiceAccountToken/ },
  { name: "a global pull secret without a name", options: { set: ["global.imagePullSecrets[0].secret=x"] }, error: /global\/imagePullSecrets\/0/ },
];

describe("values.schema.json", () => {
  it.each(rejections)("rejects $name", async ({ options, error }) => {
    const result = await helmTemplate(options);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/values don't meet the specifications of the schema/);
    expect(result.stderr).toMatch(error);
  });

  it("closes every object it describes (additionalProperties: false), except Helm's shared `global`", () => {
    const open: string[] = [];
    const walk = (node: Schema, at: string) => {
      if (node.properties) {
        if (node.additionalProperties !== false && at !== "global") open.push(at || "(root)");
        for (const [key, child] of Object.entries(node.properties)) walk(child, at ? `${at}.${key}` : key);
      }
    };
    walk(schema, "");
    expect(open).toEqual([]);
  });

  it("describes exactly the keys values.yaml has, so neither can drift", () => {
    const schemaPaths: string[] = [];
    const walkSchema = (node: Schema, at: string[]) => {
      for (const [key, child] of Object.entries(node.properties ?? {})) {
        schemaPaths.push([...at, key].join("."));
        walkSchema(child, [...at, key]);
      }
    };
    walkSchema(schema, []);
    const valuePaths: string[] = [];
    const walkValues = (node: unknown, at: string[]) => {
      if (node === null || typeof node !== "object" || Array.isArray(node)) return;
      for (const [key, child] of Object.entries(node)) {
        const here = [...at, key];
        valuePaths.push(here.join("."));
        // Free-form maps (labels, security contexts, probes, resources) are passed through whole.
        const childSchema = here.reduce<Schema | undefined>((s, k) => s?.properties?.[k], schema);
        if (childSchema?.properties) walkValues(child, here);
      }
    };
    walkValues(values, []);
    expect(valuePaths.sort()).toEqual(schemaPaths.sort());
  });

  it("is satisfied by values.yaml itself", async () => {
    const result = await helmTemplate();
    expect(result.code).toBe(0);
  });
});

/** Paths of the values a `# -- text` comment documents (the key on the line after the comment block). */
function documentedPaths(text: string): Set<string> {
  const documented = new Set<string>();
  const stack: { indent: number; key: string }[] = [];
  let pending = false;
  for (const line of text.split("\n")) {
    if (/^\s*# -- /.test(line)) pending = true;
    if (/^\s*#/.test(line)) continue;
    const match = /^(\s*)([A-Za-z0-9_]+):/.exec(line);
    if (!match) {
      pending = false;
      continue;
    }
    const indent = match[1]?.length ?? 0;
    while (stack.length > 0 && (stack[stack.length - 1]?.indent ?? 0) >= indent) stack.pop();
    stack.push({ indent, key: match[2] ?? "" });
    if (pending) documented.add(stack.map((entry) => entry.key).join("."));
    pending = false;
  }
  return documented;
}

describe("values.yaml", () => {
  it("documents every value with a `# --` comment (headings of documented groups excepted)", () => {
    const documented = documentedPaths(valuesText);
    const undocumented: string[] = [];
    const walk = (node: Schema, at: string[]) => {
      for (const [key, child] of Object.entries(node.properties ?? {})) {
        const here = [...at, key];
        if (documented.has(here.join("."))) continue;
        // An undocumented group heading is fine when each of its values is documented.
        if (child.properties !== undefined) walk(child, here);
        else undocumented.push(here.join("."));
      }
    };
    walk(schema, []);
    expect(undocumented).toEqual([]);
    expect(documented.size).toBeGreaterThan(60);
  });
});

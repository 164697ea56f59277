// Shell recipes written in Markdown, so that a page's commands can be run exactly as a reader would
// copy them. A recipe page marks its fenced blocks in the info string:
//   ```sh recipe-settings   the variables a reader sets (a runner substitutes its own values)
//   ```sh recipe            run by every variant
//   ```sh recipe=<variant>  run by that variant only (alternatives, e.g. curl or the aws CLI)
// Blocks without a marker are illustrations and never run. The same module extracts the Kubernetes
// objects and URLs the commands name, so a test can prove a recipe refers only to what the chart
// renders and that the identity it makes a token for is actually allowed to do what it then does.

export interface FencedBlock {
  /** The info string's first word (`sh`), empty when there is none. */
  readonly language: string;
  /** The info string's other words (`recipe`, `recipe=curl`). */
  readonly attributes: readonly string[];
  readonly text: string;
  /** 1-based line of the opening fence, for messages. */
  readonly line: number;
}

export interface Recipe {
  /** The settings block's text as written. */
  readonly settingsText: string;
  /** NAME=value assignments of the settings block, comments and quotes removed. */
  readonly settings: Readonly<Record<string, string>>;
  readonly steps: readonly { readonly variant: string | undefined; readonly text: string; readonly line: number }[];
}

const FENCE = /^(\s*)(`{3,}|~{3,})(.*)$/;

export function fencedBlocks(markdown: string): FencedBlock[] {
  const blocks: FencedBlock[] = [];
  const lines = markdown.split("\n");
  for (let index = 0; index < lines.length; index += 1) {
    const open = FENCE.exec(lines[index] ?? "");
    if (!open) continue;
    const [, , fence = "", info = ""] = open;
    const words = info.trim().split(/\s+/).filter(Boolean);
    const body: string[] = [];
    let end = index + 1;
    // A closing fence is at least as long as the opening one, of the same character, with nothing after it.
    while (end < lines.length && !new RegExp(`^\\s*${fence[0] === "`" ? "`" : "~"}{${fence.length},}\\s*$`).test(lines[end] ?? "")) {
      body.push(lines[end] ?? "");
      end += 1;
    }
    blocks.push({ language: words[0] ?? "", attributes: words.slice(1), text: body.join("\n"), line: index + 1 });
    index = end;
  }
  return blocks;
}

export class RecipeError extends Error {
  override name = "RecipeError";
}

/** The recipe of a page: exactly one settings block and at least one step. */
export function parseRecipe(markdown: string): Recipe {
  const blocks = fencedBlocks(markdown);
  const settingsBlocks = blocks.filter((block) => block.attributes.includes("recipe-settings"));
  if (settingsBlocks.length !== 1) throw new RecipeError(`expected one \`recipe-settings\` block, found ${settingsBlocks.length}`);
  const [settingsBlock] = settingsBlocks as [FencedBlock];
  const steps = blocks.flatMap((block) => {
    const marker = block.attributes.find((word) => word === "recipe" || word.startsWith("recipe="));
    if (marker === undefined) return [];
    if (block.language !== "sh") throw new RecipeError(`line ${block.line}: a recipe block must be \`sh\`, not \`${block.language}\``);
    return [{ variant: marker === "recipe" ? undefined : marker.slice("recipe=".length), text: block.text, line: block.line }];
  });
  if (steps.length === 0) throw new RecipeError("no `recipe` block");
  return { settingsText: settingsBlock.text, settings: assignments(settingsBlock.text), steps };
}

/** The variants a recipe offers (`curl`, `aws`), in the order they first appear. */
export function variants(recipe: Recipe): string[] {
  return [...new Set(recipe.steps.flatMap((step) => (step.variant === undefined ? [] : [step.variant])))];
}

/** `NAME=value` lines: comments, surrounding quotes and blank lines dropped. */
export function assignments(text: string): Record<string, string> {
  const result: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const match = /^\s*(?:export\s+)?([A-Z_][A-Z0-9_]*)=("[^"]*"|'[^']*'|\S*)/.exec(line);
    if (!match) continue;
    const [, name = "", raw = ""] = match;
    result[name] = raw.replace(/^(["'])(.*)\1$/, "$2");
  }
  return result;
}

/** Variables a script reads (`$NAME`, `${NAME}`), except the shell's own (`$!`, `$?`, `$1`). */
export function readVariables(text: string): Set<string> {
  const withoutSingleQuoted = text.replace(/'[^']*'/g, "''");
  return new Set([...withoutSingleQuoted.matchAll(/\$\{?([A-Za-z_][A-Za-z0-9_]*)/g)].map((match) => match[1] ?? ""));
}

/** Variables a script assigns (`NAME=…`, `export NAME=…`). */
export function assignedVariables(text: string): Set<string> {
  return new Set(Object.keys(assignments(text)));
}

function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

const KILL_BACKGROUND_JOBS = `trap 'jobs -p | xargs -r kill 2>/dev/null || true' EXIT`;

/**
 * The bash script a runner executes: strict mode, the runner's settings in place of the page's
 * settings block, the common steps, then each variant's steps in a subshell inside a directory named
 * after the variant (so alternatives that download the same file do not meet). Background jobs (the
 * port-forwards) are killed when the shell that started them exits, whatever happened.
 */
export function recipeScript(recipe: Recipe, settings: Readonly<Record<string, string>>, only: readonly string[] = variants(recipe)): string {
  const missing = Object.keys(recipe.settings).filter((name) => !(name in settings));
  if (missing.length > 0) throw new RecipeError(`settings missing for ${missing.join(", ")}`);
  const unknown = Object.keys(settings).filter((name) => !(name in recipe.settings));
  if (unknown.length > 0) throw new RecipeError(`the page has no setting ${unknown.join(", ")}`);
  const offered = variants(recipe);
  for (const variant of only) {
    if (!offered.includes(variant)) throw new RecipeError(`the page has no variant ${variant}`);
    if (!/^[a-z0-9][a-z0-9-]*$/.test(variant)) throw new RecipeError(`variant ${variant} is not a plain directory name`);
  }
  const stepsOf = (variant: string | undefined) => recipe.steps.filter((step) => step.variant === variant).map((step) => step.text);
  return [
    "set -euo pipefail",
    KILL_BACKGROUND_JOBS,
    ...Object.entries(settings).map(([name, value]) => `${name}=${shellQuote(value)}`),
    ...stepsOf(undefined),
    ...only.flatMap((variant) => [`mkdir ${variant}`, `(`, `cd ${variant}`, KILL_BACKGROUND_JOBS, ...stepsOf(variant), `)`]),
    "",
  ].join("\n");
}

/** `$NAME` and `${NAME}` replaced by the settings' values; other variables are left as they are. */
export function expand(text: string, settings: Readonly<Record<string, string>>): string {
  return text.replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (whole, name: string) => settings[name] ?? whole);
}

/** Shell words of one command line: quotes removed (also inside a word), redirections dropped. */
function words(command: string): string[] {
  const result: string[] = [];
  let word = "";
  let quote: string | undefined;
  let inWord = false;
  const finish = () => {
    if (inWord && !/^(?:\d?>|<|&|\|)/.test(word)) result.push(word);
    word = "";
    inWord = false;
  };
  for (const char of command) {
    if (quote !== undefined) {
      if (char === quote) quote = undefined;
      else word += char;
    } else if (char === '"' || char === "'") {
      quote = char;
      inWord = true;
    } else if (/\s/.test(char)) {
      finish();
    } else {
      word += char;
      inWord = true;
    }
  }
  finish();
  return result;
}

/** The commands of a script: continuation lines joined, comments dropped, `$(` … `)` split out. */
export function commands(script: string): string[][] {
  const joined = script.replace(/\\\n\s*/g, " ");
  const result: string[][] = [];
  for (const rawLine of joined.split("\n")) {
    const line = rawLine.replace(/(^|\s)#.*$/, "").trim();
    if (!line) continue;
    // `VAR=$(kubectl …)` and `… | base64 -d`: every part is a command of its own.
    for (const part of line.split(/\$\(|\)|\|{1,2}|&&|;|&(?=\s|$)/)) {
      const partWords = words(part.trim()).filter((word) => !/^[A-Z_][A-Z0-9_]*=$/.test(word));
      const start = partWords.findIndex((word) => !/^(?:export|[A-Z_][A-Z0-9_]*=.*)$/.test(word));
      if (start >= 0) result.push(partWords.slice(start));
    }
  }
  return result;
}

export interface References {
  readonly serviceAccounts: { namespace: string; name: string }[];
  readonly roleBindings: { namespace: string; name: string; clusterRole: string; subject: { namespace: string; name: string } }[];
  readonly tokens: { namespace: string; serviceAccount: string; audience: string | undefined }[];
  readonly portForwards: { namespace: string; service: string; targetPort: number }[];
  readonly secrets: { namespace: string; name: string }[];
  /** Native API requests: the artifact's namespace and what the request does. */
  readonly artifactRequests: { namespace: string; key: string; verb: "readArtifact" | "writeArtifact" }[];
  /** S3 objects the aws CLI reads or writes. */
  readonly s3Objects: { bucket: string; key: string; verb: "readArtifact" | "writeArtifact" }[];
}

function option(args: readonly string[], ...names: string[]): string | undefined {
  for (let index = 0; index < args.length; index += 1) {
    const arg = args[index] ?? "";
    for (const name of names) {
      if (arg === name) return args[index + 1];
      if (arg.startsWith(`${name}=`)) return arg.slice(name.length + 1);
    }
  }
  return undefined;
}

/** Positional arguments of a kubectl command, its flags (and their values) removed. */
function positional(args: readonly string[]): string[] {
  const valued = new Set(["-n", "--namespace", "--clusterrole", "--serviceaccount", "--audience", "--duration", "-o", "--output", "--role", "--user"]);
  const result: string[] = [];
  for (let index = 0; index < args.length; index += 1) {
    const arg = args[index] ?? "";
    if (valued.has(arg)) index += 1;
    else if (!arg.startsWith("-")) result.push(arg);
  }
  return result;
}

const ARTIFACT_URL = /^https?:\/\/[^/]+\/v1\/namespaces\/([^/]+)\/artifacts\/([^?]+)/;

/** The Kubernetes objects, artifacts and S3 objects a script's commands name (after `expand`). */
export function references(script: string): References {
  const found: References = { serviceAccounts: [], roleBindings: [], tokens: [], portForwards: [], secrets: [], artifactRequests: [], s3Objects: [] };
  for (const command of commands(script)) {
    const [tool, ...args] = command;
    if (tool === "kubectl") {
      const namespace = option(args, "-n", "--namespace") ?? "default";
      const [verb, kind, name = ""] = positional(args);
      if (verb === "create" && kind === "serviceaccount") found.serviceAccounts.push({ namespace, name });
      if (verb === "create" && kind === "token") found.tokens.push({ namespace, serviceAccount: name, audience: option(args, "--audience") });
      if (verb === "create" && kind === "rolebinding") {
        const [subjectNamespace = "", subjectName = ""] = (option(args, "--serviceaccount") ?? ":").split(":");
        found.roleBindings.push({ namespace, name, clusterRole: option(args, "--clusterrole") ?? "", subject: { namespace: subjectNamespace, name: subjectName } });
      }
      if (verb === "get" && kind === "secret") found.secrets.push({ namespace, name });
      if (verb === "port-forward" && kind !== undefined) {
        const [, service = ""] = /^(?:svc|service)\/(.+)$/.exec(kind) ?? [];
        const target = Number((name.split(":")[1] ?? name) || Number.NaN);
        found.portForwards.push({ namespace, service, targetPort: target });
      }
    }
    if (tool === "curl") {
      const upload = command.includes("-T") || command.includes("--upload-file");
      for (const arg of args) {
        const match = ARTIFACT_URL.exec(arg);
        if (match) found.artifactRequests.push({ namespace: match[1] ?? "", key: match[2] ?? "", verb: upload ? "writeArtifact" : "readArtifact" });
      }
    }
    if (tool === "aws") {
      const [service, operation, ...rest] = positional(args.filter((arg) => !arg.startsWith("http")));
      if (service !== "s3" || (operation !== "cp" && operation !== "ls")) continue;
      const s3Args = rest.filter((arg) => arg.startsWith("s3://"));
      for (const [index, arg] of s3Args.entries()) {
        const [, bucket = "", key = ""] = /^s3:\/\/([^/]+)\/?(.*)$/.exec(arg) ?? [];
        // `cp <local> s3://…` writes; `cp s3://… <local>` and `ls` read.
        const writes = operation === "cp" && index === s3Args.length - 1 && !(rest[0] ?? "").startsWith("s3://");
        found.s3Objects.push({ bucket, key, verb: writes ? "writeArtifact" : "readArtifact" });
      }
    }
  }
  return found;
}

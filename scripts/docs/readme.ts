// The README's commands as the tests run them: taken from README.md itself, never from a copy. A fenced
// block whose info string carries `tested=<name>` belongs to the commands named <name> (`make-run`,
// `try-it`, `helm`, `kustomize`); a test takes every block of its name, in the order the README shows
// them. `file=<name>` marks a block that is a file to write rather than commands to run. The rest of the
// README's blocks are illustrations (a registry of your own, the published OCI chart) that need a network.
//
// Where a test cannot run a command exactly as a reader would (other ports than the README's, because
// the machine is shared), it names each replacement in a `Substitutions` list; a replacement whose text
// the commands no longer contain is an error, so the list cannot go stale silently.
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { fencedBlocks, type FencedBlock, RecipeError } from "./recipe.js";

export const README_PATH = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../README.md");

export const readme = (): string => readFileSync(README_PATH, "utf8");

/** The value of `key=value` in a block's info string. */
export function blockAttribute(block: FencedBlock, key: string): string | undefined {
  const prefix = `${key}=`;
  return block.attributes.find((word) => word.startsWith(prefix))?.slice(prefix.length);
}

/** Every block marked `tested=<name>`, in order; at least one. */
export function testedBlocks(markdown: string, name: string): FencedBlock[] {
  const blocks = fencedBlocks(markdown).filter((block) => blockAttribute(block, "tested") === name);
  if (blocks.length === 0) throw new RecipeError(`the README has no block marked tested=${name}`);
  return blocks;
}

/** The shell commands named <name>: its `sh` blocks without `file=`, joined in order. */
export function testedCommands(markdown: string, name: string): string {
  const blocks = testedBlocks(markdown, name).filter((block) => blockAttribute(block, "file") === undefined);
  for (const block of blocks) {
    if (block.language !== "sh") throw new RecipeError(`README line ${block.line}: a tested block must be \`sh\`, not \`${block.language}\``);
  }
  if (blocks.length === 0) throw new RecipeError(`the README's tested=${name} blocks hold no commands`);
  return blocks.map((block) => block.text).join("\n");
}

/** The files named <name>: `file=<file name>` → the block's text, with a final newline. */
export function testedFiles(markdown: string, name: string): Map<string, string> {
  return new Map(
    testedBlocks(markdown, name).flatMap((block) => {
      const file = blockAttribute(block, "file");
      return file === undefined ? [] : [[file, `${block.text}\n`] as const];
    }),
  );
}

/** A literal replacement a test makes in the README's text, and why. */
export interface Substitution {
  readonly from: string;
  readonly to: string;
  readonly why: string;
}

/** `text` with every substitution made; one whose `from` does not occur is an error. */
export function substitute(text: string, substitutions: readonly Substitution[]): string {
  let result = text;
  for (const { from, to, why } of substitutions) {
    if (!result.includes(from)) throw new RecipeError(`the README's commands no longer contain ${JSON.stringify(from)} (replaced because ${why})`);
    result = result.split(from).join(to);
  }
  return result;
}

/** The script a test runs: strict bash, then the commands. */
export const strictScript = (commands: string): string => ["set -euo pipefail", commands, ""].join("\n");

/** A loopback port nothing listens on now, for a server or a port-forward the commands talk to. */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      probe.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no free loopback port"))));
    });
  });
}

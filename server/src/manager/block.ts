// The `artifactServer` block of a namespace's kfp-launcher ConfigMap: YAML (or JSON, which is YAML) under one
// data key, `dedicated: true|false` as in KEP-12513, plus optional sizing fields of our own. Strict: a typo
// must be reported, not silently mean "shared".
import { loadYaml } from "@kubernetes/client-node";
import { z } from "zod";

// Kubernetes quantity (a subset: what people write for storage and resources).
const QUANTITY = /^\d+(\.\d+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E|m)?$/;
const quantity = z.union([z.string().regex(QUANTITY, "must be a quantity such as 10Gi or 500m"), z.number().nonnegative()]).transform(String);
const resourceList = z.partialRecord(z.enum(["cpu", "memory", "ephemeral-storage"]), quantity);

export const blockSchema = z
  .object({
    dedicated: z.boolean().default(false),
    size: quantity.optional(),
    storageClassName: z.string().min(1).optional(),
    accessMode: z.enum(["ReadWriteOnce", "ReadWriteMany"]).optional(),
    resources: z.object({ requests: resourceList.optional(), limits: resourceList.optional() }).strict().optional(),
    // The server's RETENTION_DAYS (0 keeps artifacts forever), in the bounds the server itself accepts.
    retentionDays: z.number().int().min(0).max(36_500).optional(),
  })
  .strict();

export type ArtifactServerBlock = z.output<typeof blockSchema>;

export type BlockResult = { ok: true; block: ArtifactServerBlock } | { ok: false; message: string };

/** No key at all means the KEP's default: the shared server. */
export function parseBlock(text: string | undefined): BlockResult {
  if (text === undefined || text.trim() === "") return { ok: true, block: { dedicated: false } };
  let value: unknown;
  try {
    value = loadYaml<unknown>(text);
  } catch (error) {
    return { ok: false, message: `not YAML: ${(error as Error).message.split("\n")[0]}` };
  }
  if (value === null || value === undefined) return { ok: true, block: { dedicated: false } };
  const parsed = blockSchema.safeParse(value);
  if (!parsed.success) {
    return {
      ok: false,
      message: parsed.error.issues.map((issue) => `${issue.path.length > 0 ? issue.path.join(".") : "(block)"}: ${issue.message}`).join("; "),
    };
  }
  return { ok: true, block: parsed.data };
}

// The manager's status ConfigMap: one JSON document under `namespaces.json`, `{"<namespace>": status}`.
// The leader writes it; the next leader starts from it, and the servers' filesystem-storage config
// endpoint reads the dedicated namespaces' endpoints from it.
import { z } from "zod";

export const STATUS_DATA_KEY = "namespaces.json";

export const CONDITIONS = [
  "Shared", // not dedicated: nothing of ours in the namespace
  "Dedicated", // every object applied
  "Static", // in the chart's dedicated.namespaces: the chart's, not ours
  "InvalidBlock", // the artifactServer block does not parse: nothing changed
  "Conflict", // another release's manager holds the namespace, or an object with our name is not ours: nothing changed
] as const;

export type Condition = (typeof CONDITIONS)[number];

/** What the manager last made of a namespace. */
export interface NamespaceStatus {
  readonly namespace: string;
  readonly condition: Condition;
  readonly dedicated: boolean;
  readonly endpoint?: string;
  readonly message: string;
}

const statusSchema = z.object({
  namespace: z.string().min(1),
  condition: z.enum(CONDITIONS),
  dedicated: z.boolean(),
  endpoint: z.string().optional(),
  // Older writers, and people editing the ConfigMap by hand, may leave it out.
  message: z.string().default(""),
});

/** The document the leader writes: every status by its namespace, in name order (stable diffs). */
export function formatStatuses(statuses: Iterable<NamespaceStatus>): string {
  const sorted = [...statuses].sort((a, b) => a.namespace.localeCompare(b.namespace));
  return JSON.stringify(Object.fromEntries(sorted.map((status) => [status.namespace, status])));
}

/**
 * The statuses a document holds. An entry that does not parse, or whose key is not its namespace, is
 * left out (what else it says is still worth having); a document that is not a JSON object throws.
 */
export function parseStatuses(text: string | undefined): NamespaceStatus[] {
  if (text === undefined || text.trim() === "") return [];
  const parsed: unknown = JSON.parse(text);
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error("the status is not a JSON object");
  const statuses: NamespaceStatus[] = [];
  for (const [namespace, entry] of Object.entries(parsed)) {
    const status = statusSchema.safeParse(typeof entry === "object" && entry !== null ? { namespace, ...entry } : entry);
    if (!status.success || status.data.namespace !== namespace) continue;
    const { endpoint, ...rest } = status.data;
    statuses.push(endpoint === undefined ? rest : { ...rest, endpoint });
  }
  return statuses;
}

// The manager's namespace selector, in the string form of a Kubernetes label selector (what the API
// server's labelSelector parameter takes): `a=b,c in (d,e),!f`. Checked once at start, so that a typo
// stops the manager with a message naming it instead of silently watching no namespace, or every one.
const NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const PREFIX = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const MAX_PREFIX = 253;

export type Requirement =
  | { readonly key: string; readonly operator: "=" | "!="; readonly values: readonly [string] }
  | { readonly key: string; readonly operator: "in" | "notin"; readonly values: readonly string[] }
  | { readonly key: string; readonly operator: "exists" | "!"; readonly values: readonly [] };

function checkKey(key: string, requirement: string): string {
  const slash = key.indexOf("/");
  const prefix = slash === -1 ? undefined : key.slice(0, slash);
  const name = slash === -1 ? key : key.slice(slash + 1);
  if (prefix !== undefined && (prefix.length > MAX_PREFIX || !PREFIX.test(prefix))) {
    throw new Error(`"${requirement}": the key's prefix "${prefix}" is not a DNS subdomain`);
  }
  if (!NAME.test(name)) throw new Error(`"${requirement}": "${key}" is not a label key (at most 63 letters, digits, '-', '_' or '.', alphanumeric at both ends)`);
  return key;
}

function checkValue(value: string, requirement: string): string {
  if (value !== "" && !NAME.test(value)) throw new Error(`"${requirement}": "${value}" is not a label value`);
  return value;
}

/** Splits on the commas between requirements, not those of a value set `(d,e)`. */
function splitRequirements(selector: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let index = 0; index < selector.length; index += 1) {
    const character = selector[index];
    if (character === "(") depth += 1;
    else if (character === ")") depth -= 1;
    if (depth < 0 || depth > 1) throw new Error(`"${selector}": unbalanced parentheses`);
    if (character === "," && depth === 0) {
      parts.push(selector.slice(start, index));
      start = index + 1;
    }
  }
  if (depth !== 0) throw new Error(`"${selector}": unbalanced parentheses`);
  parts.push(selector.slice(start));
  return parts.map((part) => part.trim());
}

function parseRequirement(text: string): Requirement {
  if (text === "") throw new Error("an empty requirement (a leading, trailing or doubled ',')");
  if (text.startsWith("!")) return { key: checkKey(text.slice(1).trim(), text), operator: "!", values: [] };
  const set = /^(\S+)\s+(in|notin)\s*\((.*)\)$/.exec(text);
  if (set) {
    const [, key = "", operator, list = ""] = set;
    const values = list.split(",").map((value) => checkValue(value.trim(), text));
    if (values.length === 0 || values.every((value) => value === "")) throw new Error(`"${text}": ${operator} needs at least one value`);
    return { key: checkKey(key, text), operator: operator === "in" ? "in" : "notin", values };
  }
  const equality = /^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(text);
  if (equality) {
    const [, key = "", operator, value = ""] = equality;
    return { key: checkKey(key, text), operator: operator === "!=" ? "!=" : "=", values: [checkValue(value, text)] };
  }
  if (/^\S+$/.test(text) && !/[=!<>()]/.test(text)) return { key: checkKey(text, text), operator: "exists", values: [] };
  throw new Error(`"${text}" is not a requirement: use key=value, key!=value, key in (a,b), key notin (a,b), key or !key`);
}

/**
 * Parses a label selector's string form; throws an Error naming the first bad requirement. At least one
 * requirement: an empty selector would select every namespace of the cluster.
 */
export function parseLabelSelector(selector: string): Requirement[] {
  if (selector.trim() === "") throw new Error("the selector is empty: it would select every namespace");
  return splitRequirements(selector).map(parseRequirement);
}

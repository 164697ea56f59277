// How long an artifact lives: the most specific rule that covers it. A prefix rule of its namespace (the
// longest matching prefix) beats a whole-namespace rule, which beats the default; between rules of equal
// specificity the shorter life wins (an S3 lifecycle rule and an environment override on the same prefix).
// Age is the artifact's last write: its file's modification time, so restores and copies keep their age.
import type { RetentionRule } from "../config.js";

export const DAY_MS = 86_400_000;

export class RetentionPolicy {
  constructor(
    private readonly defaultDays: number,
    private readonly rules: () => readonly RetentionRule[],
  ) {}

  /** Days `key` of `namespace` lives; 0 means forever. */
  daysFor(namespace: string, key: string): number {
    let best: RetentionRule | undefined;
    for (const rule of this.rules()) {
      if (rule.namespace !== namespace || !key.startsWith(rule.prefix)) continue;
      if (best === undefined || rule.prefix.length > best.prefix.length || (rule.prefix.length === best.prefix.length && shorter(rule.days, best.days))) best = rule;
    }
    return best?.days ?? this.defaultDays;
  }

  /** Whether any rule or the default can expire something of `namespace` (a sweep skips the others). */
  mayExpire(namespace: string): boolean {
    return this.defaultDays > 0 || this.rules().some((rule) => rule.namespace === namespace && rule.days > 0);
  }
}

/** 0 is forever, the longest life of all. */
function shorter(a: number, b: number): boolean {
  if (a === 0) return false;
  return b === 0 || a < b;
}

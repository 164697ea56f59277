// The XML of S3 bucket lifecycle configurations, for the subset the retention sweep applies: each rule's
// ID, Status, prefix (Filter.Prefix, Filter.And.Prefix or the legacy Rule.Prefix), Expiration.Days and
// AbortIncompleteMultipartUpload.DaysAfterInitiation. What it cannot honour (dates, transitions, tag or
// size filters, noncurrent versions) is refused rather than silently ignored.
import type { LifecycleRule } from "../retention/lifecycle.js";
import { S3Error, malformedXml, notImplemented } from "./errors.js";
import type { XmlValue } from "./xml.js";

type XmlNode = Record<string, unknown>;

const SUPPORTED = new Set(["ID", "Status", "Filter", "Prefix", "Expiration", "AbortIncompleteMultipartUpload"]);

function days(value: unknown, what: string): number {
  const text = typeof value === "string" ? value.trim() : "";
  if (!/^\d{1,5}$/.test(text) || Number(text) < 1) throw new S3Error(400, "InvalidArgument", `${what} must be a positive whole number of days.`);
  return Number(text);
}

function text(value: unknown): string {
  return typeof value === "string" ? value : "";
}

export function parseLifecycle(document: XmlNode): LifecycleRule[] {
  const configuration = document.LifecycleConfiguration as { Rule?: XmlNode[] } | undefined;
  if (configuration === undefined) throw malformedXml();
  const rules = configuration.Rule ?? [];
  if (rules.length === 0 || rules.length > 1000) throw malformedXml();
  return rules.map((rule, index) => {
    for (const name of Object.keys(rule)) {
      if (!SUPPORTED.has(name)) throw notImplemented(`Lifecycle rules with ${name} are not supported; use Expiration.Days with a prefix.`);
    }
    const status = text(rule.Status).trim();
    if (status !== "Enabled" && status !== "Disabled") throw malformedXml();
    const filter = (rule.Filter ?? {}) as XmlNode;
    const and = (filter.And ?? {}) as XmlNode;
    for (const name of [...Object.keys(filter), ...Object.keys(and)]) {
      if (name !== "Prefix" && name !== "And") throw notImplemented(`Lifecycle filters on ${name} are not supported; filter by Prefix.`);
    }
    const prefix = text(filter.Prefix ?? and.Prefix ?? rule.Prefix);
    const expiration = rule.Expiration as XmlNode | undefined;
    if (expiration !== undefined) {
      for (const name of Object.keys(expiration)) {
        if (name !== "Days") throw notImplemented(`Lifecycle expirations by ${name} are not supported; use Days.`);
      }
    }
    const abort = rule.AbortIncompleteMultipartUpload as XmlNode | undefined;
    return {
      id: text(rule.ID) || `rule-${index + 1}`,
      enabled: status === "Enabled",
      prefix,
      expirationDays: expiration === undefined ? undefined : days(expiration.Days, "Expiration.Days"),
      abortMultipartDays: abort === undefined ? undefined : days(abort.DaysAfterInitiation, "AbortIncompleteMultipartUpload.DaysAfterInitiation"),
    };
  });
}

export function lifecycleDocument(rules: readonly LifecycleRule[]): Record<string, XmlValue> {
  return {
    Rule: rules.map((rule) => ({
      ID: rule.id,
      Filter: { Prefix: rule.prefix },
      Status: rule.enabled ? "Enabled" : "Disabled",
      ...(rule.expirationDays === undefined ? {} : { Expiration: { Days: rule.expirationDays } }),
      ...(rule.abortMultipartDays === undefined ? {} : { AbortIncompleteMultipartUpload: { DaysAfterInitiation: rule.abortMultipartDays } }),
    })),
  };
}

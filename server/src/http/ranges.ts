// HTTP conditional and range helpers for downloads (RFC 9110 §13, §14): one byte range, suffix ranges,
// If-None-Match and If-Range against the content's strong ETag.
import { rangeNotSatisfiable } from "../errors.js";

export interface ByteRange {
  readonly start: number;
  /** Inclusive. */
  readonly end: number;
}

/**
 * Parses a Range header for a file of `size` bytes. Returns undefined for no header; throws 416 for a
 * malformed, multi-range or unsatisfiable header (we never answer multipart/byteranges).
 */
export function parseRange(header: string | undefined, size: number): ByteRange | undefined {
  if (header === undefined) return undefined;
  const match = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!match) throw rangeNotSatisfiable(size);
  const [, first = "", last = ""] = match;
  if (first === "" && last === "") throw rangeNotSatisfiable(size);
  if (first === "") {
    // Suffix range: the last N bytes.
    const length = Number(last);
    if (!Number.isSafeInteger(length) || length === 0 || size === 0) throw rangeNotSatisfiable(size);
    return { start: Math.max(0, size - length), end: size - 1 };
  }
  const start = Number(first);
  const end = last === "" ? size - 1 : Math.min(Number(last), size - 1);
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start >= size || end < start) {
    throw rangeNotSatisfiable(size);
  }
  return { start, end };
}

/** Whether an If-None-Match header matches `etag` (weak comparison, as RFC 9110 requires for it). */
export function noneMatchHits(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  if (header.trim() === "*") return true;
  const opaque = etag.replace(/^W\//, "");
  return header.split(",").some((candidate) => candidate.trim().replace(/^W\//, "") === opaque);
}

/** If-Range: the range applies only when the validator still names the current content. */
export function ifRangeAllows(header: string | undefined, etag: string, lastModified: Date): boolean {
  if (header === undefined) return true;
  const value = header.trim();
  if (value.startsWith('"') || value.startsWith("W/")) return value === etag;
  const date = Date.parse(value);
  return !Number.isNaN(date) && Math.floor(lastModified.getTime() / 1000) <= Math.floor(date / 1000);
}

/** RFC 6266/8187 Content-Disposition for a download named after the key's last segment. */
export function attachmentDisposition(filename: string): string {
  const ascii = filename.replace(/[^\x20-\x7e]|["\\%;]/g, "_");
  const encoded = encodeURIComponent(filename).replace(/['()*]/g, (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}

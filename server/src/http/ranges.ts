// HTTP conditional and range helpers for downloads (RFC 9110 §13, §14): the Range and freshness
// parsers Express uses (range-parser, fresh), with this server's rules for their answers, and If-Range
// against the content's strong ETag.
import fresh from "fresh";
import parseRangeHeader from "range-parser";
import { rangeNotSatisfiable } from "../errors.js";

export interface ByteRange {
  readonly start: number;
  /** Inclusive. */
  readonly end: number;
}

/**
 * The one byte range to send of a file of `size` bytes, or undefined for the whole file. A Range this
 * server does not honour is ignored, as RFC 9110 lets a server do: another unit, several ranges (it never
 * answers multipart/byteranges) or a malformed header. Throws 416 only for a range that starts beyond
 * the end, so a client learns the size from Content-Range.
 */
export function parseRange(header: string | undefined, size: number): ByteRange | undefined {
  if (header === undefined) return undefined;
  const equals = header.indexOf("=");
  if (equals === -1 || header.slice(0, equals).trim().toLowerCase() !== "bytes") return undefined;
  if (header.includes(",", equals)) return undefined;
  const ranges = parseRangeHeader(size, header);
  if (ranges === -2) return undefined;
  if (ranges === -1) {
    // range-parser 1.x (Express's; 2.x needs Node 22) counts a suffix longer than the file as
    // unsatisfiable, where RFC 9110 sends the whole file.
    if (size > 0 && /^-\s*0*[1-9]\d*$/.test(header.slice(equals + 1).trim())) return { start: 0, end: size - 1 };
    throw rangeNotSatisfiable(size);
  }
  const [range] = ranges;
  return range === undefined ? undefined : { start: range.start, end: range.end };
}

/**
 * Whether a GET or HEAD may answer 304: If-None-Match (weak comparison) or, only without it,
 * If-Modified-Since, whatever the request's Cache-Control says.
 */
export function notModified(header: (name: string) => string | undefined, etag: string, lastModified: string): boolean {
  // Not the request's Cache-Control: its no-cache speaks to caches on the way (RFC 9111 §5.2.1.4); the
  // origin evaluates the preconditions anyway (RFC 9110 §13.2.2). fetch() sends no-cache with every
  // conditional request, so honouring it there meant such a client never got a 304.
  const request = {
    "if-none-match": header("if-none-match"),
    "if-modified-since": header("if-modified-since"),
  };
  return fresh(request, { etag, "last-modified": lastModified });
}

/**
 * If-Range: the range applies only when the validator still names the current content — the strong
 * ETag, or exactly the Last-Modified date (RFC 9110 §13.1.5: a later date does not prove the bytes are
 * the ones the client holds part of).
 */
export function ifRangeAllows(header: string | undefined, etag: string, lastModified: Date): boolean {
  if (header === undefined) return true;
  const value = header.trim();
  if (value.startsWith('"') || value.startsWith("W/")) return value === etag;
  const date = Date.parse(value);
  return !Number.isNaN(date) && Math.floor(lastModified.getTime() / 1000) === Math.floor(date / 1000);
}

/** RFC 6266/8187 Content-Disposition for a download named after the key's last segment. */
export function attachmentDisposition(filename: string): string {
  const ascii = filename.replace(/[^\x20-\x7e]|["\\%;]/g, "_");
  const encoded = encodeURIComponent(filename).replace(/['()*]/g, (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}

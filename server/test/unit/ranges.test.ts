import { describe, expect, it } from "vitest";
import { HttpError } from "../../src/errors.js";
import { attachmentDisposition, ifRangeAllows, notModified, parseRange } from "../../src/http/ranges.js";

describe("parseRange", () => {
  it("returns undefined without a header", () => expect(parseRange(undefined, 10)).toBeUndefined());
  it.each([
    ["bytes=0-0", { start: 0, end: 0 }],
    ["bytes=2-5", { start: 2, end: 5 }],
    ["bytes=2-", { start: 2, end: 9 }],
    ["bytes=5-100", { start: 5, end: 9 }],
    ["bytes=-3", { start: 7, end: 9 }],
    ["bytes=-100", { start: 0, end: 9 }],
    ["BYTES = 1 - 2", { start: 1, end: 2 }],
  ])("%s of 10 bytes", (header, range) => expect(parseRange(header, 10)).toEqual(range));

  // Ignored, not refused (RFC 9110): the whole file is sent.
  it.each(["bytes=-", "bytes=0-1,3-4", "bytes=0-1,20-30", "items=0-1", "bytes=a-b", "bytes 0-1", "bytes=", "bytes=1", ""])(
    "ignores %j",
    (header) => expect(parseRange(header, 10)).toBeUndefined(),
  );

  it.each(["bytes=10-", "bytes=20-30", "bytes=5-2", "bytes=-0"])(
    "refuses %j with 416 and Content-Range */size",
    (header) => {
      try {
        parseRange(header, 10);
        expect.unreachable("should have thrown");
      } catch (error) {
        expect(error).toBeInstanceOf(HttpError);
        expect((error as HttpError).status).toBe(416);
        expect((error as HttpError).headers["Content-Range"]).toBe("bytes */10");
      }
    },
  );

  it("refuses any range of an empty file", () => expect(() => parseRange("bytes=0-", 0)).toThrow(HttpError));
});

describe("conditionals", () => {
  const etag = '"abc"';
  const modified = "Thu, 01 Jan 2026 00:00:00 GMT";
  const headers = (values: Record<string, string>) => (name: string) => values[name];
  it("If-None-Match", () => {
    expect(notModified(headers({}), etag, modified)).toBe(false);
    expect(notModified(headers({ "if-none-match": '"abc"' }), etag, modified)).toBe(true);
    expect(notModified(headers({ "if-none-match": 'W/"abc"' }), etag, modified)).toBe(true);
    expect(notModified(headers({ "if-none-match": '"x", "abc"' }), etag, modified)).toBe(true);
    expect(notModified(headers({ "if-none-match": "*" }), etag, modified)).toBe(true);
    expect(notModified(headers({ "if-none-match": '"x"' }), etag, modified)).toBe(false);
    // A request's no-cache is for caches on the way; the origin still evaluates the precondition.
    expect(notModified(headers({ "if-none-match": '"abc"', "cache-control": "no-cache" }), etag, modified)).toBe(true);
    expect(notModified(headers({ "if-none-match": '"x"', "cache-control": "no-cache" }), etag, modified)).toBe(false);
  });
  it("If-Modified-Since, ignored when If-None-Match is present", () => {
    expect(notModified(headers({ "if-modified-since": modified }), etag, modified)).toBe(true);
    expect(notModified(headers({ "if-modified-since": "Wed, 31 Dec 2025 23:59:59 GMT" }), etag, modified)).toBe(false);
    expect(notModified(headers({ "if-modified-since": modified, "if-none-match": '"x"' }), etag, modified)).toBe(false);
  });
  it("If-Range", () => {
    const modified = new Date("2026-01-01T00:00:00Z");
    expect(ifRangeAllows(undefined, etag, modified)).toBe(true);
    expect(ifRangeAllows('"abc"', etag, modified)).toBe(true);
    expect(ifRangeAllows('"old"', etag, modified)).toBe(false);
    expect(ifRangeAllows(modified.toUTCString(), etag, modified)).toBe(true);
    expect(ifRangeAllows(new Date("2025-01-01T00:00:00Z").toUTCString(), etag, modified)).toBe(false);
  });
});

describe("attachmentDisposition", () => {
  it("encodes non-ASCII and quotes safely", () => {
    expect(attachmentDisposition("model.pkl")).toBe(`attachment; filename="model.pkl"; filename*=UTF-8''model.pkl`);
    const header = attachmentDisposition('ré"sumé;.txt');
    expect(header).toContain('filename="r__sum__.txt"');
    expect(header).toContain("filename*=UTF-8''r%C3%A9%22sum%C3%A9%3B.txt");
    expect(header).not.toMatch(/filename="[^"]*"[^;]*"/);
  });
});

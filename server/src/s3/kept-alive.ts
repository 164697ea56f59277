// A long CompleteMultipartUpload answered as S3 answers it: assembling a large object takes seconds per
// GiB, and clients give up on a silent connection (boto3 and the aws CLI after 60 s by default, then
// retry a completion the first attempt may already have made). So a completion still running after
// KEEP_ALIVE_AFTER_MS is answered 200 at once: the XML declaration, a space every KEEP_ALIVE_EVERY_MS
// while the object is assembled, then the result document, or S3's <Error> document when it failed.
// The AWS SDKs, botocore, minio-go and minio-js all read an error from a 200 completion that way.
// A completion done sooner is answered as any request is, its error with its own status.
import { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { DECLARATION } from "./xml.js";

export const KEEP_ALIVE_AFTER_MS = 2_000;
export const KEEP_ALIVE_EVERY_MS = 5_000;

/**
 * Waits up to KEEP_ALIVE_AFTER_MS for `work`: settled by then, resolves the answer `document` makes of
 * its result (or rejects with its error, to be answered with its own status). Otherwise resolves a body
 * to send at once with a 200: the declaration, spaces, and finally `document(result)` or `failed(error)`.
 */
export async function answerOrKeepAlive<T>(
  work: Promise<T>,
  document: (result: T) => string,
  failed: (error: unknown) => string,
): Promise<{ readonly now: string } | { readonly body: Readable }> {
  const outcome = work.then(
    (result) => ({ result }),
    (error: unknown) => ({ error }),
  );
  const early = await Promise.race([outcome, sleep(KEEP_ALIVE_AFTER_MS, undefined, { ref: false })]);
  if (early !== undefined) {
    if ("error" in early) throw early.error;
    return { now: document(early.result) };
  }
  const settled = outcome.then((settledWith) => ("error" in settledWith ? failed(settledWith.error) : document(settledWith.result)));
  return { body: Readable.from(keptAlive(settled)) };
}

async function* keptAlive(settled: Promise<string>): AsyncGenerator<string> {
  yield DECLARATION;
  for (;;) {
    const done = await Promise.race([settled, sleep(KEEP_ALIVE_EVERY_MS, undefined, { ref: false })]);
    if (done !== undefined) {
      // One declaration: it was sent first, and the document must not repeat it after the spaces.
      yield done.startsWith(DECLARATION) ? done.slice(DECLARATION.length) : done;
      return;
    }
    yield " ";
  }
}

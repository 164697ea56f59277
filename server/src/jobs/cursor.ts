// How far a background job got, kept on the volume so a run interrupted by a crash, a restart or a lost
// lease resumes there, on whichever server takes the lease next. Replaced atomically (temporary file and
// rename): a torn cursor is never read, only an older one, which repeats a little work.
import { randomUUID } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";

/** The cursor in `file`, if there is one and `accept` recognises it (anything else: start over). */
export async function readCursor<T>(file: string, accept: (parsed: unknown) => T | undefined): Promise<T | undefined> {
  try {
    return accept(JSON.parse(await fs.readFile(file, "utf8")) as unknown);
  } catch {
    return undefined;
  }
}

export async function writeCursor(file: string, cursor: unknown): Promise<void> {
  const temp = `${file}.${randomUUID()}.tmp`;
  await fs.mkdir(path.dirname(file), { recursive: true });
  try {
    await fs.writeFile(temp, JSON.stringify(cursor), { mode: 0o640 });
    await fs.rename(temp, file);
  } catch (error) {
    await fs.rm(temp, { force: true });
    throw error;
  }
}

/** A job that finished leaves no cursor: the next run starts from the beginning. */
export async function clearCursor(file: string): Promise<void> {
  await fs.rm(file, { force: true });
}

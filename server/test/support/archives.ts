// Building and reading tar.gz archives in tests, the way KFP's launcher packs an output directory.
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import zlib from "node:zlib";
import tar from "tar-stream";

export interface TestEntry {
  readonly name: string;
  readonly type?: "file" | "directory" | "symlink" | "link" | "character-device" | "fifo";
  readonly content?: Buffer | string;
  readonly linkname?: string;
}

export async function makeTarGz(entries: readonly TestEntry[]): Promise<Buffer<ArrayBuffer>> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const collected = pipeline(pack, zlib.createGzip(), async (source: AsyncIterable<Buffer>) => {
    for await (const chunk of source) chunks.push(chunk);
  });
  for (const entry of entries) {
    const type = entry.type ?? "file";
    const content = entry.content === undefined ? undefined : Buffer.from(entry.content);
    await new Promise<void>((resolve, reject) => {
      const header = { name: entry.name, type, linkname: entry.linkname, mode: 0o644, devmajor: 1, devminor: 3 };
      if (type === "file") pack.entry(header, content ?? Buffer.alloc(0), (error) => (error ? reject(error) : resolve()));
      else pack.entry(header, (error) => (error ? reject(error) : resolve()));
    });
  }
  pack.finalize();
  await collected;
  // Backed by a plain ArrayBuffer, so the DOM typings accept it as a fetch body.
  const archive = Buffer.alloc(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  Buffer.concat(chunks).copy(archive);
  return archive;
}

/** Files of a tar.gz by name (directories listed with an empty buffer and a trailing '/'). */
export async function readTarGz(archive: Buffer | AsyncIterable<Uint8Array>): Promise<Map<string, Buffer>> {
  const extract = tar.extract();
  const source = Buffer.isBuffer(archive) ? Readable.from([archive]) : Readable.from(archive);
  const feeding = pipeline(source, zlib.createGunzip(), extract);
  const files = new Map<string, Buffer>();
  for await (const entry of extract) {
    const chunks: Buffer[] = [];
    for await (const chunk of entry as AsyncIterable<Buffer>) chunks.push(chunk);
    files.set(entry.header.type === "directory" ? entry.header.name.replace(/\/?$/, "/") : entry.header.name, Buffer.concat(chunks));
  }
  await feeding;
  return files;
}

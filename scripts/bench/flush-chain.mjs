// The floor of a sequential durable small write on this machine, for `make bench`: no HTTP, no hashing,
// no thread pool, only the system calls of one commit, one after another, in synchronous calls.
// MODE=two-flushes is kfp-artifacts' FSYNC=true contract (write a temporary file, fsync it, rename it to
// its key, fsync the directory: the key is on disk before the answer). MODE=one-flush writes and
// fdatasyncs one file per object and never its directory (what MinIO does for an object this small: its
// xl.meta, data inline). Prints commits per second over SECONDS (at most 20,000 commits).
import fs from "node:fs";
import path from "node:path";

const dir = process.env.DIR;
const mode = process.env.MODE;
const seconds = Number(process.env.SECONDS_BOUND ?? "3");
if (dir === undefined || !["two-flushes", "one-flush"].includes(mode ?? "")) {
  process.stderr.write("DIR and MODE=two-flushes|one-flush are required\n");
  process.exit(2);
}
fs.mkdirSync(dir, { recursive: true });
const body = Buffer.alloc(4096, 0x61);
const directory = fs.openSync(dir, "r");
const deadline = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9));
const started = process.hrtime.bigint();
let commits = 0;
while (commits < 20_000 && process.hrtime.bigint() < deadline) {
  const key = path.join(dir, `object-${commits}`);
  if (mode === "two-flushes") {
    const temporary = path.join(dir, `.tmp-${commits}`);
    const fd = fs.openSync(temporary, "wx");
    fs.writeSync(fd, body);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fs.renameSync(temporary, key);
    fs.fsyncSync(directory);
  } else {
    const fd = fs.openSync(key, "wx");
    fs.writeSync(fd, body);
    fs.fdatasyncSync(fd);
    fs.closeSync(fd);
  }
  commits += 1;
}
const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
fs.closeSync(directory);
fs.rmSync(dir, { recursive: true, force: true });
process.stdout.write(String(commits / elapsed));

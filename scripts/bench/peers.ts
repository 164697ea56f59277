// The S3 servers kfp-artifacts replaces, run on this machine for the benchmark's S3 rows: MinIO (single
// drive) and SeaweedFS (`weed server`: master, volume, filer and S3 gateway in one process), each with
// the benchmark's static key so that every request's SigV4 signature is verified, each on loopback only,
// with its files under the benchmark's directory. scripts/bench/peers.sh builds both from the Go module
// proxy at pinned versions.
//
// Durability as each ships: MinIO fdatasyncs every object it writes (xl-storage's writeAllDirect); the
// SeaweedFS volume server writes without fsync unless a filer path rule asks for it. The S3 rows compare
// MinIO with kfp-artifacts under FSYNC=true and SeaweedFS with FSYNC=false.
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { CannotMeasure, freePort, Service, waitForHttp } from "./procs.js";
import type { S3Credentials } from "./sigv4.js";

export interface S3Peer {
  readonly label: string;
  readonly service: Service;
  /** http://127.0.0.1:<port> of its S3 API */
  readonly url: string;
}

export async function startMinio(binary: string, root: string, logFile: string, credentials: S3Credentials): Promise<S3Peer> {
  const data = path.join(root, "data");
  const certs = path.join(root, "certs");
  await mkdir(data, { recursive: true });
  await mkdir(certs, { recursive: true });
  const port = await freePort();
  const consolePort = await freePort();
  const service = Service.start(
    "MinIO",
    binary,
    ["server", "--quiet", "--address", `127.0.0.1:${port}`, "--console-address", `127.0.0.1:${consolePort}`, "--certs-dir", certs, data],
    {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: root,
      MINIO_ROOT_USER: credentials.accessKeyId,
      MINIO_ROOT_PASSWORD: credentials.secretAccessKey,
      MINIO_REGION: credentials.region,
      MINIO_BROWSER: "off",
      MINIO_UPDATE: "off",
      MINIO_CALLHOME_ENABLE: "off",
    },
    logFile,
  );
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(`${url}/minio/health/ready`, service, 60_000);
  return { label: "MinIO", service, url };
}

export async function startSeaweedfs(binary: string, root: string, logFile: string, credentials: S3Credentials): Promise<S3Peer> {
  const data = path.join(root, "data");
  await mkdir(data, { recursive: true });
  const config = path.join(root, "s3.json");
  await writeFile(
    config,
    JSON.stringify({
      identities: [
        {
          name: "bench",
          credentials: [{ accessKey: credentials.accessKeyId, secretKey: credentials.secretAccessKey }],
          actions: ["Admin", "Read", "List", "Tagging", "Write"],
        },
      ],
    }),
  );
  const ports: Record<string, number> = {};
  for (const name of ["master", "master.grpc", "volume", "volume.grpc", "filer", "filer.grpc", "s3", "s3.grpc"]) ports[name] = await freePort();
  const args = [
    "server",
    "-ip=127.0.0.1",
    "-ip.bind=127.0.0.1",
    `-dir=${data}`,
    "-master.telemetry=false",
    "-filer",
    "-s3",
    `-s3.config=${config}`,
    "-s3.port.iceberg=0",
    "-s3.port.lance=0",
    `-filer.localSocket=${path.join(root, "filer.sock")}`,
    `-s3.localSocket=${path.join(root, "s3.sock")}`,
    ...Object.entries(ports).map(([name, port]) => (name.endsWith(".grpc") ? `-${name.replace(".grpc", ".port.grpc")}=${port}` : `-${name}.port=${port}`)),
  ];
  const service = Service.start("SeaweedFS", binary, args, { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: root }, logFile);
  const url = `http://127.0.0.1:${ports.s3 ?? 0}`;
  // Its S3 port answers once the filer is up; the bucket is created by the caller.
  await waitForHttp(`${url}/readyz`, service, 120_000).catch((error: unknown) => {
    throw new CannotMeasure(`SeaweedFS: ${error instanceof Error ? error.message : String(error)}`);
  });
  return { label: "SeaweedFS", service, url };
}

// The KFP compatibility API of KEP-12513:
//   POST /apis/{v1beta1,v2beta1}/runs/{run_id}/nodes/{node_id}/artifacts/{name}:write
//   GET  /apis/{v1beta1,v2beta1}/runs/{run_id}/nodes/{node_id}/artifacts/{name}:read
// Both versions share one implementation. The run's namespace and pipeline come from the first :write's
// query parameters (the namespace, when absent, from the caller's service account) and are kept in the
// run index, per namespace (storage/runs.ts); :read answers {"data":"<base64>"} streamed, of the file or,
// for a directory, of a tar.gz of it. The artifact name may hold '/', raw or percent-encoded as %2F: KFP v2
// writes a directory output as one object per file under <pipeline>/<run>/<task>/<name>/….
import type { Context, Hono } from "hono";
import type { ArtifactVerb, Identity } from "../auth/types.js";
import { badRequest, conflict, HttpError, notFound } from "../errors.js";
import type { AppEnv } from "../http/env.js";
import { base64Stream, ENCODE_STEP_BYTES } from "../http/base64-stream.js";
import { declaredLength } from "../http/declared-length.js";
import { rawPath, requestBody, sendArtifactBody, sendStream } from "../http/transport.js";
import { packArchive } from "../storage/archive.js";
import type { ProducedBody } from "../storage/body.js";
import { BODY_BUFFER_BYTES } from "../storage/buffer-pool.js";
import { artifactUri, decodePathTail, parseKey, parseSegment, validateNamespace } from "../storage/names.js";
import type { RunIndex, RunRecord } from "../storage/runs.js";
import type { ArtifactStore } from "../storage/store.js";
import type { AccessCore } from "./access.js";
import { defineApi, type ErrorBody, type FaultHandling } from "./api.js";

/** Where the KFP API is mounted (with the filesystem-storage endpoint); the routes below are relative to it. */
export const KFP_API_PATH = "/apis";
const KFP_WRITE_ROUTE = "/:version{v1beta1|v2beta1}/runs/:run/nodes/:node/artifacts/:name{.+:write}";
const KFP_READ_ROUTE = "/:version{v1beta1|v2beta1}/runs/:run/nodes/:node/artifacts/:name{.+:read}";
/** Run cleanup, for KFP's run deletion: every artifact of the run, then its record. */
const KFP_RUN_ARTIFACTS_ROUTE = "/:version{v1beta1|v2beta1}/runs/:run/artifacts";
/** Where KFP 2.x's launcher puts a run's outputs under a namespace's pipeline root (through S3). */
const PIPELINE_ROOT_DIR = "v2/artifacts";
// The name is the whole tail, so a raw '/' in it is the same key as %2F.
const KFP_PATH = /^\/apis\/(?:v1beta1|v2beta1)\/runs\/([^/]+)\/nodes\/([^/]+)\/artifacts\/(.+):(read|write)$/;
/** What a Kubernetes service account authenticates as: system:serviceaccount:<namespace>:<name>. */
const SERVICE_ACCOUNT_USER = /^system:serviceaccount:([^:]+):[^:]+$/;
// The file is read in pieces of 3/4 of a body buffer, so each piece's base64 fills one exactly (and
// full pieces, multiples of 3, need no carry-over). Each is encoded in small steps: a step's base64
// string (64 KiB) stays on V8's young heap and dies in the next scavenge, where strings above ~1 MB
// are allocated outside the heap and live until a full collection (768 KiB steps: peak RSS +75 MB on
// a 1 GiB read; 48 KiB: +35 MB).
const READ_CHUNK_BYTES = (BODY_BUFFER_BYTES / 4) * 3;
const JSON_PREFIX = Buffer.from('{"data":"');
const JSON_SUFFIX = Buffer.from('"}');

export interface KfpApiDeps {
  readonly access: AccessCore;
  readonly store: ArtifactStore;
  readonly runs: RunIndex;
  readonly faults: FaultHandling;
}

/** KFP's error body (its API server's shape), for every path under /apis. */
export const kfpErrorBody: ErrorBody = (c, error) => {
  for (const [name, value] of Object.entries(error.headers)) c.header(name, value);
  return c.json({ error_message: error.message, error_details: `${error.code}: ${error.message}` }, error.status);
};

interface KfpTarget {
  readonly runId: string;
  readonly nodeId: string;
  readonly name: string;
}

function kfpTarget(c: Context<AppEnv>): KfpTarget {
  const match = KFP_PATH.exec(rawPath(c));
  if (!match) throw badRequest("the artifact path is malformed");
  const [, run = "", node = "", name = ""] = match;
  return {
    runId: parseSegment(decodePathTail(run, "run_id"), "run_id"),
    nodeId: parseSegment(decodePathTail(node, "node_id"), "node_id"),
    // Every segment obeys the key rules (no '.' or '..', no empty segment); the whole key's length and depth
    // are checked again once the pipeline, run and node are prefixed.
    name: parseKey(decodePathTail(name, "artifact name"), "artifact name").key,
  };
}

interface ResolvedRun {
  /** The run as recorded in the namespace admitted, if it is recorded. */
  readonly known: RunRecord | undefined;
  /** The namespace admitted: the query's, or the one holding the run that the caller may use. */
  readonly namespace: string | undefined;
  readonly pipeline: string | undefined;
  readonly identity: Identity;
}

/**
 * Which run a request is about, admitted for `verb`. Authentication comes first, so an anonymous caller
 * gets the same 401 whatever exists. A request naming its namespace is then authorized there before the
 * run is looked up: 403 whether or not the run exists in it. One that does not is resolved among the
 * namespaces holding the run id to the one the caller may use for `verb`; none is the answer for an
 * unknown run, so a run in a namespace the caller cannot see stays invisible to it, and several (a
 * caller with access to both a run's namespace and a squatter's) must be told apart with ?namespace=.
 */
async function resolveRun(c: Context<AppEnv>, deps: KfpApiDeps, runId: string, verb: ArtifactVerb): Promise<ResolvedRun> {
  const { access } = deps;
  const caller = await access.authenticate(c);
  const namespace = c.req.query("namespace");
  const pipeline = c.req.query("pipeline");
  if (namespace !== undefined) validateNamespace(namespace);
  if (pipeline !== undefined) parseSegment(pipeline, "pipeline");
  let known: RunRecord | undefined;
  if (namespace !== undefined) {
    await access.admit(c, namespace, verb);
    known = await deps.runs.get(runId, namespace);
  } else {
    const candidates = await deps.runs.find(runId);
    const usable: RunRecord[] = [];
    for (const candidate of candidates) if (await access.mayAccess(caller, candidate.namespace, verb)) usable.push(candidate);
    if (usable.length > 1) throw conflict("this run id is recorded in several namespaces you may use: name one with ?namespace=");
    known = usable[0];
    if (known !== undefined) await access.admit(c, known.namespace, verb);
    // For the audit log only: the client is answered as for an unknown run.
    else if (candidates.length > 0) c.get("record").decision = "deny";
  }
  if (known !== undefined && pipeline !== undefined && pipeline !== known.pipeline) {
    throw conflict("this run is recorded with another pipeline in this namespace");
  }
  return { known, namespace: known?.namespace ?? namespace, pipeline: known?.pipeline ?? pipeline, identity: caller.identity };
}

/**
 * The namespace of a run's first :write that names none: the caller's own, when it authenticated with a
 * service account's token (KFP's launcher runs as one in the run's namespace). Anyone else must name it.
 */
function callerNamespace(identity: Identity): string {
  const match = identity.via === "token" ? SERVICE_ACCOUNT_USER.exec(identity.user) : null;
  if (match?.[1] !== undefined) return validateNamespace(match[1]);
  throw badRequest(
    identity.via === "none"
      ? "the first write of a run must name its namespace (?namespace=…): without Kubernetes authentication there is no service account to take it from"
      : "the first write of a run must name its namespace (?namespace=…) unless the caller is a service account, whose namespace is taken",
  );
}

/** The artifact's bytes (`file`, `size` of them) as KFP's `{"data":"<base64>"}`, produced into the response's buffers. */
function base64Json(file: ProducedBody, size: number): ProducedBody {
  const input = Buffer.allocUnsafe(READ_CHUNK_BYTES);
  let position = 0;
  let stage: "prefix" | "data" | "suffix" | "done" = "prefix";
  const produce = async (target: Buffer) => {
    if (stage === "prefix") {
      stage = size > 0 ? "data" : "suffix";
      return JSON_PREFIX.copy(target);
    }
    if (stage === "suffix") {
      stage = "done";
      return JSON_SUFFIX.copy(target);
    }
    if (stage === "done") return 0;
    // The file's producer reads at most what `input` holds, and never past the artifact's size.
    const bytesRead = await file.produce(input);
    if (bytesRead === 0) throw new Error("the artifact became shorter while it was sent");
    position += bytesRead;
    if (position >= size) stage = "suffix";
    let filled = 0;
    // Full steps are multiples of 3, so only the last one can end with base64 padding.
    for (let start = 0; start < bytesRead; start += ENCODE_STEP_BYTES) {
      const encoded = input.toString("base64", start, Math.min(start + ENCODE_STEP_BYTES, bytesRead));
      filled += target.write(encoded, filled, "latin1");
    }
    return filled;
  };
  return { ...file, produce };
}

export function createKfpApi(deps: KfpApiDeps): Hono<AppEnv> {
  return defineApi({ basePath: KFP_API_PATH, errorBody: kfpErrorBody, faults: deps.faults }, (app) => registerRoutes(app, deps));
}

function registerRoutes(app: Hono<AppEnv>, deps: KfpApiDeps): void {
  const { store, runs, access } = deps;

  // Removes what the run wrote through this API (<pipeline>/<run>/…) and, for runs of today's KFP that
  // wrote through S3, its directory under the namespace's pipeline root (v2/artifacts/<pipeline>/<run>/…).
  // Idempotent: a run with nothing left answers the same.
  app.delete(KFP_RUN_ARTIFACTS_ROUTE, async (c) => {
    const runId = parseSegment(decodePathTail(c.req.param("run"), "run_id"), "run_id");
    const { known, namespace } = await resolveRun(c, deps, runId, "deleteArtifact");
    if (namespace === undefined) throw notFound("no artifacts are recorded for this run; name its namespace with ?namespace=");
    const directories: string[] = [];
    if (known !== undefined) directories.push(`${known.pipeline}/${runId}`);
    for (const pipeline of await store.childDirectories(namespace, PIPELINE_ROOT_DIR)) directories.push(`${PIPELINE_ROOT_DIR}/${pipeline}/${runId}`);
    let removed = 0;
    for (const directory of directories) {
      try {
        await store.delete(namespace, parseKey(directory), true);
        removed += 1;
      } catch (error) {
        if (!(error instanceof HttpError && error.status === 404)) throw error;
      }
    }
    if (known !== undefined) await runs.forget(runId, namespace);
    c.get("record").key = runId;
    return c.json({ run_id: runId, namespace, removed_directories: removed }, 200);
  });

  app.post(KFP_WRITE_ROUTE, async (c) => {
    const { runId, nodeId, name } = kfpTarget(c);
    const resolved = await resolveRun(c, deps, runId, "writeArtifact");
    const { known, pipeline } = resolved;
    let { namespace } = resolved;
    if (pipeline === undefined) throw badRequest("the first write of a run must name its pipeline (?pipeline=…)");
    if (namespace === undefined) {
      // Authorized like a named namespace; a run already recorded there is settled by the claim below.
      namespace = callerNamespace(resolved.identity);
      await access.admit(c, namespace, "writeArtifact");
    }
    const record: RunRecord = known ?? { runId, namespace, pipeline };
    const key = parseKey(`${record.pipeline}/${runId}/${nodeId}/${name}`);
    c.get("record").key = key.key;
    // Recorded only now: the caller is known to be allowed to write in that namespace.
    if (known === undefined) {
      const inForce = await runs.claim(record);
      if (inForce.pipeline !== record.pipeline) throw conflict("this run is recorded with another pipeline in this namespace");
    }
    const result = await store.put({ namespace: record.namespace, key, body: requestBody(c), declaredSize: declaredLength(c) });
    c.get("record").bytesIn = result.size;
    return c.json({ uri: artifactUri(record.namespace, key.key) }, 200);
  });

  app.get(KFP_READ_ROUTE, async (c) => {
    const { runId, nodeId, name } = kfpTarget(c);
    const { known: record } = await resolveRun(c, deps, runId, "readArtifact");
    if (record === undefined) throw notFound("no artifacts are recorded for this run");
    const key = parseKey(`${record.pipeline}/${runId}/${nodeId}/${name}`);
    c.get("record").key = key.key;
    const opened = await store.read(record.namespace, key);
    if ("directory" in opened) {
      // Its size is known only once packed: sent chunked, the archive streamed through the encoder.
      const location = await store.resolveForArchive(record.namespace, key);
      if (!("directory" in location)) throw conflict("this artifact changed while it was opened; read it again");
      const body = base64Stream(packArchive(location), JSON_PREFIX, JSON_SUFFIX);
      return await sendStream(c, 200, { "Content-Type": "application/json", "X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-cache" }, body);
    }
    const length = JSON_PREFIX.length + 4 * Math.ceil(opened.size / 3) + JSON_SUFFIX.length;
    const headers = {
      "Content-Type": "application/json",
      "Content-Length": String(length),
      "X-Content-Type-Options": "nosniff",
      "Cache-Control": "private, no-cache",
    };
    return sendArtifactBody(c, 200, headers, base64Json(opened.produced(0, opened.size), opened.size));
  });
}

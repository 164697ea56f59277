// A 403 that still knows who was refused, so the request's audit line can name the user and groups.
import { HttpError } from "../errors.js";
import type { ArtifactVerb, Identity } from "./types.js";

export class AccessDenied extends HttpError {
  constructor(
    readonly identity: Identity,
    verb: ArtifactVerb,
    namespace: string,
  ) {
    super(403, "Forbidden", `user "${identity.user}" may not ${verb} in namespace "${namespace}"`);
  }
}

// Named steps of multi-step volume changes where a test can make the process die, to prove that a
// crash there loses nothing. KFP_ARTIFACTS_CRASH_AT names the step; the process SIGKILLs itself on
// reaching it, as an OOM kill or a node failure would stop it, with no chance to clean up. Unset — as
// in every deployment — crashPoint() does nothing. Not a setting: the tests that crash at these steps
// (server/test/shared-volume.test.ts) are its only users.
const crashAt = process.env.KFP_ARTIFACTS_CRASH_AT;

export type CrashPoint =
  /** A directory replacement moved the old version aside; the new one is not in place yet. */
  | "replacement-moved-aside"
  /** A directory replacement put the new version in place; the old one is still aside. */
  | "replacement-moved-in";

export function crashPoint(step: CrashPoint): void {
  if (crashAt === step) process.kill(process.pid, "SIGKILL");
}

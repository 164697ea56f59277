// helm, kubectl and the other tools as child processes, each with a deadline, always against the e2e
// kubeconfig.
import { execFile } from "node:child_process";
import { env } from "./env.js";

export interface CommandResult {
  readonly stdout: string;
  readonly stderr: string;
}

export class CommandError extends Error {
  override name = "CommandError";
  constructor(
    message: string,
    readonly result: CommandResult & { readonly code: number | string | null },
  ) {
    super(message);
  }
}

export interface RunOptions {
  /** Killed after this long; the error says so. */
  readonly timeoutMs?: number;
  /** Written to the process's standard input. */
  readonly input?: string;
  /** Working directory (default: the runner's). */
  readonly cwd?: string;
  /** Added to the environment. */
  readonly env?: Readonly<Record<string, string>>;
}

export function run(file: string, args: readonly string[], options: RunOptions = {}): Promise<CommandResult> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      [...args],
      {
        timeout: timeoutMs,
        killSignal: "SIGKILL",
        maxBuffer: 64 * 1024 * 1024,
        cwd: options.cwd,
        env: { ...process.env, KUBECONFIG: env.kubeconfig, ...options.env },
      },
      (error, stdout, stderr) => {
        if (!error) {
          resolve({ stdout, stderr });
          return;
        }
        const timedOut = error.killed === true && error.signal === "SIGKILL";
        const what = `${file.split("/").pop()} ${args.join(" ")}`.slice(0, 300);
        const reason = timedOut ? `timed out after ${timeoutMs} ms` : `failed (${String(error.code)})`;
        reject(new CommandError(`${what} ${reason}: ${stderr.trim().slice(-2000) || stdout.trim().slice(-2000)}`, { stdout, stderr, code: error.code ?? null }));
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

export const helm = (args: readonly string[], options?: RunOptions) => run(env.helm, args, options);
export const kubectl = (args: readonly string[], options?: RunOptions) => run(env.kubectl, args, options);

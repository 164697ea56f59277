// The server's version, from package.json (inlined by the bundler): logged at start-up and shown at '/'.
import packageJson from "../../package.json" with { type: "json" };

export const VERSION: string = packageJson.version;

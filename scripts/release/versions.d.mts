// Types of versions.mjs for the TypeScript that imports it (its test).
export function releaseProblems(files: { packageJson: string; chartYaml: string; changelog: string; readme?: string; tag?: string }): string[];

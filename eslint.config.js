// Lint configuration: typescript-eslint's type-aware recommended rules for all TypeScript,
// plain recommended rules for the few build scripts in JavaScript.
import js from "@eslint/js";
import globals from "globals";
import tseslint from "typescript-eslint";

export default tseslint.config(
  // Build output, fetched tools, caches and local data: everything .gitignore keeps out of the tree.
  { ignores: ["node_modules/", "**/dist/", "bin/", ".cache/", "data/", "coverage/", ".bench/", "e2e/diagnostics/"] },
  js.configs.recommended,
  {
    files: ["**/*.{js,mjs}"],
    languageOptions: { globals: { ...globals.node } },
  },
  {
    files: ["**/*.ts"],
    extends: [...tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
      globals: { ...globals.node },
    },
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/consistent-type-imports": "error",
    },
  },
);

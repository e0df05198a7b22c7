// Lints every file under a directory with one of themis-rm's rule sets and prints ESLint's results as JSON.
// Usage: node eslint_runner.cjs <eslint home> <lint|security|complexity> <directory>
// The packages load from <eslint home> (what `themis analyzers install` put there), never from the directory:
// nothing the candidates contain is configuration.
"use strict";
const path = require("node:path");
const { createRequire } = require("node:module");

const [home, ruleSet, directory] = process.argv.slice(2);
const load = createRequire(path.join(home, "package.json"));
const { ESLint } = load("eslint");
const js = load("@eslint/js");
const security = load("eslint-plugin-security");
const globals = load("globals");

const RULES = {
  // ESLint's recommended set plus the readability rules most style guides share; top-level functions are what a
  // candidate defines for its caller, so only local unused variables count.
  lint: {
    ...js.configs.recommended.rules,
    "no-unused-vars": ["error", { vars: "local" }],
    eqeqeq: "error",
    "no-var": "error",
    "prefer-const": "error",
    "max-depth": ["error", 4],
    curly: ["error", "all"],
  },
  // eslint-plugin-security's recommended set plus ESLint's own code-injection rules.
  security: {
    ...security.configs.recommended.rules,
    "no-eval": "error",
    "no-implied-eval": "error",
    "no-new-func": "error",
  },
  // Every function's cyclomatic complexity (a maximum of 0 reports each one).
  complexity: { complexity: ["error", 0] },
};

async function main() {
  if (!(ruleSet in RULES)) throw new Error(`unknown rule set ${ruleSet}`);
  const options = { ecmaVersion: "latest", globals: { ...globals.node, ...globals.es2021 } };
  const eslint = new ESLint({
    cwd: directory,
    overrideConfigFile: true,
    overrideConfig: [
      { files: ["**/*.js"], languageOptions: { ...options, sourceType: "script" } },
      { files: ["**/*.mjs"], languageOptions: { ...options, sourceType: "module" } },
      {
        files: ["**/*.js", "**/*.mjs"],
        plugins: { security },
        linterOptions: { noInlineConfig: true, reportUnusedDisableDirectives: "off" },
        rules: RULES[ruleSet],
      },
    ],
  });
  const results = await eslint.lintFiles(["."]);
  const out = results.map((r) => ({
    file: r.filePath,
    messages: r.messages.map((m) => ({ rule: m.ruleId, message: m.message, line: m.line, fatal: !!m.fatal })),
  }));
  process.stdout.write(JSON.stringify(out));
}

main().catch((error) => {
  process.stderr.write(String(error && error.stack ? error.stack : error));
  process.exit(2);
});

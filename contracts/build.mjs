// Compiles contracts/src/*.sol with the pinned npm `solc` (no network needed) and writes one
// artifact per deployable contract (ABI + creation bytecode) plus manifest.json, which records
// the compiler version, the settings and the SHA-256 of every source, into the Python package
// that loads them at run time: adapters/chain/artifacts/ (or the directory given by --out).
//
//   node build.mjs [--out DIR]
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const solc = require("solc");

const HERE = dirname(fileURLToPath(import.meta.url));
const DEFAULT_OUT = join(HERE, "..", "adapters", "chain", "artifacts");
const SETTINGS = {
  optimizer: { enabled: true, runs: 200 },
  // py-evm (eth-tester) and anvil both run Cancun code; newer forks add nothing we use.
  evmVersion: "cancun",
  // No metadata hash in the bytecode: the bytecode then depends on the code only, and the
  // manifest's source hashes carry the provenance instead.
  metadata: { bytecodeHash: "none", appendCBOR: false },
  outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
};

function sha256(text) {
  return createHash("sha256").update(text).digest("hex");
}

function parseOut(argv) {
  const at = argv.indexOf("--out");
  return at >= 0 ? resolve(argv[at + 1]) : DEFAULT_OUT;
}

function readSources() {
  const names = readdirSync(join(HERE, "src")).filter((n) => n.endsWith(".sol")).sort();
  return Object.fromEntries(
    names.map((n) => [`src/${n}`, { content: readFileSync(join(HERE, "src", n), "utf8") }]),
  );
}

function findImports(path) {
  try {
    return { contents: readFileSync(join(HERE, "node_modules", path), "utf8") };
  } catch {
    return { error: `import not found: ${path}` };
  }
}

function compile(sources) {
  const input = { language: "Solidity", sources, settings: SETTINGS };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
  const problems = output.errors ?? [];
  for (const p of problems) console.error(p.formattedMessage);
  if (problems.some((p) => p.severity === "error")) process.exit(1);
  return output;
}

function writeJson(path, value) {
  const text = `${JSON.stringify(value, null, 2)}\n`;
  writeFileSync(path, text);
  return sha256(text);
}

function main() {
  const out = parseOut(process.argv);
  mkdirSync(out, { recursive: true });
  const sources = readSources();
  const output = compile(sources);
  const artifacts = {};
  for (const sourceName of Object.keys(sources)) {
    for (const [name, contract] of Object.entries(output.contracts[sourceName] ?? {})) {
      const bytecode = contract.evm.bytecode.object;
      if (!bytecode) continue; // interfaces
      const artifact = { contractName: name, sourceName, abi: contract.abi, bytecode: `0x${bytecode}` };
      artifacts[name] = writeJson(join(out, `${name}.json`), artifact);
    }
  }
  const ozPackage = JSON.parse(
    readFileSync(join(HERE, "node_modules", "@openzeppelin", "contracts", "package.json"), "utf8"),
  );
  const manifest = {
    compiler: `solc-js ${solc.version()}`,
    settings: SETTINGS,
    dependencies: { "@openzeppelin/contracts": ozPackage.version },
    sources: Object.fromEntries(Object.entries(sources).map(([n, s]) => [n, sha256(s.content)])),
    artifacts,
  };
  writeJson(join(out, "manifest.json"), manifest);
  console.log(`wrote ${Object.keys(artifacts).length} artifacts to ${out}`);
}

main();

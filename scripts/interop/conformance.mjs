// Runs the official MCP conformance suite (server mode, active scenarios) against the bridge
// fronting conformance-server.mjs. The suite needs Node >= 22: it runs on the Node 22 binary of
// the pinned `node` npm package.
// Fails on any failing check except those in EXPECTED_FAILURES, and on an expected failure that
// now passes (then delete its entry).
// Usage: node conformance.mjs [extra conformance args, e.g. --scenario tools-list]
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startBridge } from './ts/bridge.mjs';

// scenario -> the only check in it allowed to fail, and why it fails.
const EXPECTED_FAILURES = {};

const here = path.dirname(fileURLToPath(import.meta.url));
const node22 = path.join(here, 'node_modules', 'node', 'bin', 'node');
const cli = path.join(here, 'node_modules', '@modelcontextprotocol', 'conformance', 'dist', 'index.js');
const RUN_TIMEOUT_MS = 5 * 60_000;

function runSuite(url, outDir) {
  const baseline = path.join(outDir, 'expected-failures.yml');
  writeFileSync(baseline, `server:\n${Object.keys(EXPECTED_FAILURES).map((s) => `  - ${s}\n`).join('')}`);
  const baselineArgs = Object.keys(EXPECTED_FAILURES).length ? ['--expected-failures', baseline] : [];
  const args = [cli, 'server', '--url', url, ...baselineArgs, '-o', outDir, ...process.argv.slice(2)];
  const run = spawn(node22, args, { stdio: 'inherit' });
  const timer = setTimeout(() => { console.error(`conformance: no result after ${RUN_TIMEOUT_MS} ms`); run.kill('SIGKILL'); }, RUN_TIMEOUT_MS);
  return new Promise((resolve) => {
    run.on('error', (e) => { console.error(`conformance: cannot start ${node22}: ${e.message}`); resolve(1); });
    run.on('exit', (c, signal) => { clearTimeout(timer); resolve(c ?? (signal ? 1 : 0)); });
  });
}

/** The suite baselines whole scenarios; check that an expected one failed only for its reason. */
function unexpectedChecks(outDir) {
  const problems = [];
  for (const [scenario, { check, why }] of Object.entries(EXPECTED_FAILURES)) {
    const dir = readdirSync(outDir).find((d) => d.startsWith(`server-${scenario}-`));
    if (!dir) continue; // not run (e.g. --scenario picked another one)
    console.log(`conformance: expected failure ${scenario}: ${why}`);
    const checks = JSON.parse(readFileSync(path.join(outDir, dir, 'checks.json'), 'utf8'));
    for (const c of checks.filter((c) => c.status === 'FAILURE' && c.id !== check)) {
      problems.push(`${scenario}: check ${c.id} failed too (${c.errorMessage}); only ${check} is expected to (${why})`);
    }
  }
  return problems;
}

const bridge = await startBridge([process.execPath, path.join(here, 'conformance-server.mjs')]);
const outDir = mkdtempSync(path.join(tmpdir(), 'mcp-conformance-'));
let code = 1;
try {
  console.log(`conformance: ${bridge.url} (per-scenario checks in ${outDir})`);
  code = await runSuite(bridge.url, outDir);
  const problems = unexpectedChecks(outDir);
  for (const p of problems) console.error(`conformance: ${p}`);
  if (problems.length) code = 1;
} finally {
  const { code: bridgeCode, signal } = await bridge.stop();
  if (code === 0) rmSync(outDir, { recursive: true, force: true });
  else console.error(`--- bridge stderr (tail) ---\n${bridge.stderrTail(60)}`);
  if (bridgeCode !== 0) console.error(`conformance: bridge exit code ${bridgeCode} signal ${signal} after SIGTERM`);
}
process.exit(code);

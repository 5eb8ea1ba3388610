// Starts mcp-http-bridge on a free port and hands back the URL it prints when ready.
// Binaries come from BRIDGE_BIN, FIXTURE_BIN (the session-era child, fake-mcp-server) and
// MODERN_FIXTURE_BIN (the 2026-07-28 child, modern-mcp-server), by default the repo's target/debug builds.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '..', '..', '..');
export const bridgeBin = process.env.BRIDGE_BIN || path.join(repoRoot, 'target', 'debug', 'mcp-http-bridge');
export const fixtureBin = process.env.FIXTURE_BIN || path.join(repoRoot, 'target', 'debug', 'fake-mcp-server');
export const modernFixtureBin = process.env.MODERN_FIXTURE_BIN || path.join(repoRoot, 'target', 'debug', 'modern-mcp-server');
/** The child each era test runs the bridge in front of, by the child's era. */
export const CHILDREN = { legacy: fixtureBin, modern: modernFixtureBin };

const running = new Set();
process.on('exit', () => { for (const p of running) p.kill('SIGKILL'); });

/** Spawns the bridge (with extra `args`) fronting `child` (argv); resolves once it printed its URL line. */
export function startBridge(child = [fixtureBin], { readyTimeoutMs = 20_000, args = [] } = {}) {
  const proc = spawn(bridgeBin, ['--port', '0', ...args, '--', ...child], { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(proc);
  let stderr = '';
  proc.stderr.setEncoding('utf8').on('data', (d) => { stderr = (stderr + d).slice(-200_000); });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => { running.delete(proc); resolve({ code, signal }); }));

  const bridge = {
    url: undefined,
    /** The bridge's /health document (children, sessions, pending requests). */
    async health() {
      const response = await fetch(new URL('/health', bridge.url));
      if (!response.ok) throw new Error(`/health answered ${response.status}`);
      return response.json();
    },
    stderrTail: (lines = 40) => stderr.trimEnd().split('\n').slice(-lines).join('\n'),
    async stop() {
      if (proc.pid === undefined) return { code: null, signal: null }; // never started
      if (proc.exitCode !== null || proc.signalCode !== null) return exited;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
      const result = await exited;
      clearTimeout(timer);
      return result;
    },
  };

  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = async (why) => {
      if (settled) return;
      settled = true;
      await bridge.stop();
      reject(new Error(`bridge did not start: ${why}\n--- bridge stderr ---\n${bridge.stderrTail()}`));
    };
    const timer = setTimeout(() => fail(`no URL line within ${readyTimeoutMs} ms`), readyTimeoutMs);
    proc.on('error', (e) => { clearTimeout(timer); fail(e.message); });
    exited.then(({ code, signal }) => { clearTimeout(timer); if (!bridge.url) fail(`exited (code ${code}, signal ${signal})`); });
    createInterface({ input: proc.stdout }).once('line', (line) => {
      clearTimeout(timer);
      if (!/^http:\/\/.+\/mcp$/.test(line.trim())) return fail(`unexpected first stdout line ${JSON.stringify(line)}`);
      bridge.url = line.trim();
      settled = true;
      resolve(bridge);
    });
  });
}

/** Wraps a test body so a failure also shows the tail of the bridge's stderr. */
export function withBridgeLog(getBridge, fn) {
  return async (t) => {
    try {
      await fn(t);
    } catch (e) {
      const tail = getBridge()?.stderrTail();
      if (tail && e instanceof Error) e.message += `\n--- bridge stderr (tail) ---\n${tail}`;
      throw e;
    }
  };
}

/** Polls `check` every 10 ms until it returns a truthy value or `ms` pass. */
export async function until(check, ms = 5_000, what = 'condition') {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

// Processes of the scale-out test: bridge instances (mcp-http-bridge --instance-id ID in front of
// fake-mcp-server) and a load balancer in front of them, run from the configuration files the
// repository ships (deploy/haproxy.cfg as is, with its documented environment variables;
// deploy/nginx.conf with its documented placeholders filled in, nothing else changed).
// Readiness is always an event: a bridge's URL line, HAProxy's view of its servers on its admin
// socket, nginx answering through to every instance -- never a fixed sleep.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile, writeFile, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '..', '..', '..');
export const bridgeBin = process.env.BRIDGE_BIN || path.join(repoRoot, 'target', 'debug', 'mcp-http-bridge');
export const fixtureBin = process.env.FIXTURE_BIN || path.join(repoRoot, 'target', 'debug', 'fake-mcp-server');
const HAPROXY = process.env.HAPROXY_BIN || 'haproxy';
const NGINX = process.env.NGINX_BIN || 'nginx';

const running = new Set();
process.on('exit', () => { for (const p of running) { try { p.kill('SIGKILL'); } catch {} } });

export const delay = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls the async `check` every `every` ms until it returns a truthy value, for `ms` at most. */
export async function eventually(check, what, ms = 10_000, every = 25) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await delay(every);
  }
}

/** A free TCP port on 127.0.0.1 (bound then released: the load balancers need a port number in
 *  their configuration, they cannot report one they picked). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => { const { port } = srv.address(); srv.close(() => resolve(port)); });
  });
}

/** Spawns a process whose stdout/stderr tails are kept (for failure messages), and written in
 *  full to $SCALEOUT_LOGDIR/NAME.log when that is set; `exited` resolves with { code, signal }. */
function supervise(name, cmd, args, options) {
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  running.add(proc);
  let log = '';
  const file = process.env.SCALEOUT_LOGDIR ? createWriteStream(path.join(process.env.SCALEOUT_LOGDIR, `${name}.log`)) : undefined;
  const keep = (d) => { log = (log + d).slice(-300_000); file?.write(d); };
  proc.stdout.setEncoding('utf8');
  proc.stderr.setEncoding('utf8').on('data', keep);
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => { running.delete(proc); resolve({ code, signal }); }));
  proc.on('error', (e) => keep(`\n[spawn ${cmd}: ${e.message}]\n`));
  return {
    name, proc, exited,
    alive: () => proc.exitCode === null && proc.signalCode === null,
    logTail: (lines = 30) => log.trimEnd().split('\n').slice(-lines).join('\n'),
    keep,
    async stop(signal = 'SIGTERM', killAfterMs = 5_000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return exited;
      proc.kill(signal);
      const timer = setTimeout(() => proc.kill('SIGKILL'), killAfterMs);
      const result = await exited;
      clearTimeout(timer);
      return result;
    },
  };
}

/** Starts `mcp-http-bridge --instance-id ID` in front of fake-mcp-server with INSTANCE=ID in the
 *  child's environment; resolves once it printed its URL line. */
export async function startBridge(id, { shutdownGrace = '10s', readyTimeoutMs = 20_000 } = {}) {
  const b = supervise(id, bridgeBin, [
    '--instance-id', id, '--port', '0', '--shutdown-grace', shutdownGrace, '-e', `INSTANCE=${id}`,
    '--', fixtureBin,
  ]);
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`bridge ${id}: no URL line within ${readyTimeoutMs} ms\n${b.logTail()}`)), readyTimeoutMs);
    b.exited.then(({ code, signal }) => { clearTimeout(timer); reject(new Error(`bridge ${id} exited before its URL line (code ${code}, signal ${signal})\n${b.logTail()}`)); });
    createInterface({ input: b.proc.stdout }).once('line', (line) => {
      clearTimeout(timer);
      if (!/^http:\/\/.+\/mcp$/.test(line.trim())) return reject(new Error(`bridge ${id}: unexpected first stdout line ${JSON.stringify(line)}`));
      resolve(line.trim());
    });
  });
  b.url = url;
  b.addr = new URL(url).host; // 127.0.0.1:PORT
  b.base = `http://${b.addr}`;
  /** The instance's own /health and /ready, asked directly (not through the balancer). */
  b.health = async () => (await fetch(`${b.base}/health`)).json();
  b.readyStatus = async () => (await fetch(`${b.base}/ready`)).status;
  return b;
}

/** Talks to HAProxy's admin socket: one command per connection. */
function haproxyCommand(socket, command) {
  return new Promise((resolve, reject) => {
    let out = '';
    const c = net.createConnection(socket, () => c.end(`${command}\n`));
    c.setEncoding('utf8');
    c.on('data', (d) => { out += d; });
    c.on('end', () => resolve(out));
    c.on('error', reject);
  });
}

/** Starts HAProxy with deploy/haproxy.cfg exactly as shipped; the instances' addresses, the bind
 *  address and the admin socket come from the environment variables the file documents. */
export async function startHaproxy(bridges) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'scaleout-haproxy-'));
  const port = await freePort();
  const socket = path.join(dir, 'admin.sock');
  const env = { ...process.env, MCP_LB_BIND: `127.0.0.1:${port}`, MCP_LB_STATS_SOCKET: socket };
  for (const [i, b] of bridges.entries()) env[`B${i + 1}_ADDR`] = b.addr;
  const config = path.join(repoRoot, 'deploy', 'haproxy.cfg');
  // -db: stay in the foreground (no daemon, no master process); SIGTERM stops it.
  const lb = supervise('haproxy', HAPROXY, ['-db', '-f', config], { env });
  lb.proc.stdout.on('data', lb.keep);
  lb.kind = 'haproxy';
  lb.url = `http://127.0.0.1:${port}`;
  lb.dir = dir;
  lb.command = (cmd) => haproxyCommand(socket, cmd);
  /** name → operational state from `show servers state` (0 stopped/DOWN, 1 starting, 2 running/UP, 3 stopping). */
  lb.serverStates = async () => {
    const out = await lb.command('show servers state mcp');
    const states = {};
    for (const line of out.split('\n')) {
      const f = line.trim().split(/\s+/);
      if (f.length > 6 && f[1] === 'mcp' && /^\d+$/.test(f[0])) states[f[3]] = Number(f[5]);
    }
    return states;
  };
  /** Per-server counters from `show stat` (CSV): retries, redispatches, responses by class. */
  lb.serverStats = async () => {
    const [header, ...rows] = (await lb.command('show stat')).trim().split('\n');
    const cols = header.replace(/^# /, '').split(',');
    const stats = {};
    for (const row of rows) {
      const v = row.split(',');
      const rec = Object.fromEntries(cols.map((c, i) => [c, v[i]]));
      if (rec.pxname === 'mcp' && rec.svname !== 'BACKEND' && rec.svname !== 'FRONTEND') stats[rec.svname] = rec;
    }
    return stats;
  };
  lb.cleanup = () => rm(dir, { recursive: true, force: true });
  // Ready when every server is UP by HAProxy's own health checks (GET /ready).
  await eventually(async () => {
    if (!lb.alive()) throw new Error(`haproxy exited:\n${lb.logTail()}`);
    try {
      const states = await lb.serverStates();
      return bridges.every((b) => states[b.name] === 2);
    } catch { return false; } // socket not there yet
  }, 'HAProxy to report every server UP', 15_000);
  return lb;
}

/** Renders deploy/nginx.conf (its ${B1_ADDR} ${B2_ADDR} ${B3_ADDR} ${MCP_LB_LISTEN} placeholders,
 *  exactly as `envsubst '${B1_ADDR} ...'` would) into a temporary prefix and runs nginx on it. */
export async function startNginx(bridges) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'scaleout-nginx-'));
  const port = await freePort();
  const values = { MCP_LB_LISTEN: `127.0.0.1:${port}` };
  for (const [i, b] of bridges.entries()) values[`B${i + 1}_ADDR`] = b.addr;
  const template = await readFile(path.join(repoRoot, 'deploy', 'nginx.conf'), 'utf8');
  const rendered = template.replace(/\$\{(B[1-3]_ADDR|MCP_LB_LISTEN)\}/g, (_, k) => values[k]);
  const config = path.join(dir, 'nginx.conf');
  await writeFile(config, rendered);
  const lb = supervise('nginx', NGINX, ['-p', dir, '-c', config, '-g', `daemon off; pid ${path.join(dir, 'nginx.pid')}; error_log stderr notice;`]);
  lb.proc.stdout.on('data', lb.keep);
  lb.kind = 'nginx';
  lb.url = `http://127.0.0.1:${port}`;
  lb.dir = dir;
  lb.cleanup = () => rm(dir, { recursive: true, force: true });
  // nginx has no view of its upstreams to ask: ready once it answers, through itself, with each
  // instance's /health (round robin over the three; `instance` says which one answered).
  const seen = new Set();
  await eventually(async () => {
    if (!lb.alive()) throw new Error(`nginx exited:\n${lb.logTail()}`);
    try {
      const r = await fetch(`${lb.url}/health`);
      if (r.ok) seen.add((await r.json()).instance);
    } catch {} // not listening yet
    return bridges.every((b) => seen.has(b.name));
  }, 'nginx to reach every instance', 15_000, 10);
  return lb;
}

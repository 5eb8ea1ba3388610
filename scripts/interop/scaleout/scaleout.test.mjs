// Scale-out: three mcp-http-bridge instances behind a load balancer run from the shipped
// configuration (SCALEOUT_LB=haproxy: deploy/haproxy.cfg; SCALEOUT_LB=nginx: deploy/nginx.conf),
// with the official TypeScript SDK 2.x clients of both eras and both session transports.
//
//   1. b1 b2 b3 (`--instance-id bN`, child env INSTANCE=bN) and the balancer start; 25 Streamable
//      HTTP session clients, 25 legacy HTTP+SSE clients and 4 modern (2026-07-28) clients call
//      tools in a loop; every answer must be the client's own and `env INSTANCE` must name the
//      instance of the client's session id prefix. Modern calls must spread over all three.
//      (HAProxy only) HAProxy speaks HTTP/2 to the instances and shares its connections: each
//      instance holds fewer TCP connections than half its clients (each holding an open stream).
//      (HAProxy only) A modern client's `elicit` calls -- input_required, retried with the
//      requestState -- succeed although retries are balanced: the body rule pins them.
//   2. b3 is SIGKILLed: only b3's session clients get errors; they re-initialize on b1/b2; a
//      request of a b3 session is answered 404 (by a live instance), not 502.
//   3. b2 gets SIGTERM while some of its clients have a 3 s call in flight: those calls succeed,
//      its sessions are served until then, new sessions opened during the drain land elsewhere
//      (503 retried by the balancer), b2 exits 0 well before --shutdown-grace, its clients
//      re-initialize on b1.
//   At the end: no answer was ever another client's, and every client error is explained by
//   its session's instance going away.
// (HAProxy only) deploy/kubernetes/haproxy.yaml's ConfigMap must equal deploy/haproxy.cfg.
// Run by scripts/scaleout.sh; SCALEOUT_SUMMARY_FILE receives a one-line summary.
import assert from 'node:assert/strict';
import { readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, test } from 'node:test';
import { delay, eventually, repoRoot, startBridge, startHaproxy, startNginx } from './cluster.mjs';
import { ModernClient, SessionClient } from './clients.mjs';

const LB = process.env.SCALEOUT_LB || 'haproxy';
const STREAMABLE = Number(process.env.SCALEOUT_STREAMABLE ?? 25);
const SSE = Number(process.env.SCALEOUT_SSE ?? 25);
const MODERN_CLIENTS = 4;
const LONG_MS = 3_000; // the call in flight at b2's SIGTERM; the drain must let it finish
const LONG_CALLS = 6; // at most, among b2's clients
const BURST = 12; // new sessions opened while b2 drains
const ELICITS = 9;
const GRACE_MS = 10_000; // --shutdown-grace of the instances
const LB_SEES_DEATH_MS = 1_500; // deploy/haproxy.cfg: `fall 2` checks `inter 500ms` apart, and slack

const started = Date.now();
const procs = [];
after(async () => {
  // SIGTERM (SIGKILL 5 s later if need be): nginx's master ends its workers only when it is
  // not killed outright; a bridge ends its child.
  await Promise.allSettled(procs.map((p) => p.stop('SIGTERM')));
  await Promise.allSettled(procs.map((p) => p.cleanup?.()));
});

const count = (xs) => xs.reduce((m, x) => ((m[x] = (m[x] ?? 0) + 1), m), {});
const fmt = (o) => Object.entries(o).sort().map(([k, v]) => `${k}×${v}`).join(' ') || 'none';
/** TCP connections a process holds (Linux: its socket fds, matched by inode against the
 *  established entries of /proc/PID/net/tcp and tcp6). */
const connectionsOf = async (pid) => {
  const established = new Set();
  for (const table of ['tcp', 'tcp6']) {
    const text = await readFile(`/proc/${pid}/net/${table}`, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[3] === '01') established.add(f[9]); // st, inode
    }
  }
  const fds = await readdir(`/proc/${pid}/fd`);
  const links = await Promise.all(fds.map((fd) => readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')));
  return links.filter((l) => established.has(l.match(/^socket:\[(\d+)\]$/)?.[1])).length;
};
const show = (xs, n = 8) => JSON.stringify(xs.slice(0, n), null, 1) + (xs.length > n ? `\n… and ${xs.length - n} more` : '');

test(`${LB} in front of 3 instances: routing, SIGKILL, drain`, { timeout: 110_000 }, async (t) => {
  const bridges = await Promise.all(['b1', 'b2', 'b3'].map((id) => startBridge(id, { shutdownGrace: `${GRACE_MS}ms` })));
  procs.push(...bridges);
  const [, b2, b3] = bridges;
  const lb = LB === 'nginx' ? await startNginx(bridges) : await startHaproxy(bridges);
  procs.push(lb);
  const logs = () => [lb, ...bridges].map((p) => `--- ${p.name} (last lines) ---\n${p.logTail(15)}`).join('\n');
  const check = (cond, message) => assert.ok(cond, typeof message === 'function' ? `${message()}\n${logs()}` : message);

  // MRTR across instances: HAProxy pins the retry by its requestState (body rule). Run first, on
  // idle instances: a shared session-era child's elicitation/create can only be attributed
  // while one request is in flight at that child (else the bridge refuses it, -32051).
  // Not over nginx, which cannot route on the body (deploy/nginx.conf says so): there round
  // robin sends every retry to the next instance, which refuses it -- and the first call stays
  // parked at the instance that minted the state, which would then hold up its drain below.
  let elicitNote = 'elicit (input_required) not run: nginx OSS cannot route on the body';
  if (LB === 'haproxy') {
    const m = new ModernClient('elicitor', lb.url, { elicitation: true });
    await m.connect();
    const results = [];
    for (let i = 0; i < ELICITS; i++) {
      try { results.push({ ok: true, ...(await m.elicit(`question ${i}`)) }); } catch (e) { results.push({ ok: false, error: String(e?.message ?? e) }); }
    }
    await m.client.close();
    const ok = results.filter((r) => r.ok);
    check(ok.length === ELICITS, () => `input_required retries failed through HAProxy (body routing by requestState):\n${show(results.filter((r) => !r.ok))}`);
    check(m.violations.length === 0, () => m.violations.join('\n'));
    const minted = count(ok.map((r) => r.mintedBy));
    check(['b1', 'b2', 'b3'].every((id) => minted[id] > 0), () => `requestStates were not minted by all 3 instances (round robin), so routing was not exercised: ${fmt(minted)}`);
    elicitNote = `elicit (input_required) ${ok.length}/${ELICITS} ok, states minted by ${fmt(minted)}`;
  }

  // ---- 1. steady state ----------------------------------------------------------------------
  const ctl = { stopping: false };
  const clients = [
    ...Array.from({ length: STREAMABLE }, (_, i) => new SessionClient(`http${i}`, 'streamable', lb.url)),
    ...Array.from({ length: SSE }, (_, i) => new SessionClient(`sse${i}`, 'sse', lb.url)),
  ];
  const moderns = Array.from({ length: MODERN_CLIENTS }, (_, i) => new ModernClient(`modern${i}`, lb.url));
  const loops = [...clients, ...moderns].map((c) => c.run(ctl).catch((e) => { c.crashed = e; }));
  try {
    await eventually(() => {
      const crashed = [...clients, ...moderns].find((c) => c.crashed);
      if (crashed) throw crashed.crashed;
      return clients.every((c) => c.okCalls >= 3) && moderns.every((m) => m.okCalls >= 6);
    }, 'every client to connect and complete its first calls', 30_000);
    const firstSessions = count(clients.map((c) => c.sessions[0].instance));
    check(['b1', 'b2', 'b3'].every((id) => firstSessions[id] > 0), () => `initialize was not balanced over the 3 instances: ${fmt(firstSessions)}`);
    const modernSpread = count(moderns.flatMap((m) => m.served.map((s) => s.instance)));
    check(['b1', 'b2', 'b3'].every((id) => modernSpread[id] > 0), () => `modern (stateless) calls did not spread over the 3 instances: ${fmt(modernSpread)}`);
    check(moderns.every((m) => m.posts.filter((p) => p.method === 'tools/call').every((p) => p.mcpMethod === 'tools/call' && p.mcpName === 'env')),
      'a 2026-07-28 tools/call went out without Mcp-Method: tools/call / Mcp-Name: env');
    // deploy/haproxy.cfg speaks HTTP/2 to the instances and lets clients share its connections
    // (`proto h2`, `http-reuse always`): an instance holds a few connections, not one per client's
    // open stream. (nginx OSS speaks HTTP/1.1 to its upstreams.)
    let socketNote = '';
    if (LB === 'haproxy') {
      const held = await Promise.all(bridges.map(async (b) => ({
        name: b.name, connections: await connectionsOf(b.proc.pid), clients: clients.filter((c) => c.instance === b.name).length,
      })));
      check(held.every((h) => h.connections < h.clients / 2), () => `HAProxy's connections to the instances are not shared (proto h2, http-reuse always): ${JSON.stringify(held)}`);
      socketNote = `; HTTP/2 to the instances: ${held.map((h) => `${h.name} ${h.connections} connections for ${h.clients} clients`).join(', ')}`;
    }

    /** A session of a gone instance, asked for through the balancer, must be answered 404 by a
     *  live instance (the client's cue to start a new session), not 502/503 by the balancer. */
    const goneSessionsAre404 = async (id) => {
      for (const kind of ['streamable', 'sse']) {
        const sid = clients.filter((c) => c.kind === kind).flatMap((c) => c.sessions).find((s) => s.instance === id)?.sid;
        check(sid, `no ${kind} session was ever on ${id}`);
        const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} });
        const response = kind === 'sse'
          ? await fetch(`${lb.url}/message?sessionId=${sid}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
          : await fetch(`${lb.url}/mcp`, { method: 'POST', body, headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' } });
        const text = await response.text();
        check(response.status === 404, () => `a ${kind} session of gone ${id} was answered ${response.status} through ${LB}, not 404 (unknown session): ${text.slice(0, 200)}`);
      }
    };

    // ---- 2. SIGKILL b3 ------------------------------------------------------------------------
    const killedAt = Date.now();
    const onB3 = clients.filter((c) => c.instance === 'b3');
    b3.proc.kill('SIGKILL');
    await b3.exited;
    await eventually(() => onB3.every((c) => c.current && c.current.instance !== 'b3' && c.current.openedAt > killedAt && c.current.okCalls >= 2),
      `b3's ${onB3.length} clients to re-initialize on another instance and call again`, 20_000);
    const b3RecoveredMs = Date.now() - killedAt;
    const movedFromB3 = count(onB3.map((c) => c.current.instance));
    await goneSessionsAre404('b3');
    const beforeDrain = Date.now();
    await eventually(() => moderns.every((m) => m.served.filter((s) => s.startedAt > beforeDrain).length >= 3), 'modern clients to keep working after the SIGKILL');

    // ---- 3. SIGTERM b2 while some of its clients have a long call in flight -------------------
    const onB2 = clients.filter((c) => c.instance === 'b2');
    check(onB2.length > 0, 'no client is on b2 before its drain');
    const longCallers = [...onB2.filter((c) => c.kind === 'streamable').slice(0, LONG_CALLS / 2), ...onB2.filter((c) => c.kind === 'sse').slice(0, LONG_CALLS / 2)];
    for (const c of longCallers) { c.long = undefined; c.wantLong = LONG_MS; }
    // In flight = the bridge accepted the POST (202 on /message; the event stream's headers on /mcp).
    await eventually(() => longCallers.every((c) => c.long?.acceptedAt || c.long?.completedAt), 'the long calls to be accepted by b2', 10_000, 5);
    check(longCallers.every((c) => c.long.instance === 'b2' && !c.long.completedAt), () => `a long call was not in flight on b2: ${show(longCallers.map((c) => c.long))}`);
    const termAt = Date.now();
    b2.proc.kill('SIGTERM');
    await eventually(async () => (await b2.readyStatus()) === 503, "b2's /ready to turn 503 after SIGTERM", 5_000, 5);
    // New sessions while b2 drains: none may land on b2.
    const burst = Array.from({ length: BURST }, (_, i) => new SessionClient(`new${i}`, i % 2 ? 'sse' : 'streamable', lb.url));
    const burstResults = await Promise.allSettled(burst.map((c) => c.once()));
    const burstDoneAt = Date.now();
    const b2Exit = await b2.exited;
    const b2ExitAt = Date.now();
    check(b2Exit.code === 0, () => `b2 did not exit 0 after SIGTERM: ${JSON.stringify(b2Exit)}`);
    // The drain must end because nothing is in flight any more, well before --shutdown-grace.
    check(b2ExitAt - termAt < GRACE_MS - 2_000, () => `b2 took ${b2ExitAt - termAt} ms to exit (--shutdown-grace ${GRACE_MS} ms): requests stayed in flight during its drain`);
    check(burstDoneAt < b2ExitAt, `the sessions opened during the drain were not all done before b2 exited (${burstDoneAt - b2ExitAt} ms late): the drain check proved nothing`);
    check(burstResults.every((r) => r.status === 'fulfilled') && burst.every((c) => c.errors.length === 0 && c.violations.length === 0),
      () => `opening a session during b2's drain failed:\n${show(burst.flatMap((c) => [...c.errors, ...c.violations]).concat(burstResults.filter((r) => r.status === 'rejected').map((r) => String(r.reason))))}`);
    const burstOn = count(burst.map((c) => c.sessions[0]?.instance));
    check(!burstOn.b2, () => `new sessions landed on draining b2: ${fmt(burstOn)}`);
    const longs = longCallers.map((c) => c.long);
    check(longs.every((l) => l.ok), () => `calls in flight at b2's SIGTERM failed:\n${show(longs.filter((l) => !l.ok))}`);
    const firstLongDone = Math.min(...longs.map((l) => l.completedAt));
    await eventually(() => onB2.every((c) => c.current && c.current.instance === 'b1' && c.current.openedAt >= termAt && c.current.okCalls >= 2),
      `b2's ${onB2.length} clients to re-initialize on b1 and call again`, 20_000);
    const b2RecoveredMs = Date.now() - b2ExitAt;
    await goneSessionsAre404('b2');

    // ---- stop, then the verdict ---------------------------------------------------------------
    ctl.stopping = true;
    await Promise.all(loops);
    const all = [...clients, ...moderns];
    const violations = all.flatMap((c) => c.violations);
    check(violations.length === 0, () => `answers that were not the client's own (misrouted):\n${violations.slice(0, 20).join('\n')}`);
    const connectErrors = clients.flatMap((c) => c.errors.filter((e) => e.where === 'connect').map((e) => ({ client: c.name, ...e })));
    check(connectErrors.length === 0, () => `opening a session through ${LB} failed:\n${show(connectErrors)}`);
    // A session client's errors must all be its session dying with its instance: b3's from the
    // SIGKILL on, b2's only once the drain let the calls in flight finish (and never a call
    // started before the SIGTERM).
    const explained = (e) => (e.instance === 'b3' && e.at >= killedAt)
      || (e.instance === 'b2' && e.at >= firstLongDone && !(e.startedAt < termAt));
    const unexplained = clients.flatMap((c) => c.errors.filter((e) => !explained(e)).map((e) => ({ client: c.name, kind: c.kind, ...e })));
    check(unexplained.length === 0, () => `errors on clients whose instance was alive and serving them:\n${show(unexplained)}`);
    const erred = clients.filter((c) => c.errors.length > 0);
    const neverOnLostInstance = erred.filter((c) => !c.sessions.some((s) => s.instance === 'b3' || s.instance === 'b2'));
    check(neverOnLostInstance.length === 0, () => `clients never on b3/b2 saw errors: ${neverOnLostInstance.map((c) => c.name)}`);
    // Modern (stateless) clients: a call in flight on b3 at the SIGKILL may fail. So may a call
    // started just after it, until the balancer has seen b3 go: HAProxy can send it over an idle
    // connection to b3 that b3's death closed before HAProxy read the close. A tools/call is not
    // retried there (disable-l7-retry), so HAProxy closes the client's connection without a reply,
    // as a server's own keep-alive close would (http-reuse safe: the client may retry). That shows
    // as a socket-level failure, never as an HTTP error; nothing else is allowed.
    const diedWithB3 = (e) => (e.startedAt <= killedAt && e.at >= killedAt)
      || (e.cause !== undefined && e.startedAt >= killedAt && e.startedAt - killedAt < LB_SEES_DEATH_MS);
    const modernUnexplained = moderns.flatMap((m) => m.errors.filter((e) => !diedWithB3(e)).map((e) => ({ client: m.name, ...e })));
    check(modernUnexplained.length === 0, () => `modern clients saw errors not caused by b3's death:\n${show(modernUnexplained)}`);
    const sessionsOnDead = clients.flatMap((c) => c.sessions.filter((s) => (s.instance === 'b3' && s.openedAt > killedAt) || (s.instance === 'b2' && s.openedAt > termAt)).map((s) => ({ client: c.name, ...s })));
    check(sessionsOnDead.length === 0, () => `sessions opened on a dead or draining instance:\n${show(sessionsOnDead)}`);

    const calls = all.reduce((n, c) => n + c.okCalls, 0);
    const errs = clients.reduce((n, c) => n + c.errors.length, 0) + moderns.reduce((n, m) => n + m.errors.length, 0);
    // What each transport's client saw when its instance went away, grouped (for the report).
    const said = (e) => `${e.message}${e.cause ? ` (${e.cause})` : ''}`.replace(/\s+/g, ' ').replace(/b\d\.[0-9a-f]{64}/g, 'ID').slice(0, 110);
    const seen = (kind) => fmt(count(clients.filter((c) => c.kind === kind).flatMap((c) => c.errors)
      .map((e) => `[${e.instance === 'b3' ? 'SIGKILL' : 'drain'}, ${e.where}] ${said(e)}`)));
    let lbNote = '';
    if (LB === 'haproxy') {
      const st = await lb.serverStats();
      lbNote = `; haproxy retries/redispatches ${['b1', 'b2', 'b3'].map((s) => `${s} ${st[s]?.wretr}/${st[s]?.wredis}`).join(', ')}`;
    }
    const summary = `${calls} calls ok, 0 misrouted; initialize spread ${fmt(firstSessions)}, modern calls ${fmt(modernSpread)}${socketNote}; ${elicitNote}; `
      + `b3 SIGKILL: ${onB3.length} clients re-initialized (now ${fmt(movedFromB3)}) within ${b3RecoveredMs} ms, ${moderns.reduce((n, m) => n + m.errors.length, 0)} modern call(s) lost to it, no other client saw an error; `
      + `b2 SIGTERM: ${longs.length} calls of ${LONG_MS} ms in flight completed, ${BURST} sessions opened during the drain (${fmt(burstOn)}), exit 0 after ${b2ExitAt - termAt} ms, ${onB2.length} clients re-initialized on b1 within ${b2RecoveredMs} ms of it; `
      + `${errs} client errors, all on b3/b2 sessions${lbNote}; ${((Date.now() - started) / 1000).toFixed(1)} s`;
    t.diagnostic(summary);
    t.diagnostic(`errors seen by Streamable HTTP clients: ${seen('streamable')}`);
    t.diagnostic(`errors seen by HTTP+SSE clients: ${seen('sse')}`);
    t.diagnostic(`errors seen by modern clients: ${fmt(count(moderns.flatMap((m) => m.errors).map((e) => `[${e.startedAt <= killedAt ? 'in flight' : `+${e.startedAt - killedAt} ms`}] ${said(e)}`)))}`);
    if (process.env.SCALEOUT_SUMMARY_FILE) await writeFile(process.env.SCALEOUT_SUMMARY_FILE, `${summary}\n`);
  } finally {
    ctl.stopping = true; // also when an assertion failed: the client loops end
    let timer;
    await Promise.race([Promise.all(loops), new Promise((r) => { timer = setTimeout(r, 15_000); })]);
    clearTimeout(timer);
  }
});

// deploy/kubernetes/haproxy.yaml must run the configuration tested above: its ConfigMap holds a
// verbatim copy of deploy/haproxy.cfg (a YAML block scalar, indented 4 spaces).
if (LB === 'haproxy') {
  test('the Kubernetes ConfigMap carries deploy/haproxy.cfg unchanged', async () => {
    const shipped = await readFile(path.join(repoRoot, 'deploy', 'haproxy.cfg'), 'utf8');
    const manifest = (await readFile(path.join(repoRoot, 'deploy', 'kubernetes', 'haproxy.yaml'), 'utf8')).split('\n');
    const start = manifest.indexOf('  haproxy.cfg: |');
    assert.ok(start >= 0, 'no `  haproxy.cfg: |` key in deploy/kubernetes/haproxy.yaml');
    const block = [];
    for (const line of manifest.slice(start + 1)) {
      if (line !== '' && !line.startsWith('    ')) break;
      block.push(line.slice(4));
    }
    while (block.at(-1) === '') block.pop();
    assert.equal(`${block.join('\n')}\n`, shipped,
      'deploy/kubernetes/haproxy.yaml has drifted from deploy/haproxy.cfg: put the file into the ConfigMap again (the block after `  haproxy.cfg: |`: the output of sed "s/^/    /" deploy/haproxy.cfg)');
  });
}

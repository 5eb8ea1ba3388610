// The official TypeScript SDK 2.x client (@modelcontextprotocol/client) in each of its era
// modes against the bridge in front of a child of each era.
//
// Modes (ClientOptions.versionNegotiation.mode): 'legacy' (initialize, a session), 'auto'
// (probes server/discover, falls back to initialize) and { pin: '2026-07-28' } (modern at
// exactly that revision; server/discover must offer it). The bridge answers server/discover
// whatever its child's era, so through it 'auto' always ends up on 2026-07-28. Children:
// fake-mcp-server (session era, initialized once by the bridge) and modern-mcp-server
// (2026-07-28). In the modern era the SDK drives input_required itself (inputRequired
// auto-fulfilment through the elicitation/create handler) and subscribes with listen().
//
// Every combination is expected to work. A gap found later goes in GAPS with its reason; the
// test is then skipped with that reason, so it shows in the summary.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { CHILDREN, startBridge, until, withBridgeLog } from './bridge.mjs';

const MODERN = '2026-07-28';
const MODES = { legacy: 'legacy', auto: 'auto', [MODERN]: { pin: MODERN } };
/** The era each mode speaks through the bridge. */
const ERA = { legacy: 'legacy', auto: 'modern', [MODERN]: 'modern' };
const SERVER_NAMES = { legacy: 'fake-mcp-server', modern: 'modern-mcp-server' };
const ELICITED = { name: 'Ada' };
const TEST_TIMEOUT_MS = 30_000;
const QUIET_MS = 300; // how long a notification that must NOT arrive is given to show up anyway
const quiet = () => new Promise((r) => setTimeout(r, QUIET_MS));

/** What fails, by `${feature} ${client era}/${child era}` → reason: nothing at the moment. */
const GAPS = {};

const textOf = (result) => {
  assert.equal(result.isError ?? false, false, `tool reported an error: ${JSON.stringify(result)}`);
  return result.content.find((c) => c.type === 'text')?.text;
};

/** Polls the async `check` every 20 ms until it holds, for `ms` at most. */
async function eventually(check, what, ms = 5_000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
const nothingPending = (bridge) => eventually(async () => (await bridge.health()).pendingRequests === 0, 'no request pending at the bridge');

/** Every JSON-RPC message the client POSTed, in order. */
class WireLog {
  sent = [];
  fetch = async (url, init) => {
    if (typeof init?.body === 'string') {
      const body = JSON.parse(init.body);
      this.sent.push(...(Array.isArray(body) ? body : [body]));
    }
    return fetch(url, init);
  };
  methods() { return this.sent.filter((m) => m.method).map((m) => m.method); }
  requestIds(method) { return this.sent.filter((m) => m.method === method && 'id' in m).map((m) => m.id); }
}

/** A client in `mode` declaring elicitation, connected to the bridge; `setup` may add handlers first. */
async function connect(bridge, mode, { wire = new WireLog(), setup = () => {} } = {}) {
  const client = new Client(
    { name: 'interop-ts-2', version: '1.0.0' },
    { capabilities: { elicitation: {} }, versionNegotiation: { mode: MODES[mode] } },
  );
  setup(client);
  const transport = new StreamableHTTPClientTransport(new URL(bridge.url), { fetch: wire.fetch });
  await client.connect(transport);
  return { client, transport };
}

/** Runs `body(bridge)` against a bridge of its own in front of `child`; stops both after. */
async function withBridge(child, body) {
  const bridge = await startBridge([CHILDREN[child]]);
  try {
    await withBridgeLog(() => bridge, () => body(bridge))();
  } finally {
    await bridge.stop();
  }
}

/** A connected client that always closes, ending its session (if any) first: `close()` alone
 *  does not (the SDK sends DELETE only from `terminateSession()`). */
async function session(bridge, mode, options, body) {
  const { client, transport } = await connect(bridge, mode, options);
  try {
    return await body(client, transport);
  } finally {
    if (transport.sessionId) await transport.terminateSession();
    await client.close();
  }
}

/** Clients in `modes`, each with `calls` calls in flight at once; every client numbers its requests
 *  the same way, so their ids collide at the bridge. */
async function concurrentClients(bridge, modes, calls = 12) {
  const wires = modes.map(() => new WireLog());
  const failures = [];
  await Promise.all(modes.map((mode, n) => session(bridge, mode, { wire: wires[n] }, async (client) => {
    await Promise.all(Array.from({ length: calls }, async (_, i) => {
      let want, got;
      if (i % 2 === 0) {
        want = `client ${n} call ${i}`;
        got = textOf(await client.callTool({ name: 'echo', arguments: { text: want } }));
      } else {
        want = String(n * 1000 + i);
        got = textOf(await client.callTool({ name: 'add', arguments: { a: n * 1000, b: i } }));
      }
      if (want !== got) failures.push({ mode, n, i, want, got });
    }));
  })));
  assert.deepEqual(failures, []);
  const ids = wires.map((w) => new Set(w.requestIds('tools/call')));
  for (const set of ids) assert.equal(set.size, calls);
  const shared = [...ids[0]].filter((id) => ids.every((set) => set.has(id)));
  assert.ok(shared.length > 0, `the clients' request ids did not collide: ${JSON.stringify(ids.map((s) => [...s]))}`);
}

const FEATURES = {
  async connect(bridge, mode, child) {
    const wire = new WireLog();
    await session(bridge, mode, { wire }, async (client, transport) => {
      // A session for the legacy era; a stateless client never gets an Mcp-Session-Id.
      assert.equal(transport.sessionId !== undefined, ERA[mode] === 'legacy');
      assert.equal((await bridge.health()).sessions, ERA[mode] === 'legacy' ? 1 : 0);
      assert.equal(client.getProtocolEra(), ERA[mode]);
      assert.equal(client.getNegotiatedProtocolVersion(), ERA[mode] === 'legacy' ? '2025-11-25' : MODERN);
      // From initialize (legacy) or server/discover (auto, pinned), the bridge's or the child's.
      assert.equal(client.getServerVersion()?.name, SERVER_NAMES[child]);
      assert.ok(client.getServerCapabilities()?.tools, 'no tools capability');
      assert.equal(client.getDiscoverResult() !== undefined, ERA[mode] === 'modern');
      const opening = ERA[mode] === 'legacy' ? ['initialize', 'notifications/initialized'] : ['server/discover'];
      assert.deepEqual(wire.methods().slice(0, opening.length), opening);
    });
    await eventually(async () => (await bridge.health()).sessions === 0, 'the session to end with the client');
  },

  async 'tools/list and tools/call'(bridge, mode, child) {
    const wire = new WireLog();
    await session(bridge, mode, { wire }, async (client) => {
      const names = (await client.listTools()).tools.map((t) => t.name);
      for (const n of ['echo', 'add', 'slow', 'cancellations', 'touch', child === 'modern' ? 'ask_name' : 'elicit']) {
        assert.ok(names.includes(n), `tool ${n} missing from ${names}`);
      }
      assert.equal(textOf(await client.callTool({ name: 'echo', arguments: { text: `${mode} to ${child}` } })), `${mode} to ${child}`);
      assert.equal(textOf(await client.callTool({ name: 'add', arguments: { a: 2, b: 40 } })), '42');
    });
    const methods = wire.methods();
    if (ERA[mode] === 'legacy') {
      assert.ok(!wire.sent.some((m) => m.params?._meta?.['io.modelcontextprotocol/protocolVersion']), 'a session request carried the 2026-07-28 _meta');
    } else {
      assert.ok(!methods.includes('initialize'), methods);
      const requests = wire.sent.filter((m) => m.method && 'id' in m);
      assert.ok(requests.every((m) => m.params?._meta?.['io.modelcontextprotocol/protocolVersion'] === MODERN), JSON.stringify(requests));
    }
  },

  async 'concurrent clients with colliding request ids'(bridge, mode) {
    await concurrentClients(bridge, Array(4).fill(mode));
  },

  async 'cancellation by abort signal reaches the child'(bridge, mode) {
    const wire = new WireLog();
    await session(bridge, mode, { wire }, async (client) => {
      const ac = new AbortController();
      const started = Date.now();
      const call = client.callTool({ name: 'slow', arguments: { ms: 10_000 } }, { signal: ac.signal });
      setTimeout(() => ac.abort('interop test cancels'), 300);
      await assert.rejects(call);
      assert.ok(Date.now() - started < 5_000, 'the aborted call took too long to reject');
      let seen = [];
      await eventually(async () => {
        seen = JSON.parse(textOf(await client.callTool({ name: 'cancellations', arguments: {} })));
        return seen.length > 0;
      }, 'the child to hear of the cancellation');
      assert.equal(seen.length, 1, JSON.stringify(seen));
      assert.notEqual(seen[0].requestId, null, JSON.stringify(seen));
      // Legacy: the SDK sends notifications/cancelled with the abort reason. 2026-07-28: it only
      // aborts the reply stream (that revision has no client notifications), and the bridge cancels.
      const cancels = wire.sent.filter((m) => m.method === 'notifications/cancelled');
      assert.equal(cancels.length, ERA[mode] === 'legacy' ? 1 : 0, JSON.stringify(cancels));
      if (ERA[mode] === 'legacy') assert.equal(seen[0].reason, 'interop test cancels');
      await nothingPending(bridge);
      assert.equal(textOf(await client.callTool({ name: 'slow', arguments: { ms: 50 } })), 'slept 50');
      assert.equal(textOf(await client.callTool({ name: 'echo', arguments: { text: 'after cancel' } })), 'after cancel');
    });
  },

  async progress(bridge, mode) {
    await session(bridge, mode, {}, async (client) => {
      const seen = [];
      const result = await client.callTool({ name: 'progress', arguments: { n: 4, ms: 10 } }, { onprogress: (p) => seen.push([p.progress, p.total]) });
      assert.equal(textOf(result), 'progress done 4');
      assert.deepEqual(seen, [[1, 4], [2, 4], [3, 4], [4, 4]]);
    });
  },

  /** The modern child asks with input_required (the bridge makes that an elicitation/create server
   *  request for a session); the legacy child sends elicitation/create (the bridge makes that an
   *  input_required for a 2026-07-28 client, which the SDK fulfils and retries). */
  async 'elicitation answered by the handler'(bridge, mode, child) {
    const asked = [];
    const wire = new WireLog();
    const setup = (c) => c.setRequestHandler('elicitation/create', async (request) => {
      asked.push(request.params);
      return { action: 'accept', content: ELICITED };
    });
    await session(bridge, mode, { wire, setup }, async (client) => {
      // A short timeout: where the bridge cannot carry the question, the call never ends.
      if (child === 'modern') {
        assert.equal(textOf(await client.callTool({ name: 'ask_name', arguments: {} }, { timeout: 5_000 })), 'Hello, Ada');
        assert.equal(asked[0]?.message, 'What is your name?');
      } else {
        const reply = JSON.parse(textOf(await client.callTool({ name: 'elicit', arguments: { message: 'Who are you?' } }, { timeout: 5_000 })));
        assert.deepEqual(reply, { action: 'accept', content: ELICITED });
        assert.equal(asked[0]?.message, 'Who are you?');
      }
    });
    assert.equal(asked.length, 1);
    assert.equal(asked[0].requestedSchema.properties.name.type, 'string');
    const calls = wire.sent.filter((m) => m.method === 'tools/call');
    if (ERA[mode] === 'legacy') {
      // One call; the answer went back as a JSON-RPC response to the bridge's server request.
      assert.equal(calls.length, 1);
      assert.ok(wire.sent.some((m) => !m.method && m.result?.action === 'accept'), 'no elicitation response was POSTed');
    } else {
      // The call, then its retry with the answer and the state, on a fresh id.
      assert.equal(calls.length, 2, JSON.stringify(calls));
      const retry = calls[1].params;
      assert.notEqual(calls[1].id, calls[0].id);
      assert.deepEqual(Object.values(retry.inputResponses ?? {}), [{ action: 'accept', content: ELICITED }]);
      assert.equal(typeof retry.requestState, 'string');
    }
  },

  /** fixture://hello, which both children have; `touch` says it changed. */
  async subscription(bridge, mode) {
    const updates = [];
    const setup = (c) => c.setNotificationHandler('notifications/resources/updated', (n) => { updates.push(n.params.uri); });
    await session(bridge, mode, { setup }, async (client) => {
      if (ERA[mode] === 'legacy') {
        // A session subscribes with resources/subscribe; listen() is refused on that era.
        await assert.rejects(client.listen({ resourceSubscriptions: ['fixture://hello'] }));
        await client.subscribeResource({ uri: 'fixture://hello' });
        assert.match(textOf(await client.callTool({ name: 'touch', arguments: { uri: 'fixture://hello' } })), /^touched/);
        await until(() => updates.length > 0, 5_000, 'resources/updated');
        assert.deepEqual(updates, ['fixture://hello']);
        await client.unsubscribeResource({ uri: 'fixture://hello' });
        await client.callTool({ name: 'touch', arguments: { uri: 'fixture://hello' } });
        await quiet();
        assert.deepEqual(updates, ['fixture://hello'], 'resources/updated after unsubscribe');
      } else {
        const sub = await client.listen({ resourceSubscriptions: ['fixture://hello'] }, { timeout: 5_000 });
        assert.deepEqual(sub.honoredFilter.resourceSubscriptions, ['fixture://hello']);
        assert.match(textOf(await client.callTool({ name: 'touch', arguments: { uri: 'fixture://hello' } })), /^touched/);
        await until(() => updates.length > 0, 5_000, 'resources/updated on the listen stream');
        assert.deepEqual(updates, ['fixture://hello']);
        await sub.close();
        assert.equal(await sub.closed, 'local');
        await client.callTool({ name: 'touch', arguments: { uri: 'fixture://hello' } });
        await quiet();
        assert.deepEqual(updates, ['fixture://hello'], 'resources/updated after the subscription closed');
        await nothingPending(bridge);
      }
    });
  },
};

for (const [feature, run] of Object.entries(FEATURES)) {
  describe(feature, () => {
    for (const mode of Object.keys(MODES)) {
      for (const child of Object.keys(CHILDREN)) {
        const gap = GAPS[`${feature} ${ERA[mode]}/${child}`];
        it(`${mode} client / ${child} child`, { timeout: TEST_TIMEOUT_MS, skip: gap ?? false },
          () => withBridge(child, (bridge) => run(bridge, mode, child)));
      }
    }
  });
}

describe('clients of every mode at once, colliding request ids', () => {
  for (const child of Object.keys(CHILDREN)) {
    it(`${child} child`, { timeout: TEST_TIMEOUT_MS },
      () => withBridge(child, (bridge) => concurrentClients(bridge, [...Object.keys(MODES), ...Object.keys(MODES)])));
  }
});

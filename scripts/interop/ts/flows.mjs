// The client flows every transport must carry, written against the official TypeScript SDK.
// `defineFlows` registers them inside the caller's describe(); the caller supplies the transport.
import assert from 'node:assert/strict';
import { before, after, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import {
  CreateMessageRequestSchema, ElicitRequestSchema, ListRootsRequestSchema,
  LoggingMessageNotificationSchema, ResourceUpdatedNotificationSchema, ToolListChangedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { startBridge, withBridgeLog, until } from './bridge.mjs';

const TEST_TIMEOUT_MS = 30_000;
const QUIET_MS = 300; // how long a notification that must NOT arrive is given to show up anyway
const ROOTS = [{ uri: 'file:///interop/root', name: 'interop root' }];
const quiet = () => new Promise((r) => setTimeout(r, QUIET_MS));
const textOf = (result) => {
  assert.equal(result.isError ?? false, false, `tool reported an error: ${JSON.stringify(result)}`);
  return result.content.find((c) => c.type === 'text')?.text;
};

/** @param {(bridge) => import('@modelcontextprotocol/sdk/shared/transport.js').Transport} makeTransport */
export function defineFlows(makeTransport, { bridgeArgs = [] } = {}) {
  let bridge;
  const clients = [];
  before(async () => { bridge = await startBridge(undefined, { args: bridgeArgs }); });
  after(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    await bridge?.stop();
  });

  const test = (name, fn) => it(name, { timeout: TEST_TIMEOUT_MS }, withBridgeLog(() => bridge, fn));

  /** A connected client declaring sampling, elicitation and roots; `setup` may add handlers first. */
  async function connect(setup = () => {}) {
    const client = new Client(
      { name: 'interop-ts', version: '1.0.0' },
      { capabilities: { sampling: {}, elicitation: {}, roots: { listChanged: true } } },
    );
    setup(client);
    await client.connect(makeTransport(bridge));
    clients.push(client);
    return client;
  }

  test('handshake reports serverInfo and capabilities', async () => {
    const client = await connect();
    assert.ok(client.getServerVersion()?.name, 'serverInfo.name missing');
    const caps = client.getServerCapabilities();
    for (const cap of ['tools', 'resources', 'prompts', 'logging']) assert.ok(caps?.[cap], `capability ${cap} missing`);
    assert.deepEqual(await client.ping(), {});
  });

  test('tools/list and tools/call echo, add', async () => {
    const client = await connect();
    const { tools } = await client.listTools();
    const names = tools.map((t) => t.name);
    for (const n of ['echo', 'add', 'slow', 'progress', 'sample', 'elicit', 'roots', 'log', 'touch']) assert.ok(names.includes(n), `tool ${n} missing`);
    assert.equal(textOf(await client.callTool({ name: 'echo', arguments: { text: 'hello bridge' } })), 'hello bridge');
    assert.equal(textOf(await client.callTool({ name: 'add', arguments: { a: 2, b: 40 } })), '42');
  });

  test('progress notifications all arrive before the result', async () => {
    const client = await connect();
    const seen = [];
    const result = await client.callTool({ name: 'progress', arguments: { n: 5, ms: 20 } }, undefined, { onprogress: (p) => seen.push(p) });
    const atResult = seen.length;
    assert.equal(textOf(result), 'progress done 5');
    assert.equal(atResult, 5, `only ${atResult} progress notifications before the result`);
    assert.deepEqual(seen.map((p) => [p.progress, p.total]), [[1, 5], [2, 5], [3, 5], [4, 5], [5, 5]]);
  });

  test('sampling: the tool returns what the client answered', async () => {
    const asked = [];
    const client = await connect((c) => c.setRequestHandler(CreateMessageRequestSchema, async (req) => {
      asked.push(req.params);
      return { role: 'assistant', content: { type: 'text', text: 'sampled by ts client' }, model: 'interop-model' };
    }));
    assert.equal(textOf(await client.callTool({ name: 'sample', arguments: { prompt: 'What is 6 x 7?' } })), 'sampled by ts client');
    assert.equal(asked.length, 1);
    assert.ok(JSON.stringify(asked[0].messages).includes('What is 6 x 7?'), 'prompt not in the sampling request');
  });

  test('elicitation: the tool returns the client result', async () => {
    const asked = [];
    const client = await connect((c) => c.setRequestHandler(ElicitRequestSchema, async (req) => {
      asked.push(req.params);
      return { action: 'accept', content: { name: 'Ada' } };
    }));
    const text = textOf(await client.callTool({ name: 'elicit', arguments: { message: 'Who are you?' } }));
    assert.deepEqual(JSON.parse(text), { action: 'accept', content: { name: 'Ada' } });
    assert.equal(asked[0]?.message, 'Who are you?');
    assert.equal(asked[0]?.requestedSchema?.properties?.name?.type, 'string');
  });

  test('roots/list reaches the client', async () => {
    const client = await connect((c) => c.setRequestHandler(ListRootsRequestSchema, async () => ({ roots: ROOTS })));
    assert.deepEqual(JSON.parse(textOf(await client.callTool({ name: 'roots', arguments: {} }))).roots, ROOTS);
  });

  test('resources: list, read, subscribe/unsubscribe updates go only to subscribers', async () => {
    const updates = { sub: [], other: [] };
    const onUpdate = (list) => (c) => c.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => { list.push(n.params.uri); });
    const sub = await connect(onUpdate(updates.sub));
    const other = await connect(onUpdate(updates.other));
    const { resources } = await sub.listResources();
    assert.ok(resources.some((r) => r.uri === 'fixture://hello'), 'fixture://hello not listed');
    const { contents } = await sub.readResource({ uri: 'fixture://hello' });
    assert.equal(contents[0].text, 'hello from fixture');

    await sub.subscribeResource({ uri: 'fixture://hello' });
    assert.equal(textOf(await sub.callTool({ name: 'touch', arguments: { uri: 'fixture://hello' } })), 'touched');
    await until(() => updates.sub.includes('fixture://hello'), 5_000, 'resources/updated at the subscriber');
    await quiet();
    assert.deepEqual(updates.other, [], 'a session that did not subscribe got resources/updated');

    await sub.unsubscribeResource({ uri: 'fixture://hello' });
    updates.sub.length = 0;
    assert.equal(textOf(await other.callTool({ name: 'touch', arguments: { uri: 'fixture://hello' } })), 'touched');
    await quiet();
    assert.deepEqual(updates, { sub: [], other: [] }, 'resources/updated after unsubscribe');
  });

  test('prompts: list and get greet', async () => {
    const client = await connect();
    const { prompts } = await client.listPrompts();
    const greet = prompts.find((p) => p.name === 'greet');
    assert.ok(greet, 'prompt greet missing');
    assert.ok(greet.arguments?.some((a) => a.name === 'name' && a.required), 'greet lacks required argument name');
    const { messages } = await client.getPrompt({ name: 'greet', arguments: { name: 'Ada' } });
    assert.equal(messages[0].role, 'user');
    assert.equal(messages[0].content.text, 'Hello, Ada!');
  });

  test('logging: messages at or above the set level arrive, below do not', async () => {
    const logs = [];
    const client = await connect((c) => c.setNotificationHandler(LoggingMessageNotificationSchema, (n) => { logs.push(n.params); }));
    await client.setLoggingLevel('warning');
    for (const [level, message] of [['error', 'e-1'], ['info', 'i-1'], ['debug', 'd-1'], ['warning', 'w-1']]) {
      assert.equal(textOf(await client.callTool({ name: 'log', arguments: { level, message } })), 'logged');
    }
    await until(() => ['e-1', 'w-1'].every((m) => logs.some((l) => l.data === m)), 5_000, 'error and warning logs');
    await quiet();
    const mine = logs.filter((l) => ['e-1', 'i-1', 'd-1', 'w-1'].includes(l.data));
    assert.deepEqual(mine.map((l) => [l.level, l.data]).sort(), [['error', 'e-1'], ['warning', 'w-1']]);
    assert.ok(mine.every((l) => l.logger === 'fixture'));
  });

  test('cancellation: an aborted call rejects and the session keeps working', async () => {
    const client = await connect();
    const ac = new AbortController();
    const started = Date.now();
    const call = client.callTool({ name: 'slow', arguments: { ms: 5_000 } }, undefined, { signal: ac.signal });
    setTimeout(() => ac.abort('interop test cancels'), 200);
    await assert.rejects(call);
    assert.ok(Date.now() - started < 4_000, 'the aborted call waited for the tool to finish');
    assert.equal(textOf(await client.callTool({ name: 'slow', arguments: { ms: 50 } })), 'slept 50');
    assert.equal(textOf(await client.callTool({ name: 'echo', arguments: { text: 'after cancel' } })), 'after cancel');
  });

  test('tools/list_changed reaches the client', async () => {
    let changed = 0;
    const client = await connect((c) => c.setNotificationHandler(ToolListChangedNotificationSchema, () => { changed++; }));
    assert.equal(textOf(await client.callTool({ name: 'list_changed', arguments: {} })), 'ok');
    await until(() => changed > 0, 5_000, 'notifications/tools/list_changed');
  });

  test('5 sessions x 20 concurrent calls each get their own results', async () => {
    const sessions = await Promise.all(Array.from({ length: 5 }, () => connect()));
    await Promise.all(sessions.flatMap((client, s) => Array.from({ length: 20 }, async (_, i) => {
      const op = i % 2 === 0
        ? [{ name: 'echo', arguments: { text: `session ${s} call ${i}` } }, `session ${s} call ${i}`]
        : [{ name: 'add', arguments: { a: s * 1000, b: i } }, String(s * 1000 + i)];
      assert.equal(textOf(await client.callTool(op[0])), op[1], `session ${s} call ${i}`);
    })));
  });

  test('a large result (2 MB) arrives intact', async () => {
    const client = await connect();
    const text = textOf(await client.callTool({ name: 'huge', arguments: { bytes: 2_000_000 } }));
    assert.equal(text.length, 2_000_000);
    assert.ok(/^x+$/.test(text));
  });

  test('garbage on the child stdout does not break the session', async () => {
    const client = await connect();
    assert.equal(textOf(await client.callTool({ name: 'garbage', arguments: {} })), 'ok');
    assert.equal(textOf(await client.callTool({ name: 'stderr', arguments: { line: 'interop stderr line' } })), 'ok');
    assert.equal(textOf(await client.callTool({ name: 'echo', arguments: { text: 'still fine' } })), 'still fine');
  });
}

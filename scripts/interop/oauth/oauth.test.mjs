// The bridge as an OAuth resource server against real parts: oidc-provider as the authorization
// server (JWT access tokens for the resource a client names) and the official TypeScript SDK
// client, which follows the bridge's 401 to its protected-resource metadata, to the
// authorization server, to a token (client_credentials with a resource indicator), and back.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { ClientCredentialsProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';
import { fixtureBin, startBridge, withBridgeLog } from '../ts/bridge.mjs';
import { CLIENTS, INTROSPECTION_CLIENT, newKey, startProvider } from './provider.mjs';

const INIT = {
  jsonrpc: '2.0', id: 0, method: 'initialize',
  params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'oauth-test', version: '0' } },
};

/** POSTs one JSON-RPC message with `token` (and `session`); resolves to the fetch Response. */
function post(url, token, message, session) {
  const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
  if (token) headers.authorization = `Bearer ${token}`;
  if (session) headers['mcp-session-id'] = session;
  return fetch(url, { method: 'POST', headers, body: JSON.stringify(message) });
}

const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
const header = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[0], 'base64url'));

/**
 * An SDK client signed in as `clientId` through client_credentials, connected to `url` over
 * Streamable HTTP (or `Transport`).
 */
async function signedIn(url, issuer, clientId, Transport = StreamableHTTPClientTransport) {
  const authProvider = new ClientCredentialsProvider({
    clientId, clientSecret: CLIENTS[clientId].secret, scope: 'mcp:tools', expectedIssuer: issuer,
  });
  const client = new Client({ name: `oauth-${clientId}`, version: '0' });
  await client.connect(new Transport(new URL(url), { authProvider }));
  return { client, authProvider };
}

const text = (result) => result.content[0].text;

describe('OAuth: oidc-provider, the bridge and the TS SDK client', () => {
  let provider;
  let bridge;
  const key = newKey();
  before(async () => {
    provider = await startProvider({ keys: [key] });
    // Cooldown 0: the rotation test must not wait for the default 10 s.
    bridge = await startBridge([fixtureBin], {
      args: ['--oauth-issuer', provider.issuer, '--oauth-scope', 'mcp:tools', '--oauth-jwks-cooldown', '0s'],
    });
  });
  after(async () => {
    await bridge?.stop();
    await provider?.stop();
  });

  test('the SDK client follows the 401 to a token and calls a tool', withBridgeLog(() => bridge, async () => {
    const { client, authProvider } = await signedIn(bridge.url, provider.issuer, 'alice');
    assert.equal(authProvider.tokens().access_token.split('.').length, 3, 'a JWT access token');
    const result = await client.callTool({ name: 'echo', arguments: { text: 'signed in' } });
    assert.equal(text(result), 'signed in');
    await client.close();
  }));

  test('the SDK client signs in over the legacy HTTP+SSE transport too', withBridgeLog(() => bridge, async () => {
    const sseUrl = bridge.url.replace(/\/mcp$/, '/sse');
    const { client } = await signedIn(sseUrl, provider.issuer, 'bob', SSEClientTransport);
    const result = await client.callTool({ name: 'echo', arguments: { text: 'over SSE' } });
    assert.equal(text(result), 'over SSE');
    await client.close();
  }));

  test('the challenge and the metadata lead to the authorization server', withBridgeLog(() => bridge, async () => {
    const response = await post(bridge.url, undefined, INIT);
    assert.equal(response.status, 401);
    const challenge = response.headers.get('www-authenticate');
    const metadataUrl = /resource_metadata="([^"]+)"/.exec(challenge)?.[1];
    assert.match(challenge, /scope="mcp:tools"/);
    const metadata = await (await fetch(metadataUrl)).json();
    assert.equal(metadata.resource, bridge.url);
    assert.deepEqual(metadata.authorization_servers, [provider.issuer]);
    assert.deepEqual(metadata.scopes_supported, ['mcp:tools']);
  }));

  test('tokens that are not for this bridge are refused', withBridgeLog(() => bridge, async () => {
    const valid = await provider.token('alice', bridge.url);
    assert.equal((await post(bridge.url, valid, INIT)).status, 200);
    const [h, p, s] = valid.split('.');
    const stranger = await startProvider();
    try {
      const cases = {
        'another audience': await provider.token('alice', 'https://other.example.com/mcp'),
        'another issuer': await stranger.token('alice', bridge.url),
        'a tampered signature': `${h}.${p}.${s.slice(0, -4)}${s.slice(-4) === 'AAAA' ? 'BBBB' : 'AAAA'}`,
        'alg none': `${b64({ alg: 'none', typ: 'at+jwt' })}.${p}.`,
        'HS256 header': `${b64({ ...header(valid), alg: 'HS256' })}.${p}.${s}`,
        'claims of another subject': `${h}.${b64({ ...JSON.parse(Buffer.from(p, 'base64url')), sub: 'bob' })}.${s}`,
      };
      for (const [name, token] of Object.entries(cases)) {
        const response = await post(bridge.url, token, INIT);
        assert.equal(response.status, 401, name);
        assert.match(response.headers.get('www-authenticate'), /error="invalid_token"/, name);
      }
    } finally {
      await stranger.stop();
    }
    const unscoped = await provider.token('reader', bridge.url, 'notes:read');
    const response = await post(bridge.url, unscoped, INIT);
    assert.equal(response.status, 403);
    assert.match(response.headers.get('www-authenticate'), /error="insufficient_scope"/);
  }));

  test('a session belongs to its subject, whatever token it shows', withBridgeLog(() => bridge, async () => {
    const opened = await post(bridge.url, await provider.token('alice', bridge.url), INIT);
    assert.equal(opened.status, 200);
    const session = opened.headers.get('mcp-session-id');
    const list = { jsonrpc: '2.0', id: 1, method: 'tools/list' };
    const refreshed = await provider.token('alice', bridge.url);
    assert.equal((await post(bridge.url, refreshed, list, session)).status, 200, 'a new token of the same subject');
    const bob = await provider.token('bob', bridge.url);
    assert.equal((await post(bridge.url, bob, list, session)).status, 404, 'another subject');
  }));

  test('a rotated signing key is picked up without a restart', withBridgeLog(() => bridge, async () => {
    const before = await provider.token('alice', bridge.url);
    assert.equal(header(before).kid, key.kid);
    // The same authorization server, restarted with a new key first (it signs with it) and
    // the old one still published.
    await provider.stop();
    const rotated = newKey();
    provider = await startProvider({ keys: [rotated, key], port: provider.port });
    const after = await provider.token('alice', bridge.url);
    assert.equal(header(after).kid, rotated.kid);
    assert.equal((await post(bridge.url, after, INIT)).status, 200, 'a token signed with the new key');
    assert.equal((await post(bridge.url, before, INIT)).status, 200, 'the old key is still published');
  }));
});

describe('OAuth: one child per user (--isolation user, --claim-env)', () => {
  let provider;
  let bridge;
  before(async () => {
    provider = await startProvider();
    bridge = await startBridge([fixtureBin], {
      args: ['--oauth-issuer', provider.issuer, '--isolation', 'user', '--claim-env', 'client_id=OAUTH_CLIENT_ID'],
    });
  });
  after(async () => {
    await bridge?.stop();
    await provider?.stop();
  });

  test("each subject gets a child of its own, with its claim in the child's environment", withBridgeLog(() => bridge, async () => {
    const seen = [];
    for (const who of ['alice', 'alice', 'bob']) {
      const { client } = await signedIn(bridge.url, provider.issuer, who);
      const pid = text(await client.callTool({ name: 'pid', arguments: {} }));
      const env = text(await client.callTool({ name: 'env', arguments: { name: 'OAUTH_CLIENT_ID' } }));
      const auth = text(await client.callTool({ name: 'env', arguments: { name: 'AUTHORIZATION' } }));
      assert.equal(auth, '', 'no token reaches the child');
      seen.push({ who, pid, env });
      await client.close();
    }
    assert.deepEqual(seen.map((s) => s.env), ['alice', 'alice', 'bob']);
    assert.equal(seen[0].pid, seen[1].pid, "alice's sessions share her child");
    assert.notEqual(seen[0].pid, seen[2].pid, 'bob has a child of his own');
    const health = await bridge.health();
    assert.equal(health.children.isolation, 'user');
  }));
});

describe('OAuth: opaque tokens checked by introspection (--oauth-introspection)', () => {
  let provider;
  let bridge;
  before(async () => {
    provider = await startProvider();
    // The bridge takes its client secret from the environment only.
    process.env.MCP_HTTP_BRIDGE_OAUTH_CLIENT_SECRET = INTROSPECTION_CLIENT.secret;
    try {
      bridge = await startBridge([fixtureBin], {
        args: ['--oauth-issuer', provider.issuer, '--oauth-scope', 'mcp:tools',
          '--oauth-introspection', `${provider.issuer}/token/introspection`,
          '--oauth-client-id', INTROSPECTION_CLIENT.id],
      });
    } finally {
      delete process.env.MCP_HTTP_BRIDGE_OAUTH_CLIENT_SECRET;
    }
  });
  after(async () => {
    await bridge?.stop();
    await provider?.stop();
  });

  test('the SDK client signs in with an opaque token and calls a tool', withBridgeLog(() => bridge, async () => {
    const { client, authProvider } = await signedIn(bridge.url, provider.issuer, 'carol');
    assert.notEqual(authProvider.tokens().access_token.split('.').length, 3, 'an opaque token');
    const result = await client.callTool({ name: 'echo', arguments: { text: 'opaque' } });
    assert.equal(text(result), 'opaque');
    await client.close();
  }));

  test('opaque tokens for another resource, or unknown ones, are refused', withBridgeLog(() => bridge, async () => {
    const foreign = await provider.token('carol', 'https://other.example.com/mcp');
    assert.equal((await post(bridge.url, foreign, INIT)).status, 401);
    assert.equal((await post(bridge.url, 'made-up-opaque-token', INIT)).status, 401);
    const jwt = await provider.token('alice', bridge.url);
    assert.equal((await post(bridge.url, jwt, INIT)).status, 200, 'JWTs are still checked locally');
  }));
});

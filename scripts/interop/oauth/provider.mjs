// A real OAuth 2.1 authorization server for the tests: oidc-provider on 127.0.0.1, issuing JWT
// access tokens through the client_credentials grant for whatever resource a client names
// (RFC 8707 resource indicators), with the token's audience set to that resource.
import http from 'node:http';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import Provider from 'oidc-provider';

/** Scopes the resource servers grant (the bridge under test requires `mcp:tools`). */
export const SCOPES = 'mcp:tools notes:read';

/** Test clients: each one's id is also the subject of its tokens. */
export const CLIENTS = {
  alice: { secret: 'alice-secret-0123456789', scope: 'mcp:tools' },
  bob: { secret: 'bob-secret-0123456789', scope: 'mcp:tools' },
  // May not have `mcp:tools`: its tokens are valid but lack the scope.
  reader: { secret: 'reader-secret-0123456789', scope: 'notes:read' },
  // Gets opaque access tokens, which the bridge can only check by introspection.
  carol: { secret: 'carol-secret-0123456789', scope: 'mcp:tools', opaque: true },
};

/** The bridge's own client, for token introspection (it gets no tokens). */
export const INTROSPECTION_CLIENT = { id: 'bridge', secret: 'bridge-secret-0123456789' };

/** A fresh RS256 signing key as a private JWK with a unique kid. */
export function newKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg: 'RS256', use: 'sig' };
}

function configuration(keys) {
  return {
    clients: [
      ...Object.entries(CLIENTS).map(([id, c]) => ({
        client_id: id,
        client_secret: c.secret,
        grant_types: ['client_credentials'],
        redirect_uris: [],
        response_types: [],
        scope: c.scope,
      })),
      {
        client_id: INTROSPECTION_CLIENT.id,
        client_secret: INTROSPECTION_CLIENT.secret,
        grant_types: [],
        redirect_uris: [],
        response_types: [],
      },
    ],
    scopes: ['openid', ...SCOPES.split(' ')],
    jwks: { keys },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => undefined,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, resource, client) => ({
          scope: SCOPES,
          audience: resource,
          accessTokenTTL: 300,
          ...(CLIENTS[client.clientId]?.opaque
            ? { accessTokenFormat: 'opaque' }
            : { accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } }),
        }),
      },
    },
  };
}

/**
 * Starts the server (on `port`, or a free one) signing with the first of `keys` and publishing
 * all of them. Resolves to { issuer, port, token(), stop() }.
 */
export async function startProvider({ keys = [newKey()], port = 0 } = {}) {
  const server = http.createServer();
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const bound = server.address().port;
  const issuer = `http://127.0.0.1:${bound}`;
  const provider = new Provider(issuer, configuration(keys));
  const handle = provider.callback();
  // One request per connection: a client's pooled connection never outlives a restart.
  server.on('request', (req, res) => {
    res.setHeader('connection', 'close');
    handle(req, res);
  });
  return {
    issuer,
    port: bound,
    /** An access token of `client` for `resource`, or the token endpoint's error. */
    async token(client, resource, scope = 'mcp:tools') {
      const body = new URLSearchParams({ grant_type: 'client_credentials', resource, scope });
      const basic = Buffer.from(`${client}:${CLIENTS[client].secret}`).toString('base64');
      const response = await fetch(`${issuer}/token`, {
        method: 'POST',
        headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
        body,
      });
      const json = await response.json();
      if (!response.ok) throw new Error(`token endpoint: ${response.status} ${JSON.stringify(json)}`);
      return json.access_token;
    },
    stop: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

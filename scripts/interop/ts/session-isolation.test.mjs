// The same flows with one child per session (--isolation session) and with a pool of shared
// children (--pool 3): what the bridge promises must hold whatever serves a session.
import { describe } from 'node:test';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { defineFlows } from './flows.mjs';

const transport = (bridge) => new StreamableHTTPClientTransport(new URL(bridge.url));

describe('TS SDK over Streamable HTTP, one child per session', () => {
  defineFlows(transport, { bridgeArgs: ['--isolation', 'session'] });
});

describe('TS SDK over Streamable HTTP, a pool of three shared children', () => {
  defineFlows(transport, { bridgeArgs: ['--pool', '3'] });
});

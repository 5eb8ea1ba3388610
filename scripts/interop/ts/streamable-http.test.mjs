// The official TypeScript SDK client against the bridge's Streamable HTTP endpoint (/mcp).
import { describe } from 'node:test';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { defineFlows } from './flows.mjs';

describe('TS SDK over Streamable HTTP', () => {
  defineFlows((bridge) => new StreamableHTTPClientTransport(new URL(bridge.url)));
});

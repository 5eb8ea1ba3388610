// The official TypeScript SDK client against the bridge's legacy HTTP+SSE transport (/sse + /message).
// Set INTEROP_SSE=0 to skip.
import { describe } from 'node:test';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { defineFlows } from './flows.mjs';

const skip = process.env.INTEROP_SSE === '0' && 'legacy SSE tests switched off (INTEROP_SSE=0)';

describe('TS SDK over legacy HTTP+SSE', { skip }, () => {
  defineFlows((bridge) => new SSEClientTransport(new URL('/sse', bridge.url)));
});

#!/usr/bin/env node
// A stdio MCP server (newline-delimited JSON-RPC, no dependencies) offering exactly what the
// active server scenarios of @modelcontextprotocol/conformance ask for. The bridge fronts it:
//   mcp-http-bridge --port 0 -- node conformance-server.mjs
// Each scenario's "Server Implementation Requirements" text is quoted next to what serves it.
import { createInterface } from 'node:readline';

const PROTOCOL_VERSIONS = ['2024-11-05', '2025-03-26', '2025-06-18', '2025-11-25'];
const LEVELS = ['debug', 'info', 'notice', 'warning', 'error', 'critical', 'alert', 'emergency'];
// A 1x1 red PNG, and a WAV of 8 silent 8 kHz 8-bit samples.
const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==';
const WAV = (() => {
  const samples = Buffer.alloc(8, 0x80);
  const h = Buffer.alloc(44);
  h.write('RIFF', 0); h.writeUInt32LE(36 + samples.length, 4); h.write('WAVE', 8);
  h.write('fmt ', 12); h.writeUInt32LE(16, 16); h.writeUInt16LE(1, 20); h.writeUInt16LE(1, 22);
  h.writeUInt32LE(8000, 24); h.writeUInt32LE(8000, 28); h.writeUInt16LE(1, 32); h.writeUInt16LE(8, 34);
  h.write('data', 36); h.writeUInt32LE(samples.length, 40);
  return Buffer.concat([h, samples]).toString('base64');
})();

let clientCapabilities = {};
let minLevel = null; // null: no logging/setLevel yet, send everything
const subscriptions = new Set();
const pending = new Map(); // id of our request to the client -> {resolve, reject}
let nextId = 1;

const send = (msg) => process.stdout.write(JSON.stringify({ jsonrpc: '2.0', ...msg }) + '\n');
const notify = (method, params) => send({ method, params });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const text = (t) => ({ type: 'text', text: t });
const noArgs = { type: 'object', properties: {} };

function requestClient(method, params) {
  const id = `srv-${nextId++}`;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    send({ id, method, params });
  });
}

function log(level, data) {
  if (minLevel === null || LEVELS.indexOf(level) >= LEVELS.indexOf(minLevel)) {
    notify('notifications/message', { level, logger: 'conformance-server', data });
  }
}

class RpcError extends Error {
  constructor(code, message) { super(message); this.code = code; }
}

// tools-call-elicitation asks for these two fields; sep1034 and sep1330 ask for the schemas below.
const SEP1034_SCHEMA = {
  type: 'object',
  properties: {
    name: { type: 'string', description: 'User name', default: 'John Doe' },
    age: { type: 'integer', description: 'User age', default: 30 },
    score: { type: 'number', description: 'User score', default: 95.5 },
    status: { type: 'string', description: 'User status', enum: ['active', 'inactive', 'pending'], default: 'active' },
    verified: { type: 'boolean', description: 'Verification status', default: true },
  },
};
const SEP1330_SCHEMA = {
  type: 'object',
  properties: {
    untitledSingle: { type: 'string', enum: ['option1', 'option2', 'option3'] },
    titledSingle: {
      type: 'string',
      oneOf: [
        { const: 'value1', title: 'First Option' },
        { const: 'value2', title: 'Second Option' },
        { const: 'value3', title: 'Third Option' },
      ],
    },
    legacyEnum: { type: 'string', enum: ['opt1', 'opt2', 'opt3'], enumNames: ['Option One', 'Option Two', 'Option Three'] },
    untitledMulti: { type: 'array', items: { type: 'string', enum: ['option1', 'option2', 'option3'] } },
    titledMulti: {
      type: 'array',
      items: {
        anyOf: [
          { const: 'value1', title: 'First Choice' },
          { const: 'value2', title: 'Second Choice' },
          { const: 'value3', title: 'Third Choice' },
        ],
      },
    },
  },
};

async function elicit(message, requestedSchema) {
  if (!clientCapabilities.elicitation) throw new Error('client does not support elicitation');
  return requestClient('elicitation/create', { message, requestedSchema });
}

const TOOLS = {
  test_simple_text: {
    description: 'Returns simple text',
    run: async () => ({ content: [text('This is a simple text response for testing.')] }),
  },
  test_image_content: {
    description: 'Returns an image',
    run: async () => ({ content: [{ type: 'image', data: PNG, mimeType: 'image/png' }] }),
  },
  test_audio_content: {
    description: 'Returns audio',
    run: async () => ({ content: [{ type: 'audio', data: WAV, mimeType: 'audio/wav' }] }),
  },
  test_embedded_resource: {
    description: 'Returns an embedded resource',
    run: async () => ({
      content: [{
        type: 'resource',
        resource: { uri: 'test://embedded-resource', mimeType: 'text/plain', text: 'This is an embedded resource content.' },
      }],
    }),
  },
  test_multiple_content_types: {
    description: 'Returns text, image and resource content',
    run: async () => ({
      content: [
        text('Multiple content types test:'),
        { type: 'image', data: PNG, mimeType: 'image/png' },
        {
          type: 'resource',
          resource: { uri: 'test://mixed-content-resource', mimeType: 'application/json', text: '{"test":"data","value":123}' },
        },
      ],
    }),
  },
  test_tool_with_logging: {
    description: 'Sends three info log messages while running',
    run: async () => {
      log('info', 'Tool execution started');
      await sleep(50);
      log('info', 'Tool processing data');
      await sleep(50);
      log('info', 'Tool execution completed');
      return { content: [text('Tool with logging executed successfully')] };
    },
  },
  test_tool_with_progress: {
    description: 'Reports progress 0, 50, 100 of 100',
    run: async (args, meta) => {
      const token = meta?.progressToken;
      for (const [i, progress] of [0, 50, 100].entries()) {
        if (i > 0) await sleep(50);
        if (token !== undefined) notify('notifications/progress', { progressToken: token, progress, total: 100 });
      }
      return { content: [text('Tool with progress executed successfully')] };
    },
  },
  test_error_handling: {
    description: 'Always fails',
    run: async () => ({ isError: true, content: [text('This tool intentionally returns an error for testing')] }),
  },
  test_sampling: {
    description: 'Asks the client for an LLM completion',
    inputSchema: { type: 'object', properties: { prompt: { type: 'string' } }, required: ['prompt'] },
    run: async ({ prompt }) => {
      if (!clientCapabilities.sampling) throw new Error('client does not support sampling');
      const reply = await requestClient('sampling/createMessage', {
        messages: [{ role: 'user', content: { type: 'text', text: prompt } }],
        maxTokens: 100,
      });
      return { content: [text(`LLM response: ${reply.content?.text ?? JSON.stringify(reply.content)}`)] };
    },
  },
  test_elicitation: {
    description: 'Asks the user for a username and email',
    inputSchema: { type: 'object', properties: { message: { type: 'string' } }, required: ['message'] },
    run: async ({ message }) => {
      const reply = await elicit(message, {
        type: 'object',
        properties: {
          username: { type: 'string', description: "User's response" },
          email: { type: 'string', description: "User's email address" },
        },
        required: ['username', 'email'],
      });
      return { content: [text(`User response: action=${reply.action}, content=${JSON.stringify(reply.content ?? {})}`)] };
    },
  },
  test_elicitation_sep1034_defaults: {
    description: 'Elicitation with defaults for every primitive type',
    run: async () => {
      const r = await elicit('Please review your information (defaults provided)', SEP1034_SCHEMA);
      return { content: [text(`Elicitation completed: action=${r.action}, content=${JSON.stringify(r.content ?? {})}`)] };
    },
  },
  test_elicitation_sep1330_enums: {
    description: 'Elicitation with every enum schema variant',
    run: async () => {
      const r = await elicit('Please pick some options', SEP1330_SCHEMA);
      return { content: [text(`Elicitation completed: action=${r.action}, content=${JSON.stringify(r.content ?? {})}`)] };
    },
  },
};

const RESOURCES = {
  'test://static-text': {
    name: 'static-text', description: 'A static text resource', mimeType: 'text/plain',
    text: 'This is the content of the static text resource.',
  },
  'test://static-binary': {
    name: 'static-binary', description: 'A static binary resource (PNG)', mimeType: 'image/png', blob: PNG,
  },
  'test://watched-resource': {
    name: 'watched-resource', description: 'A resource clients can subscribe to', mimeType: 'text/plain',
    text: 'Watched resource content.',
  },
};
const TEMPLATE = /^test:\/\/template\/([^/]+)\/data$/;

const PROMPTS = {
  test_simple_prompt: {
    description: 'A prompt without arguments',
    get: () => [{ role: 'user', content: text('This is a simple prompt for testing.') }],
  },
  test_prompt_with_arguments: {
    description: 'A prompt with two required arguments',
    arguments: [
      { name: 'arg1', description: 'First test argument', required: true },
      { name: 'arg2', description: 'Second test argument', required: true },
    ],
    get: (a) => [{ role: 'user', content: text(`Prompt with arguments: arg1='${a.arg1}', arg2='${a.arg2}'`) }],
  },
  test_prompt_with_embedded_resource: {
    description: 'A prompt embedding a resource',
    arguments: [{ name: 'resourceUri', description: 'URI of the resource to embed', required: true }],
    get: (a) => [
      {
        role: 'user',
        content: { type: 'resource', resource: { uri: a.resourceUri, mimeType: 'text/plain', text: 'Embedded resource content for testing.' } },
      },
      { role: 'user', content: text('Please process the embedded resource above.') },
    ],
  },
  test_prompt_with_image: {
    description: 'A prompt with an image',
    get: () => [
      { role: 'user', content: { type: 'image', data: PNG, mimeType: 'image/png' } },
      { role: 'user', content: text('Please analyze the image above.') },
    ],
  },
};
const COMPLETIONS = ['paris', 'park', 'party', 'test', 'testing', 'tested'];

const HANDLERS = {
  initialize: (p) => {
    clientCapabilities = p?.capabilities ?? {};
    return {
      protocolVersion: PROTOCOL_VERSIONS.includes(p?.protocolVersion) ? p.protocolVersion : '2025-11-25',
      capabilities: {
        tools: {}, prompts: {}, resources: { subscribe: true }, logging: {}, completions: {},
      },
      serverInfo: { name: 'conformance-server', version: '1.0.0' },
    };
  },
  ping: () => ({}),
  'logging/setLevel': (p) => {
    if (!LEVELS.includes(p?.level)) throw new RpcError(-32602, `unknown level ${p?.level}`);
    minLevel = p.level;
    return {};
  },
  'tools/list': () => ({
    tools: Object.entries(TOOLS).map(([name, t]) => ({ name, description: t.description, inputSchema: t.inputSchema ?? noArgs })),
  }),
  'tools/call': async (p) => {
    const tool = TOOLS[p?.name];
    if (!tool) throw new RpcError(-32602, `Unknown tool: ${p?.name}`);
    try {
      return await tool.run(p.arguments ?? {}, p._meta);
    } catch (e) {
      return { isError: true, content: [text(String(e.message ?? e))] };
    }
  },
  'resources/list': () => ({
    resources: Object.entries(RESOURCES).map(([uri, r]) => ({ uri, name: r.name, description: r.description, mimeType: r.mimeType })),
  }),
  'resources/templates/list': () => ({
    resourceTemplates: [{
      uriTemplate: 'test://template/{id}/data', name: 'template-data',
      description: 'Data for an id', mimeType: 'application/json',
    }],
  }),
  'resources/read': (p) => {
    const r = RESOURCES[p?.uri];
    if (r) {
      const body = r.blob ? { blob: r.blob } : { text: r.text };
      return { contents: [{ uri: p.uri, mimeType: r.mimeType, ...body }] };
    }
    const m = TEMPLATE.exec(p?.uri ?? '');
    if (m) {
      const id = decodeURIComponent(m[1]);
      return {
        contents: [{ uri: p.uri, mimeType: 'application/json', text: JSON.stringify({ id, templateTest: true, data: `Data for ID: ${id}` }) }],
      };
    }
    throw new RpcError(-32002, `Resource not found: ${p?.uri}`);
  },
  'resources/subscribe': (p) => { subscriptions.add(p?.uri); return {}; },
  'resources/unsubscribe': (p) => { subscriptions.delete(p?.uri); return {}; },
  'prompts/list': () => ({
    prompts: Object.entries(PROMPTS).map(([name, p]) => ({ name, description: p.description, arguments: p.arguments ?? [] })),
  }),
  'prompts/get': (p) => {
    const prompt = PROMPTS[p?.name];
    if (!prompt) throw new RpcError(-32602, `Unknown prompt: ${p?.name}`);
    const args = p.arguments ?? {};
    for (const a of prompt.arguments ?? []) {
      if (a.required && args[a.name] === undefined) throw new RpcError(-32602, `Missing argument: ${a.name}`);
    }
    return { description: prompt.description, messages: prompt.get(args) };
  },
  'completion/complete': (p) => {
    const prefix = String(p?.argument?.value ?? '');
    const values = COMPLETIONS.filter((v) => v.startsWith(prefix));
    return { completion: { values, total: values.length, hasMore: false } };
  },
};

async function handle(msg) {
  if (msg.method === undefined) { // a response to one of our requests
    const waiter = pending.get(msg.id);
    if (!waiter) return;
    pending.delete(msg.id);
    if (msg.error) waiter.reject(new Error(msg.error.message));
    else waiter.resolve(msg.result);
    return;
  }
  if (msg.id === undefined) return; // notifications: initialized, cancelled, roots changed
  const handler = HANDLERS[msg.method];
  if (!handler) return send({ id: msg.id, error: { code: -32601, message: `Method not found: ${msg.method}` } });
  try {
    send({ id: msg.id, result: await handler(msg.params) });
  } catch (e) {
    send({ id: msg.id, error: { code: e.code ?? -32603, message: String(e.message ?? e) } });
  }
}

createInterface({ input: process.stdin }).on('line', (line) => {
  if (!line.trim()) return;
  let msg;
  try {
    msg = JSON.parse(line);
  } catch {
    return send({ id: null, error: { code: -32700, message: 'Parse error' } });
  }
  for (const m of Array.isArray(msg) ? msg : [msg]) handle(m);
});

#!/usr/bin/env node
// A stdio MCP server of the session era (2024-11-05 … 2025-11-25; newline-delimited JSON-RPC,
// no dependencies) offering what the server scenarios of @modelcontextprotocol/conformance ask
// for. The bridge fronts it:
//   mcp-http-bridge --port 0 -- node conformance-server.mjs
// Each scenario's "Server Implementation Requirements" text is quoted next to what serves it.
// The 2026-07-28 scenarios reach it through the bridge's translation, so what they ask of a
// modern server is expressed here the way a session-era server can: an input request
// (`input_required`) is a server-to-client request made while the call runs, a list change is
// a list_changed notification, and per-request client capabilities are unknown (the bridge
// declared its clients' union at initialize).
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
  constructor(code, message, data) { super(message); this.code = code; this.data = data; }
}

/** -32021: the client lacks a capability the request needs (2026-07-28). */
const MISSING_CAPABILITY = -32021;

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

async function sample(prompt, maxTokens) {
  if (!clientCapabilities.sampling) throw new Error('client does not support sampling');
  return requestClient('sampling/createMessage', {
    messages: [{ role: 'user', content: { type: 'text', text: prompt } }],
    maxTokens,
  });
}

async function listRoots() {
  if (!clientCapabilities.roots) throw new Error('client does not support roots');
  return requestClient('roots/list', {});
}

/** A form asking for one field of JSON type `type`. */
const oneField = (field, type) => ({ type: 'object', properties: { [field]: { type } }, required: [field] });
/** The text of an accepted elicitation's `field`, or the action taken. */
const answered = (r, field) => (r?.action === 'accept' ? r.content?.[field] : `(${r?.action ?? 'no answer'})`);
const sampled = (r) => r?.content?.text ?? '(no text)';

// json-schema-2020-12: an input schema with 2020-12 keywords that must reach clients untouched.
const SCHEMA_2020_12 = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  type: 'object',
  $defs: {
    address: {
      $anchor: 'addressDef',
      type: 'object',
      properties: { street: { type: 'string' }, city: { type: 'string' } },
    },
  },
  properties: {
    name: { type: 'string' },
    address: { $ref: '#/$defs/address' },
    contactMethod: { type: 'string', enum: ['phone', 'email'] },
    phone: { type: 'string' },
    email: { type: 'string' },
  },
  allOf: [{ anyOf: [{ required: ['phone'] }, { required: ['email'] }] }],
  if: { properties: { contactMethod: { const: 'phone' } }, required: ['contactMethod'] },
  then: { required: ['phone'] },
  else: { required: ['email'] },
  additionalProperties: false,
};

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
  // json-schema-2020-12 (pending in both requirement sets): "Implement a tool named
  // json_schema_2020_12_tool" whose inputSchema uses $schema, $defs, $anchor, allOf/anyOf,
  // if/then/else and additionalProperties.
  json_schema_2020_12_tool: {
    description: 'Has an input schema that uses JSON Schema 2020-12 keywords',
    inputSchema: SCHEMA_2020_12,
    run: async (args) => ({ content: [text(`called with ${JSON.stringify(args)}`)] }),
  },

  // http-custom-header-server-validation (pending): a parameter mirrored into the
  // Mcp-Param-Region header. Only the HTTP server in front can check that header.
  test_header_param: {
    description: 'Echoes region, which clients mirror into Mcp-Param-Region',
    inputSchema: {
      type: 'object',
      properties: { region: { type: 'string', 'x-mcp-header': 'Region' }, query: { type: 'string' } },
      required: ['region'],
    },
    run: async (args) => ({ content: [text(`region ${args.region}`)] }),
  },

  // ---- 2026-07-28 server-stateless diagnostics, expressed for a session-era server ----
  // "test_missing_capability requiring explicit capabilities": it needs sampling. A modern
  // client that did not declare sampling must get -32021 (HTTP 400); here the tool just asks.
  test_missing_capability: {
    description: 'Needs the sampling client capability: asks the client for a completion',
    run: async () => {
      await sample('Reply with anything', 10);
      return { content: [text('Success: the client can sample')] };
    },
  },
  // "Request stream contains only IncompleteResult, never independent JSON-RPC requests": this
  // tool asks for elicitation while it runs, which a modern client must see as input_required.
  test_streaming_elicitation: {
    description: 'Reports progress, then asks the user to confirm (a server-to-client request)',
    run: async (args, meta) => {
      if (meta?.progressToken !== undefined) {
        notify('notifications/progress', { progressToken: meta.progressToken, progress: 1, total: 2 });
      }
      const r = await elicit('Continue streaming?', oneField('ok', 'boolean'));
      return { content: [text(`Streaming complete (ok=${answered(r, 'ok')})`)] };
    },
  },
  // "No notifications/message for requests that didn't set _meta.../logLevel": this tool logs
  // at info (a session-era server logs at the level logging/setLevel chose, or everything).
  test_logging_tool: {
    description: 'Logs one info message',
    run: async () => {
      log('info', 'Diagnostic trace logging activated');
      return { content: [text('Logging evaluated')] };
    },
  },
  // "List-changed-capable servers notify listen streams": the triggers send list_changed.
  test_trigger_tool_change: {
    description: 'Sends notifications/tools/list_changed',
    run: async () => {
      notify('notifications/tools/list_changed');
      return { content: [text('Mutation triggered')] };
    },
  },
  test_trigger_prompt_change: {
    description: 'Sends notifications/prompts/list_changed',
    run: async () => {
      notify('notifications/prompts/list_changed');
      return { content: [text('Mutation triggered')] };
    },
  },

  // ---- 2026-07-28 input-required-result-* scenarios: the inputs are server requests ----
  test_input_required_result_elicitation: {
    description: 'Asks the user for a name (elicitation), then greets',
    run: async () => {
      const r = await elicit('What is your name?', oneField('name', 'string'));
      return { content: [text(`Hello, ${answered(r, 'name')}!`)] };
    },
  },
  test_input_required_result_sampling: {
    description: 'Asks the client to sample an answer, then returns it',
    run: async () => {
      const r = await sample('What is the capital of France?', 100);
      return { content: [text(`Sampling result: ${sampled(r)}`)] };
    },
  },
  test_input_required_result_list_roots: {
    description: "Asks the client for its roots, then counts them",
    run: async () => {
      const r = await listRoots();
      return { content: [text(`Found ${r?.roots?.length ?? 0} root(s)`)] };
    },
  },
  // "The text content MUST include the word state-ok": a session-era server keeps its state in
  // the running call; the requestState a modern client sees is the bridge's.
  test_input_required_result_request_state: {
    description: 'Asks the user to confirm, then reports state-ok',
    run: async () => {
      const r = await elicit('Please confirm', oneField('ok', 'boolean'));
      return { content: [text(`state-ok: requestState validated (ok=${answered(r, 'ok')})`)] };
    },
  },
  test_input_required_result_tampered_state: {
    description: 'Asks the user to confirm; the state a modern client sees is the bridge\'s to protect',
    run: async () => {
      await elicit('Please confirm', oneField('ok', 'boolean'));
      return { content: [text('integrity-ok: state verified')] };
    },
  },
  // "multiple inputRequests — elicitation, sampling, and roots/list": three concurrent
  // server requests.
  test_input_required_result_multiple_inputs: {
    description: 'Asks for a name, a sampled greeting and the roots at once',
    run: async () => {
      const [name, greeting, roots] = await Promise.all([
        elicit('What is your name?', oneField('name', 'string')),
        sample('Generate a greeting', 50),
        listRoots(),
      ]);
      const n = roots?.roots?.length ?? 0;
      return { content: [text(`Name: ${answered(name, 'name')}; Greeting: ${sampled(greeting)}; Roots: ${n}`)] };
    },
  },
  // Two rounds: one request after the other.
  test_input_required_result_multi_round: {
    description: 'Asks for a name, then for a colour',
    run: async () => {
      const name = await elicit('Step 1: What is your name?', oneField('name', 'string'));
      const color = await elicit('Step 2: What is your favorite color?', oneField('color', 'string'));
      return { content: [text(`Multi-round complete for ${answered(name, 'name')} who likes ${answered(color, 'color')}`)] };
    },
  },
  // "Only include inputRequests for methods the client supports": a session-era server knows
  // only the capabilities declared at initialize (the bridge's union), so it asks for both and
  // keeps what it got; a request the client cannot take must be refused by the bridge.
  test_input_required_result_capabilities: {
    description: 'Asks for an elicitation and a sample, and reports which were answered',
    run: async () => {
      const asked = await Promise.allSettled([
        elicit('Elicitation input', oneField('value', 'string')),
        sample('Sample request', 50),
      ]);
      const got = ['elicit_input', 'sample_input'].filter((_, i) => asked[i].status === 'fulfilled');
      return { content: [text(got.length ? `capabilities-ok: received ${got.join(',')}` : 'No supported capabilities declared')] };
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
  // input-required-result-non-tool-request: prompts/get asks for elicitation while it runs.
  test_input_required_result_prompt: {
    description: 'A prompt that asks the user for context',
    get: async () => {
      const r = await elicit('What context should the prompt use?', oneField('context', 'string'));
      return [{ role: 'user', content: text(`Prompt with context: ${answered(r, 'context')}`) }];
    },
  },
};
const COMPLETIONS = ['paris', 'park', 'party', 'test', 'testing', 'tested'];

const HANDLERS = {
  initialize: (p) => {
    clientCapabilities = p?.capabilities ?? {};
    return {
      protocolVersion: PROTOCOL_VERSIONS.includes(p?.protocolVersion) ? p.protocolVersion : '2025-11-25',
      capabilities: {
        tools: { listChanged: true }, prompts: { listChanged: true }, resources: { subscribe: true },
        logging: {}, completions: {},
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
      // A client without a capability the tool needs: the request fails with that error.
      if (e.code === MISSING_CAPABILITY) throw e;
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
    throw new RpcError(-32002, `Resource not found: ${p?.uri}`, { uri: p?.uri });
  },
  'resources/subscribe': (p) => { subscriptions.add(p?.uri); return {}; },
  'resources/unsubscribe': (p) => { subscriptions.delete(p?.uri); return {}; },
  'prompts/list': () => ({
    prompts: Object.entries(PROMPTS).map(([name, p]) => ({ name, description: p.description, arguments: p.arguments ?? [] })),
  }),
  'prompts/get': async (p) => {
    const prompt = PROMPTS[p?.name];
    if (!prompt) throw new RpcError(-32602, `Unknown prompt: ${p?.name}`);
    const args = p.arguments ?? {};
    for (const a of prompt.arguments ?? []) {
      if (a.required && args[a.name] === undefined) throw new RpcError(-32602, `Missing argument: ${a.name}`);
    }
    return { description: prompt.description, messages: await prompt.get(args) };
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
    if (msg.error) waiter.reject(new RpcError(msg.error.code, msg.error.message, msg.error.data));
    else waiter.resolve(msg.result);
    return;
  }
  if (msg.id === undefined) return; // notifications: initialized, cancelled, roots changed
  const handler = HANDLERS[msg.method];
  if (!handler) return send({ id: msg.id, error: { code: -32601, message: `Method not found: ${msg.method}` } });
  try {
    send({ id: msg.id, result: await handler(msg.params) });
  } catch (e) {
    const error = { code: e.code ?? -32603, message: String(e.message ?? e) };
    if (e.data !== undefined) error.data = e.data;
    send({ id: msg.id, error });
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

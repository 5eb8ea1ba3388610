// Clients of the scale-out test, all the official TypeScript SDK 2.x (@modelcontextprotocol/client):
//   SessionClient 'streamable'  Streamable HTTP, versionNegotiation legacy (initialize, Mcp-Session-Id)
//   SessionClient 'sse'         legacy HTTP+SSE (SSEClientTransport: GET /sse, POST /message?sessionId=)
//   ModernClient                2026-07-28 pinned: stateless, server/discover, Mcp-Method/Mcp-Name headers
// Every client runs a loop of tool calls through the load balancer and checks each answer is its
// own: `echo` of a payload no other client sends, and `env INSTANCE` (the fixture's environment,
// set per instance with `-e INSTANCE=ID`), which must name the instance its session id says it is
// on. On any error it records what happened (when, on which session), drops the client and opens
// a new session, the way an application would.
import { Client, SSEClientTransport, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { delay } from './cluster.mjs';

/** What a failed call reports: the error's message, and for a network failure (fetch's
 *  "fetch failed") the socket-level cause, e.g. UND_ERR_SOCKET "other side closed". */
const failure = (e) => {
  const cause = e?.cause ? `${e.cause.code ?? ''} ${e.cause.message ?? ''}`.trim() : undefined;
  return cause ? { message: String(e?.message ?? e), cause } : { message: String(e?.message ?? e) };
};

const MODERN = '2026-07-28';
const CALL_TIMEOUT_MS = 10_000; // far above any call here (the longest sleeps 3 s)
export const prefixOf = (sid) => (typeof sid === 'string' && sid.includes('.') ? sid.slice(0, sid.indexOf('.')) : undefined);

function textOf(result) {
  if (result.isError) throw new Error(`tool reported an error: ${JSON.stringify(result)}`);
  return result.content.find((c) => c.type === 'text')?.text;
}

/** What a body of a fetch() the SDK makes says: the JSON-RPC message(s) it carries. */
function messagesOf(init) {
  if (typeof init?.body !== 'string') return [];
  try { const b = JSON.parse(init.body); return Array.isArray(b) ? b : [b]; } catch { return []; }
}

/** A session-era client that reconnects whenever its session fails. */
export class SessionClient {
  constructor(name, kind, lbUrl, { paceMs = [30, 80] } = {}) {
    Object.assign(this, { name, kind, lbUrl, paceMs });
    this.client = undefined;
    this.sid = undefined;
    this.sessions = []; // { sid, instance, openedAt, okCalls }
    this.errors = []; // { where, at, startedAt, sid, instance, message }
    this.violations = []; // answers that were not this client's own (must stay empty)
    this.okCalls = 0;
    this.seq = 0;
    this.wantLong = 0; // ms of one long `echo` the controller asks for (0: none)
    this.long = undefined; // { sid, startedAt, acceptedAt, completedAt, ok, error }
    this.postSid = undefined; // the session the latest POST went to
  }

  get instance() { return prefixOf(this.sid); }
  get current() { return this.sessions.at(-1); }

  /** fetch() for the SDK: notes the session every POST carries (Mcp-Session-Id, or the
   *  sessionId of the legacy endpoint URL) and when the bridge accepted the long call. */
  fetch = async (url, init = {}) => {
    const post = init.method === 'POST';
    if (post) {
      const headers = new Headers(init.headers);
      this.postSid = headers.get('mcp-session-id') ?? new URL(url).searchParams.get('sessionId') ?? undefined;
    }
    const response = await fetch(url, init);
    if (post && response.ok && this.long && !this.long.acceptedAt
        && messagesOf(init).some((m) => m.method === 'tools/call' && m.params?.arguments?.ms)) {
      this.long.acceptedAt = Date.now(); // 202 (SSE) or the stream's headers (Streamable HTTP)
    }
    return response;
  };

  async connect() {
    const client = new Client({ name: `scaleout-${this.name}`, version: '1.0.0' }, { capabilities: {}, versionNegotiation: { mode: 'legacy' } });
    const transport = this.kind === 'sse'
      ? new SSEClientTransport(new URL('/sse', this.lbUrl), { fetch: this.fetch })
      : new StreamableHTTPClientTransport(new URL('/mcp', this.lbUrl), { fetch: this.fetch });
    // Transport trouble outside a call (the SSE stream or the standalone GET stream broke): note
    // it and start over, as the session is gone. The legacy SSE transport would otherwise let
    // its EventSource reconnect and silently pick up a NEW session's endpoint.
    client.onerror = (e) => {
      if (this.client !== client) return;
      this.errors.push({ where: 'transport', at: Date.now(), sid: this.sid, instance: this.instance, ...failure(e) });
      this.reset();
    };
    this.postSid = undefined;
    let sid;
    try {
      await client.connect(transport);
      sid = this.kind === 'sse' ? this.postSid : transport.sessionId;
      if (!prefixOf(sid)) throw new Error(`${this.name}: no instance-prefixed session id after connect (got ${JSON.stringify(sid)})`);
    } catch (e) {
      client.close().catch(() => {}); // or its event stream would live on, reconnecting
      throw e;
    }
    this.client = client;
    this.sid = sid;
    this.sessions.push({ sid, instance: prefixOf(sid), openedAt: Date.now(), okCalls: 0 });
  }

  reset() {
    const client = this.client;
    this.client = undefined;
    this.sid = undefined;
    client?.close().catch(() => {});
  }

  /** One call: `env INSTANCE` every third, else `echo` of a payload unique to this client. */
  async callOnce(longMs = 0) {
    const sid = this.sid;
    const client = this.client;
    const startedAt = Date.now();
    const n = ++this.seq;
    const env = !longMs && n % 3 === 0;
    const payload = `${this.name}#${n}:${Math.random().toString(36).slice(2)}`;
    if (longMs) this.long = { sid, instance: prefixOf(sid), startedAt, ms: longMs };
    try {
      const result = await client.callTool(
        env ? { name: 'env', arguments: { name: 'INSTANCE' } } : { name: 'echo', arguments: { text: payload, ...(longMs ? { ms: longMs } : {}) } },
        { timeout: CALL_TIMEOUT_MS },
      );
      const text = textOf(result);
      if (this.postSid !== sid) this.violations.push(`${this.name}: call ${n} went to session ${this.postSid}, not its own ${sid}`);
      if (env && text !== prefixOf(sid)) this.violations.push(`${this.name}: session ${sid} (instance ${prefixOf(sid)}) was served by INSTANCE=${text}`);
      if (!env && text !== payload) this.violations.push(`${this.name}: echo ${JSON.stringify(payload)} came back as ${JSON.stringify(text)}`);
      this.okCalls++;
      if (this.current?.sid === sid) { this.current.okCalls++; this.current.lastOkAt = Date.now(); }
      if (longMs) Object.assign(this.long, { ok: true, completedAt: Date.now() });
    } catch (e) {
      if (this.client !== client && !longMs) return; // dropped meanwhile (already recorded)
      this.errors.push({ where: longMs ? 'long call' : 'call', at: Date.now(), startedAt, sid, instance: prefixOf(sid), ...failure(e) });
      if (longMs) Object.assign(this.long, { ok: false, completedAt: Date.now(), error: String(e?.message ?? e) });
      if (this.client === client) this.reset();
    }
  }

  /** Calls until `ctl.stopping`; reconnects after any failure. */
  async run(ctl) {
    while (!ctl.stopping) {
      if (!this.client) {
        const startedAt = Date.now();
        try { await this.connect(); } catch (e) {
          this.errors.push({ where: 'connect', at: Date.now(), startedAt, ...failure(e) });
          await delay(100);
          continue;
        }
      }
      const longMs = this.wantLong;
      this.wantLong = 0;
      await this.callOnce(longMs);
      const [lo, hi] = this.paceMs;
      await delay(lo + Math.random() * (hi - lo)); // pacing, not waiting for anything
    }
    const client = this.client;
    this.client = undefined;
    if (client) await client.close().catch(() => {});
  }

  /** A short life for a client opened during the drain: connect, echo, env, close. */
  async once() {
    await this.connect();
    await this.callOnce(); // echo
    this.seq = 2;
    await this.callOnce(); // env (n = 3)
    const client = this.client;
    this.client = undefined; // its own close is no error
    await client?.close();
  }
}

/** A 2026-07-28 client: no session; asks `env INSTANCE` to learn which instance served it. */
export class ModernClient {
  constructor(name, lbUrl, { paceMs = [30, 80], elicitation = false } = {}) {
    Object.assign(this, { name, lbUrl, paceMs, elicitation });
    this.served = []; // { at, instance }
    this.errors = [];
    this.violations = [];
    this.posts = []; // { method, mcpMethod, mcpName, requestState }
    this.okCalls = 0;
  }

  fetch = async (url, init = {}) => {
    if (init.method === 'POST') {
      const headers = new Headers(init.headers);
      for (const m of messagesOf(init)) {
        if (m.method) this.posts.push({ method: m.method, mcpMethod: headers.get('mcp-method'), mcpName: headers.get('mcp-name'), requestState: m.params?.requestState });
      }
    }
    return fetch(url, init);
  };

  async connect() {
    this.client = new Client(
      { name: `scaleout-${this.name}`, version: '1.0.0' },
      { capabilities: this.elicitation ? { elicitation: {} } : {}, versionNegotiation: { mode: { pin: MODERN } } },
    );
    if (this.elicitation) {
      this.client.setRequestHandler('elicitation/create', async (request) => ({ action: 'accept', content: { name: `${this.name}:${request.params.message}` } }));
    }
    await this.client.connect(new StreamableHTTPClientTransport(new URL('/mcp', this.lbUrl), { fetch: this.fetch }));
    if (this.client.getProtocolEra() !== 'modern') throw new Error(`${this.name}: expected the modern era, got ${this.client.getProtocolEra()}`);
  }

  async run(ctl) {
    await this.connect();
    while (!ctl.stopping) {
      const startedAt = Date.now();
      try {
        const instance = textOf(await this.client.callTool({ name: 'env', arguments: { name: 'INSTANCE' } }, { timeout: CALL_TIMEOUT_MS }));
        if (!/^b\d$/.test(instance ?? '')) this.violations.push(`${this.name}: env INSTANCE answered ${JSON.stringify(instance)}`);
        this.served.push({ at: Date.now(), startedAt, instance });
        this.okCalls++;
      } catch (e) {
        this.errors.push({ where: 'call', at: Date.now(), startedAt, ...failure(e) });
      }
      const [lo, hi] = this.paceMs;
      await delay(lo + Math.random() * (hi - lo));
    }
    await this.client.close().catch(() => {});
  }

  /** One `elicit` call (the legacy child asks elicitation/create mid-call; the bridge turns that
   *  into input_required with a requestState; the SDK answers and retries with it). */
  async elicit(message) {
    const before = this.posts.length;
    const reply = JSON.parse(textOf(await this.client.callTool({ name: 'elicit', arguments: { message } }, { timeout: CALL_TIMEOUT_MS })));
    const expected = { action: 'accept', content: { name: `${this.name}:${message}` } };
    if (JSON.stringify(reply) !== JSON.stringify(expected)) this.violations.push(`${this.name}: elicit answered ${JSON.stringify(reply)}, expected ${JSON.stringify(expected)}`);
    const retry = this.posts.slice(before).find((p) => p.method === 'tools/call' && p.requestState);
    return { state: retry?.requestState, mintedBy: prefixOf(retry?.requestState) };
  }
}

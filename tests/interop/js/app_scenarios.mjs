// @stomp/stompjs 7 in node over WebSocket (the `ws` package) against the application of
// tests/interop/interop_app.py served by `stomp-proto run`, one scenario per run:
//
//   node app_scenarios.mjs SCENARIO '{"url": "ws://127.0.0.1:PORT/ws", "users": {...}, ...}'
//
// Configuration (JSON, second argument): url, users (login -> passcode: alice and bob),
// name (unique per run: tickers and rooms), timeoutMs (the whole run), quietMs (how long
// "nothing more arrives" is watched), plus what the scenario reads below.
//
// Prints exactly one JSON line on stdout: {"ok": true, ...what happened...} or
// {"ok": false, "error": ..., "log": [last debug lines]}; tests/interop/test_app_stompjs.py
// asserts on it. Debug output goes to stderr with STOMPJS_DEBUG set. The script always
// exits by itself: a timer ends it after timeoutMs whatever the server does.
//
// `events` records, in the order stompjs handed them over, every MESSAGE, RECEIPT and ERROR
// of every connection: that is how a test sees that a SEND's reply came before its RECEIPT.
//
// The helpers are those of scenarios.mjs, with a login per connection.

import { Client } from '@stomp/stompjs';
import WebSocket from 'ws';

const [scenarioName, rawConfig] = process.argv.slice(2);
const config = JSON.parse(rawConfig ?? '{}');
const timeoutMs = config.timeoutMs ?? 30000;
const quietMs = config.quietMs ?? 500;
const debugLines = [];
const clients = [];
const events = [];

function log(line) {
  debugLines.push(line.length > 300 ? `${line.slice(0, 300)}...` : line);
  if (debugLines.length > 200) debugLines.shift();
  if (process.env.STOMPJS_DEBUG) process.stderr.write(`${line}\n`);
}

function finish(result, code) {
  process.stdout.write(`${JSON.stringify(result)}\n`);
  // Sockets still open must not keep node alive.
  for (const c of clients) c.forceDisconnect?.();
  process.exit(code);
}

const deadline = setTimeout(() => {
  finish({ ok: false, error: `timeout after ${timeoutMs} ms`, events, log: debugLines.slice(-60) }, 3);
}, timeoutMs);

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function withTimeout(promise, ms, what) {
  let timer;
  const expired = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

function errorOf(frame) {
  return { headers: frame.headers, body: frame.body.slice(0, 500) };
}

// Opens a connection as `login`; resolves to {client, seen} once CONNECTED, or, with
// `expectError`, to {client, seen} once an ERROR came instead (seen.errors has it).
async function connect(tag, login, options = {}, { passcode, expectError = false } = {}) {
  const seen = { tag, login, connected: null, protocol: null, errors: [], closes: [], session: null };
  let socket = null;
  const client = new Client({
    webSocketFactory: () => {
      socket = new WebSocket(config.url, ['v12.stomp', 'v11.stomp', 'v10.stomp']);
      return socket;
    },
    connectHeaders: { login, passcode: passcode ?? config.users[login] },
    reconnectDelay: 0, // a lost connection is a failure here, never retried
    heartbeatIncoming: 0,
    heartbeatOutgoing: 0,
    debug: (line) => log(`[${tag}] ${line}`),
    ...options,
  });
  let closed;
  const closedOnce = new Promise((resolve) => {
    closed = resolve;
  });
  client.onWebSocketClose = (event) => {
    seen.closes.push({ code: event?.code ?? null, reason: event?.reason ?? '' });
    log(`[${tag}] WebSocket closed: ${event?.code} ${event?.reason ?? ''}`);
    closed();
  };
  clients.push(client);
  const connected = new Promise((resolve, reject) => {
    client.onConnect = (frame) => resolve(frame);
    client.onStompError = (frame) => {
      seen.errors.push(errorOf(frame));
      events.push({ tag, kind: 'ERROR', message: frame.headers.message ?? null });
      if (expectError) resolve(null);
      else reject(new Error(`[${tag}] ERROR ${frame.headers.message ?? ''} ${frame.body.slice(0, 200)}`));
    };
    client.onWebSocketError = () => {
      if (!expectError) reject(new Error(`[${tag}] WebSocket error`));
    };
  });
  client.activate();
  const frame = await withTimeout(connected, 10000, `[${tag}] CONNECTED`);
  seen.protocol = socket?.protocol ?? null;
  if (frame) {
    seen.connected = frame.headers;
    seen.session = frame.headers.session ?? null;
  }
  // From now on an ERROR is recorded, not a rejection of the connect promise.
  let errored;
  const erroredOnce = new Promise((resolve) => {
    errored = resolve;
  });
  client.onStompError = (f) => {
    seen.errors.push(errorOf(f));
    events.push({ tag, kind: 'ERROR', message: f.headers.message ?? null });
    log(`[${tag}] ERROR ${JSON.stringify(f.headers)} ${f.body.slice(0, 200)}`);
    errored();
  };
  return {
    client,
    seen,
    tag,
    closed: (ms = 10000) => withTimeout(closedOnce, ms, `[${tag}] WebSocket close`),
    errored: (ms = 10000) => withTimeout(erroredOnce, ms, `[${tag}] ERROR`),
  };
}

let receiptCounter = 0;

// Starts watching for a new receipt id; returns [id, promise of the RECEIPT].
function receipt(c, what) {
  receiptCounter += 1;
  const id = `${c.tag}-${what}-${receiptCounter}`;
  const promise = new Promise((resolve) => {
    c.client.watchForReceipt(id, (frame) => {
      events.push({ tag: c.tag, kind: 'RECEIPT', id });
      resolve(frame);
    });
  });
  return [id, withTimeout(promise, 10000, `RECEIPT ${id}`)];
}

function describe(message) {
  return {
    destination: message.headers.destination,
    subscription: message.headers.subscription,
    contentType: message.headers['content-type'] ?? null,
    headers: message.headers,
    body: message.body,
  };
}

// A subscription that queues its messages; next() waits for the next one.
function subscribe(c, destination, headers = {}) {
  const queue = [];
  const waiters = [];
  const sub = c.client.subscribe(
    destination,
    (message) => {
      events.push({ tag: c.tag, kind: 'MESSAGE', destination: message.headers.destination, body: message.body });
      const waiter = waiters.shift();
      if (waiter) waiter(message);
      else queue.push(message);
    },
    headers,
  );
  return {
    sub,
    next(ms = 10000) {
      if (queue.length) return Promise.resolve(queue.shift());
      return withTimeout(new Promise((resolve) => waiters.push(resolve)), ms, `[${c.tag}] MESSAGE on ${destination}`);
    },
    drain() {
      return queue.splice(0).map(describe);
    },
  };
}

async function subscribeWithReceipt(c, destination, headers = {}) {
  const [id, got] = receipt(c, 'sub');
  const s = subscribe(c, destination, { ...headers, receipt: id });
  await got;
  return s;
}

// A SEND with a receipt; resolves once the RECEIPT came.
async function sendWithReceipt(c, destination, body, headers = {}) {
  const [id, got] = receipt(c, 'send');
  c.client.publish({ destination, body, headers: { ...headers, receipt: id } });
  await got;
  return id;
}

// The next message on `s` whose JSON body has `ticker` (others are from earlier tests of
// the shared server: the user's backlog).
async function nextAbout(s, ticker) {
  for (;;) {
    const message = await s.next();
    const body = JSON.parse(message.body);
    if (body.ticker === ticker) return describe(message);
  }
}

function about(messages, ticker) {
  return messages.filter((m) => {
    try {
      return JSON.parse(m.body).ticker === ticker;
    } catch {
      return false;
    }
  });
}

async function close(...connections) {
  // stompjs sends DISCONNECT with a receipt and waits for it before closing.
  await Promise.all(connections.map((c) => withTimeout(c.client.deactivate(), 10000, `[${c.tag}] DISCONNECT receipt`)));
}

const trade = (action, ticker, shares) => JSON.stringify({ action, ticker, shares });

const scenarios = {
  // SEND /app/echo.ROOM with a receipt: the reply on /topic/echo.ROOM, before the RECEIPT.
  // config: room
  async echo() {
    const a = await connect('alice', 'alice');
    const listener = await connect('bob', 'bob');
    const topic = `/topic/echo.${config.room}`;
    const mine = await subscribeWithReceipt(a, topic);
    const theirs = await subscribeWithReceipt(listener, topic);
    const receiptId = await sendWithReceipt(a, `/app/echo.${config.room}`, 'hello');
    const reply = describe(await mine.next(1000)); // already there: it came before the RECEIPT
    const heard = describe(await theirs.next());
    await close(a, listener);
    return {
      connected: a.seen.connected,
      protocol: a.seen.protocol,
      reply,
      heard,
      receiptId,
      events,
      errors: [...a.seen.errors, ...listener.seen.errors],
    };
  },

  // Two sessions of alice and one of bob subscribe to /user/queue/position-updates and
  // /user/queue/whispers. alice's first session BUYs (receipt): both alice sessions get
  // the position, bob does not; bob BUYs: only bob gets his. alice's first session
  // whispers: only that session gets it.
  // config: ticker
  async users() {
    const a1 = await connect('alice1', 'alice');
    const a2 = await connect('alice2', 'alice');
    const b = await connect('bob', 'bob');
    const updates = {};
    const whispers = {};
    for (const c of [a1, a2, b]) {
      updates[c.tag] = await subscribeWithReceipt(c, '/user/queue/position-updates');
      whispers[c.tag] = await subscribeWithReceipt(c, '/user/queue/whispers');
    }
    const t = config.ticker;
    const aliceReceipt = await sendWithReceipt(a1, '/app/trade', trade('BUY', t, 3), { 'content-type': 'application/json' });
    const got = { alice1: [await nextAbout(updates.alice1, t)], alice2: [await nextAbout(updates.alice2, t)] };
    const bobReceipt = await sendWithReceipt(b, '/app/trade', trade('BUY', t, 2));
    got.bob = [await nextAbout(updates.bob, t)];
    const whisperReceipt = await sendWithReceipt(a1, '/app/whisper', 'psst');
    const whispered = describe(await whispers.alice1.next());
    await sleep(quietMs); // anything else that would arrive
    for (const c of [a1, a2, b]) got[c.tag].push(...about(updates[c.tag].drain(), t));
    const otherWhispers = { alice1: whispers.alice1.drain(), alice2: whispers.alice2.drain(), bob: whispers.bob.drain() };
    const sessions = { alice1: a1.seen.session, alice2: a2.seen.session, bob: b.seen.session };
    await close(a1, a2, b);
    return {
      updates: got,
      whispered,
      otherWhispers,
      sessions,
      receipts: { alice: aliceReceipt, bob: bobReceipt, whisper: whisperReceipt },
      events,
      errors: [...a1.seen.errors, ...a2.seen.errors, ...b.seen.errors],
    };
  },

  // alice BUYs `ticker`, then SUBSCRIBEs /app/positions: one answer, her positions; a
  // later trade sends nothing more there. bob's answer is his own.
  // config: ticker
  async positions() {
    const a = await connect('alice', 'alice');
    const b = await connect('bob', 'bob');
    const updates = await subscribeWithReceipt(a, '/user/queue/position-updates');
    await sendWithReceipt(a, '/app/trade', trade('BUY', config.ticker, 4));
    await nextAbout(updates, config.ticker);
    const mine = await subscribeWithReceipt(a, '/app/positions');
    const answer = describe(await mine.next());
    await sendWithReceipt(a, '/app/trade', trade('BUY', config.ticker, 1));
    await nextAbout(updates, config.ticker);
    const theirs = subscribe(b, '/app/positions');
    const bobAnswer = describe(await theirs.next());
    await sleep(quietMs);
    const extra = [...mine.drain(), ...theirs.drain()];
    await close(a, b);
    return { answer, bobAnswer, extra, errors: [...a.seen.errors, ...b.seen.errors] };
  },

  // Bad trades and an unhandled exception: each reply on the sending session's
  // /user/queue/errors (not on alice's other session), and a good trade afterwards works.
  // config: ticker, bad [bodies for /app/trade]
  async errors() {
    const a = await connect('alice1', 'alice');
    const other = await connect('alice2', 'alice');
    const errors = await subscribeWithReceipt(a, '/user/queue/errors');
    const otherErrors = await subscribeWithReceipt(other, '/user/queue/errors');
    const updates = await subscribeWithReceipt(a, '/user/queue/position-updates');
    const reported = [];
    const receipts = [];
    for (const body of config.bad) {
      receipts.push(await sendWithReceipt(a, '/app/trade', body));
      reported.push(describe(await errors.next(1000))); // it came before the RECEIPT
    }
    receipts.push(await sendWithReceipt(a, '/app/boom', 'x'));
    reported.push(describe(await errors.next(1000)));
    await sendWithReceipt(a, '/app/trade', trade('BUY', config.ticker, 7));
    const after = await nextAbout(updates, config.ticker);
    await sleep(quietMs);
    const extra = errors.drain();
    const elsewhere = otherErrors.drain();
    const stillConnected = a.client.connected;
    const closes = [...a.seen.closes]; // before our own DISCONNECT
    await close(a, other);
    return { reported, receipts, events, after, extra, elsewhere, stillConnected, closes, errors: [...a.seen.errors, ...other.seen.errors] };
  },

  // bob SUBSCRIBEs to /topic/admin.log (with a receipt): ERROR, and the connection closes.
  // Another bob session SENDs there: ERROR too. alice may subscribe.
  // config: destination
  async denied() {
    const b = await connect('bob-sub', 'bob');
    const [subReceipt] = receipt(b, 'sub');
    b.client.subscribe(config.destination, () => {}, { receipt: subReceipt });
    await b.errored();
    await b.closed();
    const b2 = await connect('bob-send', 'bob');
    const [sendReceipt] = receipt(b2, 'send');
    b2.client.publish({ destination: config.destination, body: 'let me in', headers: { receipt: sendReceipt } });
    await b2.errored();
    await b2.closed();
    const a = await connect('alice', 'alice');
    await subscribeWithReceipt(a, config.destination);
    await close(a);
    return {
      subscribe: { errors: b.seen.errors, closes: b.seen.closes, receipt: subReceipt },
      send: { errors: b2.seen.errors, closes: b2.seen.closes, receipt: sendReceipt },
      alice: { errors: a.seen.errors },
      events,
    };
  },

  // CONNECT with a wrong passcode, and as somebody unknown: ERROR, then the close.
  async badLogin() {
    const results = {};
    for (const [tag, login, passcode] of [
      ['wrong-passcode', 'alice', 'not-the-passcode'],
      ['unknown-user', 'mallory', 'whatever'],
    ]) {
      const c = await connect(tag, login, {}, { passcode, expectError: true });
      await c.closed();
      results[tag] = { connected: c.seen.connected, errors: c.seen.errors, closes: c.seen.closes };
    }
    return { results };
  },
};

const scenario = scenarios[scenarioName];
if (!scenario) {
  finish({ ok: false, error: `unknown scenario ${scenarioName}; known: ${Object.keys(scenarios)}` }, 2);
}
try {
  const result = await scenario();
  clearTimeout(deadline);
  finish({ ok: true, scenario: scenarioName, ...result }, 0);
} catch (error) {
  finish({ ok: false, scenario: scenarioName, error: String(error?.stack ?? error), events, log: debugLines.slice(-60) }, 1);
}

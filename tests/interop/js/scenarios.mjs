// @stomp/stompjs 7 in node over WebSocket (the `ws` package), one scenario per run:
//
//   node scenarios.mjs SCENARIO '{"url": "ws://127.0.0.1:PORT/ws", "login": ..., ...}'
//
// Configuration (JSON, second argument): url, login, passcode, host (optional: the CONNECT
// `host` header, which stompjs omits unless told), name (unique per run, for destinations),
// timeoutMs (the whole run), plus what the scenario reads below.
//
// Prints exactly one JSON line on stdout: {"ok": true, ...what happened...} or
// {"ok": false, "error": ..., "log": [last debug lines]}; tests/interop/test_stompjs.py
// asserts on it. Debug output goes to stderr. The script always exits by itself: a
// timer ends it after timeoutMs whatever the broker does.

import { createHash } from 'node:crypto';
import { Client } from '@stomp/stompjs';
import WebSocket from 'ws';

const [scenarioName, rawConfig] = process.argv.slice(2);
const config = JSON.parse(rawConfig ?? '{}');
const timeoutMs = config.timeoutMs ?? 30000;
const debugLines = [];
const clients = [];

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
  finish({ ok: false, error: `timeout after ${timeoutMs} ms`, log: debugLines.slice(-60) }, 3);
}, timeoutMs);

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function withTimeout(promise, ms, what) {
  let timer;
  const expired = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

// A connected Client plus what it saw: CONNECTED headers, STOMP ERRORs,
// heart-beats each way, WebSocket closes, outgoing chunks.
async function connect(tag, options = {}) {
  const seen = {
    tag,
    connected: null,
    protocol: null,
    errors: [],
    closes: 0,
    heartbeatsReceived: 0,
    heartbeatsLost: 0,
    pingsSent: 0,
    chunksSent: 0,
  };
  const connectHeaders = { login: config.login, passcode: config.passcode };
  if (config.host) connectHeaders.host = config.host;
  let socket = null;
  const client = new Client({
    webSocketFactory: () => {
      socket = new WebSocket(config.url, ['v12.stomp', 'v11.stomp', 'v10.stomp']);
      return socket;
    },
    connectHeaders,
    reconnectDelay: 0, // a lost connection is a failure here, never retried
    heartbeatIncoming: 0,
    heartbeatOutgoing: 0,
    debug: (line) => {
      if (line === '>>> PING') seen.pingsSent += 1;
      if (line.startsWith('chunk sent')) seen.chunksSent += 1;
      log(`[${tag}] ${line}`);
    },
    ...options,
  });
  client.onHeartbeatReceived = () => {
    seen.heartbeatsReceived += 1;
  };
  client.onHeartbeatLost = () => {
    seen.heartbeatsLost += 1;
  };
  client.onWebSocketClose = (event) => {
    seen.closes += 1;
    log(`[${tag}] WebSocket closed: ${event?.code} ${event?.reason ?? ''}`);
  };
  clients.push(client);
  const connected = new Promise((resolve, reject) => {
    client.onConnect = (frame) => resolve(frame);
    client.onStompError = (frame) => {
      seen.errors.push({ headers: frame.headers, body: frame.body.slice(0, 500) });
      reject(new Error(`[${tag}] ERROR ${frame.headers.message ?? ''} ${frame.body.slice(0, 200)}`));
    };
    client.onWebSocketError = () => reject(new Error(`[${tag}] WebSocket error`));
  });
  client.activate();
  const frame = await withTimeout(connected, 10000, `[${tag}] CONNECTED`);
  seen.connected = frame.headers;
  seen.protocol = socket?.protocol ?? null;
  // From now on an ERROR is recorded, not a rejection of the connect promise.
  client.onStompError = (f) => {
    seen.errors.push({ headers: f.headers, body: f.body.slice(0, 500) });
    log(`[${tag}] ERROR ${JSON.stringify(f.headers)} ${f.body.slice(0, 200)}`);
  };
  return { client, seen };
}

let receiptCounter = 0;

// Starts watching for a new receipt id; returns [id, promise of the RECEIPT].
function receipt(client, tag) {
  receiptCounter += 1;
  const id = `${tag}-${receiptCounter}`;
  const promise = new Promise((resolve) => {
    client.watchForReceipt(id, (frame) => resolve({ id, at: receiptOrder.push(id), frame }));
  });
  return [id, withTimeout(promise, 10000, `RECEIPT ${id}`)];
}
const receiptOrder = [];

// A subscription that queues its messages; next() waits for the next one.
function subscribe(client, destination, headers = {}) {
  const queue = [];
  const waiters = [];
  const sub = client.subscribe(
    destination,
    (message) => {
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
      return withTimeout(new Promise((resolve) => waiters.push(resolve)), ms, `MESSAGE on ${destination}`);
    },
    drain() {
      return queue.splice(0);
    },
  };
}

async function subscribeWithReceipt(client, destination, headers = {}) {
  const [id, got] = receipt(client, 'sub');
  const s = subscribe(client, destination, { ...headers, receipt: id });
  await got;
  return s;
}

function describe(message) {
  return {
    destination: message.headers.destination,
    subscription: message.headers.subscription,
    redelivered: message.headers.redelivered ?? null,
    headers: message.headers,
    body: message.body, // node's ws hands over Buffers: stompjs decodes them as UTF-8
  };
}

async function close(...connections) {
  const done = [];
  for (const { client, tag } of connections) {
    // stompjs sends DISCONNECT with a receipt and waits for it before closing.
    done.push(withTimeout(client.deactivate(), 10000, `[${tag}] DISCONNECT receipt`));
  }
  await Promise.all(done);
}

const scenarios = {
  // Connect, subscribe to topic patterns (with receipts), publish to matching and
  // non-matching destinations; report what each subscription received.
  // config: patterns [..], publish [..], end (last destination published; matches every pattern)
  async pattern() {
    const sub = await connect('sub');
    const pub = await connect('pub');
    const subs = [];
    for (const pattern of config.patterns) {
      subs.push({ pattern, s: await subscribeWithReceipt(sub.client, pattern) });
    }
    for (const destination of config.publish) {
      pub.client.publish({ destination, body: `to ${destination}` });
    }
    const [id, got] = receipt(pub.client, 'send');
    pub.client.publish({ destination: config.end, body: 'end', headers: { receipt: id } });
    await got;
    const received = {};
    for (const { pattern, s } of subs) {
      const list = [];
      for (;;) {
        const message = await s.next();
        list.push(describe(message));
        if (message.headers.destination === config.end) break;
      }
      await sleep(300); // stragglers published before `end` on other destinations
      list.push(...s.drain().map(describe));
      received[pattern] = list;
    }
    await close({ client: sub.client, tag: 'sub' }, { client: pub.client, tag: 'pub' });
    return { connected: sub.seen.connected, protocol: sub.seen.protocol, received, errors: [...sub.seen.errors, ...pub.seen.errors] };
  },

  // Queue round trip: a text message with escaped header values and (with
  // `binary`) a binary body with NULs sent as a binary WebSocket message, every
  // frame with a receipt; report what came back and the receipt order.
  // config: queue, binary
  async roundtrip() {
    const c = await connect('rt');
    const s = await subscribeWithReceipt(c.client, config.queue);
    const binary = new Uint8Array([0, 1, 2, 0, 255, 254, 0, 10, 13, 0]);
    const ids = [];
    const waits = [];
    let [id, got] = receipt(c.client, 'text');
    ids.push(id);
    waits.push(got);
    c.client.publish({
      destination: config.queue,
      body: 'héllo wörld €',
      headers: { receipt: id, 'x-escaped': 'a:b\nc\\d', 'content-type': 'text/plain;charset=utf-8' },
    });
    if (config.binary) {
      [id, got] = receipt(c.client, 'binary');
      ids.push(id);
      waits.push(got);
      c.client.publish({
        destination: config.queue,
        binaryBody: binary,
        headers: { receipt: id, 'content-type': 'application/octet-stream' },
      });
    }
    const receipts = await Promise.all(waits);
    const text = await s.next();
    const bin = config.binary ? await s.next() : null;
    [id, got] = receipt(c.client, 'unsub');
    s.sub.unsubscribe({ receipt: id });
    ids.push(id);
    await got;
    await close({ client: c.client, tag: 'rt' });
    return {
      connected: c.seen.connected,
      protocol: c.seen.protocol,
      text: describe(text),
      binary: bin && Array.from(bin.binaryBody),
      binarySent: config.binary ? Array.from(binary) : null,
      receiptsExpected: ids,
      receiptOrder: receiptOrder.filter((r) => ids.includes(r)),
      receiptFrames: receipts.map((r) => r.frame.headers),
      errors: c.seen.errors,
    };
  },

  // client-individual acks: receive three, ack the first and the last, leave the
  // middle one, disconnect; a second connection gets the middle one redelivered,
  // NACKs it, gets it again, ACKs it.
  // config: queue
  async ack() {
    const first = await connect('first');
    const s1 = await subscribeWithReceipt(first.client, config.queue, { ack: 'client-individual' });
    const sends = [];
    for (const body of ['m0', 'm1', 'm2']) {
      const [id, got] = receipt(first.client, 'send');
      first.client.publish({ destination: config.queue, body, headers: { receipt: id } });
      sends.push(got);
    }
    await Promise.all(sends);
    const got1 = [await s1.next(), await s1.next(), await s1.next()];
    const acks = [];
    for (const message of [got1[0], got1[2]]) {
      const [id, got] = receipt(first.client, 'ack');
      message.ack({ receipt: id });
      acks.push(got);
    }
    await Promise.all(acks);
    await close({ client: first.client, tag: 'first' });

    const second = await connect('second');
    const s2 = await subscribeWithReceipt(second.client, config.queue, { ack: 'client-individual' });
    const redelivered = await s2.next();
    let [id, got] = receipt(second.client, 'nack');
    redelivered.nack({ receipt: id });
    await got;
    const again = await s2.next();
    [id, got] = receipt(second.client, 'ack');
    again.ack({ receipt: id });
    await got;
    await sleep(500);
    const extra = s2.drain().map(describe);
    await close({ client: second.client, tag: 'second' });
    return {
      first: got1.map(describe),
      redelivered: describe(redelivered),
      afterNack: describe(again),
      extra,
      errors: [...first.seen.errors, ...second.seen.errors],
    };
  },

  // Heart-beats both ways at 1000 ms, idle for idleMs, then a round trip on the
  // same connection.
  // config: queue, idleMs
  async heartbeat() {
    const c = await connect('hb', { heartbeatIncoming: 1000, heartbeatOutgoing: 1000 });
    await sleep(config.idleMs ?? 3500);
    const idle = {
      heartbeatsReceived: c.seen.heartbeatsReceived,
      heartbeatsLost: c.seen.heartbeatsLost,
      pingsSent: c.seen.pingsSent,
      closes: c.seen.closes,
      connected: c.client.connected,
    };
    const s = await subscribeWithReceipt(c.client, config.queue);
    c.client.publish({ destination: config.queue, body: 'still here' });
    const message = await s.next();
    await close({ client: c.client, tag: 'hb' });
    return { connected: c.seen.connected, idle, after: describe(message), errors: c.seen.errors };
  },

  // A large text message (sizeBytes, with multi-byte characters) sent with
  // splitLargeFrames: the client cuts the frame into chunkSize-character WebSocket
  // messages. Another connection receives it from the queue.
  // config: queue, sizeBytes, chunkSize
  async large() {
    const size = config.sizeBytes ?? 1024 * 1024;
    const unit = 'stomp-proto é€ interop 0123456789 '; // 35 chars, 38 UTF-8 bytes
    let body = unit.repeat(Math.ceil(size / 38));
    while (Buffer.byteLength(body) > size) body = body.slice(0, -1);
    body += 'x'.repeat(size - Buffer.byteLength(body));
    const sender = await connect('sender', {
      splitLargeFrames: true,
      maxWebSocketChunkSize: config.chunkSize ?? 8 * 1024,
    });
    const receiver = await connect('receiver');
    const s = await subscribeWithReceipt(receiver.client, config.queue);
    const [id, got] = receipt(sender.client, 'large');
    sender.client.publish({ destination: config.queue, body, headers: { receipt: id } });
    await got;
    const message = await s.next(20000);
    const digest = (text) => createHash('sha256').update(text, 'utf8').digest('hex');
    await close({ client: sender.client, tag: 'sender' }, { client: receiver.client, tag: 'receiver' });
    return {
      sentBytes: Buffer.byteLength(body),
      sentSha256: digest(body),
      chunksSent: sender.seen.chunksSent,
      receivedBytes: Buffer.byteLength(message.body),
      receivedSha256: digest(message.body),
      contentLength: message.headers['content-length'] ?? null,
      errors: [...sender.seen.errors, ...receiver.seen.errors],
    };
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
  finish({ ok: false, scenario: scenarioName, error: String(error?.stack ?? error), log: debugLines.slice(-60) }, 1);
}

// The SDK against a live roomlog (started by tests/clients/test_js_sdk.py, which passes ROOMLOG_URL,
// ROOMLOG_API_KEY and ROOMLOG_CONTROL_URL). Run with: node --experimental-websocket --test clients/js/test
import assert from "node:assert/strict";
import net from "node:net";
import { after, describe, test } from "node:test";

import { OPERATIONS, RoomlogClient, RoomlogError, backoffDelay, retryAfterSeconds } from "../roomlog.js";

const BASE = process.env.ROOMLOG_URL;
const KEY = process.env.ROOMLOG_API_KEY;
const CONTROL = process.env.ROOMLOG_CONTROL_URL;
const FAST = { pingIntervalMs: 1000, pongTimeoutMs: 1000, backoff: { baseMs: 100, maxMs: 500 } };
const WAIT_MS = 30_000;

function as(user, options = {}) {
  return new RoomlogClient({ baseUrl: BASE, apiKey: KEY, userId: user, ...options });
}

function uid(prefix) {
  return `${prefix}-${Math.random().toString(36).slice(2, 10)}`;
}

async function room(creator, members) {
  return creator.api.postRooms({ body: { type: "group", members } });
}

/** Resolves when `predicate()` holds, polled as events arrive; rejects after WAIT_MS. */
function until(predicate, what) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const timer = setInterval(() => {
      if (predicate()) {
        clearInterval(timer);
        resolve();
      } else if (Date.now() - started > WAIT_MS) {
        clearInterval(timer);
        reject(new Error(`timed out waiting for ${what}`));
      }
    }, 20);
  });
}

/** Records a connection's events and states. */
function record(connection) {
  const seen = { events: [], states: [] };
  connection.on("event", (event) => seen.events.push(event));
  connection.on("state", (state) => seen.states.push(state));
  return seen;
}

function messageSeqs(events) {
  return events.filter((e) => e.type === "message.new").map((e) => e.seq);
}

/** A TCP proxy to the server whose connections can be cut, like a lost network. */
async function proxy(target) {
  const { hostname, port } = new URL(target);
  const sockets = new Set();
  const server = net.createServer((inbound) => {
    const outbound = net.connect(Number(port), hostname);
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => {});
    }
    inbound.pipe(outbound).pipe(inbound);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    cut() {
      for (const s of sockets) s.resetAndDestroy();
    },
    close() {
      this.cut();
      server.close();
    },
  };
}

describe("pure helpers", () => {
  test("Retry-After is read as seconds or as an HTTP date", () => {
    assert.equal(retryAfterSeconds("3"), 3);
    assert.equal(retryAfterSeconds(new Date(10_000).toUTCString(), 4_000), 6);
    assert.equal(retryAfterSeconds(null), null);
  });

  test("backoff grows with each attempt up to its cap", () => {
    const top = { random: () => 1 };
    assert.deepEqual([0, 1, 2, 10].map((n) => backoffDelay(n, { baseMs: 100, maxMs: 1000, ...top })), [100, 200, 400, 1000]);
  });
});

describe("REST client", () => {
  test("has one method per operation of /openapi.json", async () => {
    const doc = await (await fetch(`${BASE}/openapi.json`)).json();
    const ids = Object.entries(doc.paths).filter(([path]) => !path.startsWith("/console/"))
      .flatMap(([, methods]) => Object.values(methods).map((op) => op.operationId));
    const client = as("alice");
    const byOperation = Object.fromEntries(Object.entries(OPERATIONS).map(([name, op]) => [op.operationId, name]));
    assert.deepEqual(Object.keys(byOperation).sort(), ids.sort());
    for (const id of ids) assert.equal(typeof client.api[byOperation[id]], "function", id);
  });

  test("calls routes with path and query parameters and bodies", async () => {
    const alice = as(uid("alice"));
    const r = await room(alice, ["bob"]);
    await alice.send(r.room_id, "one");
    await alice.send(r.room_id, "two");
    const page = await alice.api.getRoomsRoomIdMessages({ room_id: r.room_id, limit: 1 });
    assert.deepEqual(page.map((m) => m.content), ["two"]);
    const got = await alice.api.getRoomsRoomId({ room_id: r.room_id });
    assert.equal(got.last_seq, r.last_seq + 2);
  });

  test("send() passes its mentions: they count in the mentioned user's inbox", async () => {
    const alice = as(uid("alice"));
    const bob = uid("bob");
    const r = await room(alice, [bob]);
    await alice.send(r.room_id, `@${bob} look`, { mentions: [bob] });
    await alice.send(r.room_id, "no mention");
    const seen = await as(bob).api.getRoomsRoomId({ room_id: r.room_id });
    assert.deepEqual([seen.unread_count, seen.mention_count], [2, 1]);
  });

  test("an error answer is a RoomlogError with the API's code and status", async () => {
    const error = await as("alice").api.getRoomsRoomId({ room_id: "00000000-0000-0000-0000-000000000000" }).catch((e) => e);
    assert.ok(error instanceof RoomlogError);
    assert.equal(error.status, 404);
    assert.match(error.code, /NOT_FOUND/);
  });

  test("history pages go backwards to the first message, each page in seq order", async () => {
    const alice = as(uid("alice"));
    const r = await room(alice, []);
    for (let n = 0; n < 7; n += 1) await alice.send(r.room_id, `m${n}`);
    const pages = [];
    for await (const page of alice.historyPages(r.room_id, { limit: 3 })) pages.push(page.map((m) => m.content));
    assert.deepEqual(pages, [["m4", "m5", "m6"], ["m1", "m2", "m3"], ["m0"]]);
  });

  test("a send whose answer was lost is retried with the same client_msg_id: one message", async () => {
    const user = uid("alice");
    const r = await room(as(user), []);
    let lost = 0;
    const losing = async (url, init) => {
      const response = await fetch(url, init);
      if (init.method === "POST" && url.endsWith("/messages") && lost === 0) {
        lost += 1;
        throw new TypeError("connection reset after the request was sent");
      }
      return response;
    };
    const alice = as(user, { fetch: losing, sleep: async () => {} });
    const sent = await alice.send(r.room_id, "once");
    const messages = await alice.api.getRoomsRoomIdMessages({ room_id: r.room_id });
    assert.equal(lost, 1);
    assert.deepEqual(messages.map((m) => [m.content, m.message_id]), [["once", sent.message_id]]);
  });

  test("a 429 is retried after its Retry-After", async () => {
    const user = uid("alice");
    const r = await room(as(user), []);
    const waits = [];
    let refused = 0;
    const limited = async (url, init) => {
      if (init.method === "POST" && refused === 0) {
        refused += 1;
        return new Response(JSON.stringify({ success: false, error: { code: "RATE_LIMIT_EXCEEDED", message: "slow down" } }),
          { status: 429, headers: { "retry-after": "2", "content-type": "application/json" } });
      }
      return fetch(url, init);
    };
    const alice = as(user, { fetch: limited, sleep: async (ms) => { waits.push(ms); } });
    await alice.send(r.room_id, "after the wait");
    assert.deepEqual(waits, [2000]);
    assert.equal((await alice.api.getRoomsRoomIdMessages({ room_id: r.room_id })).length, 1);
  });
});

describe("rate limits", () => {
  test("sends over the server's limit wait out its Retry-After and are each stored once, in order", async () => {
    const statuses = [];
    const watching = async (url, init) => {
      const response = await fetch(url, init);
      if (init.method === "POST" && url.endsWith("/messages")) statuses.push([response.status, response.headers.get("retry-after")]);
      return response;
    };
    const user = uid("alice");
    const limited = new RoomlogClient({ baseUrl: BASE, apiKey: process.env.ROOMLOG_LIMITED_API_KEY, userId: user, fetch: watching });
    const r = await limited.api.postRooms({ body: { type: "group", members: [] } });
    for (let n = 1; n <= 3; n += 1) await limited.send(r.room_id, `limited ${n}`);
    const refused = statuses.filter(([status]) => status === 429);
    assert.ok(refused.length >= 1, JSON.stringify(statuses));
    assert.ok(refused.every(([, retryAfter]) => retryAfter !== null && Number(retryAfter) >= 0), JSON.stringify(statuses));
    const messages = await limited.api.getRoomsRoomIdMessages({ room_id: r.room_id });
    assert.deepEqual(messages.map((m) => m.content), ["limited 1", "limited 2", "limited 3"]);
  });
});

describe("live connection", () => {
  const open = [];
  after(() => open.forEach((c) => c.close()));

  test("delivers the log after last_seq, then live events, each once in seq order", async () => {
    const alice = as(uid("alice"));
    const bobId = uid("bob");
    const r = await room(alice, [bobId]);
    for (let n = 1; n <= 3; n += 1) await alice.send(r.room_id, `before ${n}`);
    const live = as(bobId).subscribe({ [r.room_id]: 0 }, FAST);
    open.push(live);
    const seen = record(live);
    await until(() => live.state === "live", "live");
    for (let n = 1; n <= 3; n += 1) await alice.send(r.room_id, `after ${n}`);
    await until(() => messageSeqs(seen.events).length === 6, "six messages");
    const seqs = seen.events.map((e) => e.seq);
    assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => i + 1));
    assert.deepEqual(seen.events.filter((e) => e.type === "message.new").map((e) => e.data.content),
      ["before 1", "before 2", "before 3", "after 1", "after 2", "after 3"]);
  });

  test("a list of room ids starts from each room's current last_seq", async () => {
    const alice = as(uid("alice"));
    const r = await room(alice, []);
    await alice.send(r.room_id, "old");
    const live = alice.subscribe([r.room_id], FAST);
    open.push(live);
    const seen = record(live);
    await until(() => live.state === "live", "live");
    await alice.send(r.room_id, "new");
    await until(() => seen.events.length === 1, "one event");
    assert.equal(seen.events[0].data.content, "new");
  });

  test("resumes exactly after the network is lost, with messages sent meanwhile", async () => {
    const alice = as(uid("alice"));
    const bobId = uid("bob");
    const r = await room(alice, [bobId]);
    const net_ = await proxy(BASE);
    const live = new RoomlogClient({ baseUrl: net_.url, apiKey: KEY, userId: bobId }).subscribe({ [r.room_id]: r.last_seq }, FAST);
    open.push(live);
    const seen = record(live);
    const positions = [];
    live.on("seq", (roomId, seq) => positions.push([roomId, seq]));
    await until(() => live.state === "live", "live");
    await alice.send(r.room_id, "m1");
    await until(() => seen.events.length === 1, "m1");
    net_.cut();
    for (let n = 2; n <= 6; n += 1) await alice.send(r.room_id, `m${n}`);
    await until(() => seen.events.length === 6 && live.state === "resynced", "m2..m6 after the cut");
    await alice.send(r.room_id, "m7");
    await until(() => seen.events.length === 7, "m7");
    assert.deepEqual(seen.events.map((e) => e.data.content), ["m1", "m2", "m3", "m4", "m5", "m6", "m7"]);
    assert.deepEqual(seen.events.map((e) => e.seq), Array.from({ length: 7 }, (_, i) => r.last_seq + 1 + i));
    assert.ok(seen.states.includes("reconnecting"), seen.states.join());
    assert.deepEqual(positions.at(-1), [r.room_id, r.last_seq + 7]);
    net_.close();
  });

  test("after a resync (the server dropped what it had queued) it reconnects and syncs from what it got", async () => {
    const alice = as(uid("alice"));
    const bobId = uid("bob");
    const r = await room(alice, [bobId]);
    let resynced = false;
    // Plays the server's side of a full queue on the first socket: from "m2" on, everything queued is dropped
    // and the client is told `resync` with the seqs actually sent, then the socket closes with 4008.
    class QueueOverflow extends WebSocket {
      set onmessage(fn) {
        super.onmessage = fn && ((message) => {
          if (this.dropping) return;
          const frame = JSON.parse(message.data);
          if (!resynced && frame.type === "message.new" && frame.data.content === "m2") {
            resynced = this.dropping = true;
            fn(new MessageEvent("message", { data: JSON.stringify({ type: "resync", rooms: { [r.room_id]: frame.seq - 1 } }) }));
            this.close(4008, "resync");
            return;
          }
          fn(message);
        });
      }

      get onmessage() {
        return super.onmessage;
      }
    }
    const live = as(bobId, { WebSocket: QueueOverflow }).subscribe({ [r.room_id]: r.last_seq }, FAST);
    open.push(live);
    const seen = record(live);
    await until(() => live.state === "live", "live");
    for (let n = 1; n <= 5; n += 1) await alice.send(r.room_id, `m${n}`);
    await until(() => seen.events.length === 5, "m1..m5");
    assert.ok(resynced);
    assert.deepEqual(seen.events.map((e) => e.data.content), ["m1", "m2", "m3", "m4", "m5"]);
    assert.deepEqual(seen.events.map((e) => e.seq), Array.from({ length: 5 }, (_, i) => r.last_seq + 1 + i));
    assert.ok(seen.states.indexOf("resyncing") < seen.states.lastIndexOf("resynced"), seen.states.join());
  });

  test("resumes across a server restart with messages sent while it was away: exactly 1..N", async () => {
    const aliceId = uid("alice");
    const alice = as(aliceId);
    const bobId = uid("bob");
    const r = await room(alice, [bobId]);
    const live = as(bobId).subscribe({ [r.room_id]: 0 }, FAST);
    open.push(live);
    const seen = record(live);
    await until(() => live.state === "live", "live");
    for (let n = 0; n < 3; n += 1) await alice.send(r.room_id, `before ${n}`);
    await until(() => messageSeqs(seen.events).length === 3, "three messages before the restart");
    const answer = await fetch(`${CONTROL}/restart`, {
      method: "POST",
      body: JSON.stringify({ room_id: r.room_id, user: aliceId, count: 4, prefix: "away " }),
    });
    assert.equal(answer.status, 200);
    await until(() => messageSeqs(seen.events).length === 7 && live.state === "resynced", "the four sent while away");
    for (let n = 0; n < 3; n += 1) await alice.send(r.room_id, `after ${n}`);
    await until(() => messageSeqs(seen.events).length === 10, "three after the restart");
    const last = (await alice.api.getRoomsRoomId({ room_id: r.room_id })).last_seq;
    assert.deepEqual(seen.events.map((e) => e.seq), Array.from({ length: last }, (_, i) => i + 1));
    assert.deepEqual(seen.events.filter((e) => e.type === "message.new").map((e) => e.data.content), [
      "before 0", "before 1", "before 2", "away 0", "away 1", "away 2", "away 3", "after 0", "after 1", "after 2",
    ]);
    assert.ok(seen.states.includes("reconnecting"), seen.states.join());
  });
});

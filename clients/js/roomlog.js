// roomlog's JavaScript SDK: a REST client for every route and a live connection that resumes by seq.
// ES module, no dependencies; browsers and Node >= 20 (Node 20 needs --experimental-websocket, or pass
// a WebSocket class in the options).
import { OPERATIONS } from "./api.gen.js";

export { OPERATIONS };

const RETRYABLE_STATUS = new Set([429, 502, 503, 504]);
// Frames of the WebSocket protocol that are not room events (everything else with a room_id and seq is).
const SIGNAL_FRAMES = new Set([
  "send.ok", "synced", "ack.received", "read.receipt", "typing", "presence.updated", "notification",
  "error", "resync", "server.shutdown", "pong",
]);

/** An error answer of the API, carrying its `code`, HTTP `status`, `field` and the whole `error` object. */
export class RoomlogError extends Error {
  constructor(status, error, { retryAfter = null } = {}) {
    super(error?.message ?? `HTTP ${status}`);
    this.name = "RoomlogError";
    this.status = status;
    this.code = error?.code ?? "HTTP_ERROR";
    this.field = error?.field ?? null;
    this.error = error ?? {};
    this.retryAfter = retryAfter;
  }
}

/** A request that never got an answer (connection refused, reset, offline). */
export class NetworkError extends Error {
  constructor(cause) {
    super(`network error: ${cause?.message ?? cause}`);
    this.name = "NetworkError";
    this.cause = cause;
  }
}

/** A fresh client_msg_id. */
export function newClientMsgId() {
  return `c-${globalThis.crypto.randomUUID()}`;
}

/** Seconds to wait according to a Retry-After header (delta seconds or an HTTP date), or null. */
export function retryAfterSeconds(value, now = Date.now()) {
  if (value === null || value === undefined || value === "") return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds);
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, (at - now) / 1000);
}

/** Exponential backoff with full jitter: a delay in ms for the given attempt (0-based). */
export function backoffDelay(attempt, { baseMs = 250, maxMs = 10_000, random = Math.random } = {}) {
  const ceiling = Math.min(maxMs, baseMs * 2 ** attempt);
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

const defaultSleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A client of one roomlog server, acting with an API key + user id, or a bearer token from login. */
export class RoomlogClient {
  constructor({
    baseUrl, apiKey = null, userId = null, accessToken = null, refreshToken = null,
    fetch = globalThis.fetch?.bind(globalThis), WebSocket = globalThis.WebSocket,
    maxRetries = 4, maxRetryAfterSeconds = 60, sleep = defaultSleep, onTokens = null,
  } = {}) {
    this.baseUrl = String(baseUrl ?? globalThis.location?.origin ?? "").replace(/\/+$/, "");
    this.apiKey = apiKey;
    this.userId = userId;
    this.accessToken = accessToken;
    this.refreshToken = refreshToken;
    this.fetch = fetch;
    this.WebSocket = WebSocket;
    this.maxRetries = maxRetries;
    this.maxRetryAfterSeconds = maxRetryAfterSeconds;
    this.sleep = sleep;
    this.onTokens = onTokens;
    /** One method per operation of /openapi.json, e.g. `api.getRoomsRoomId({room_id})`. */
    this.api = buildApi(this);
  }

  /** The authentication headers of this client. */
  authHeaders() {
    if (this.accessToken) return { Authorization: `Bearer ${this.accessToken}` };
    if (this.apiKey) return { "X-API-Key": this.apiKey, ...(this.userId ? { "X-User-Id": this.userId } : {}) };
    return {};
  }

  /** Sign in with email and password; later calls carry the access token (refreshed once when it expires). */
  async login(email, password) {
    const answer = await this.request("POST", "/auth/login", { body: { email, password }, auth: false });
    this.#useTokens(answer);
    return answer;
  }

  #useTokens(answer) {
    this.accessToken = answer.access_token;
    this.refreshToken = answer.refresh_token ?? this.refreshToken;
    this.userId = answer.user?.user_id ?? this.userId;
    this.onTokens?.(answer);
  }

  /**
   * One request; JSON in and out. Retries a 429/502/503/504 after its Retry-After (or a backoff), and a
   * network failure when `retryNetwork` (safe for reads, deletes and anything carrying an idempotency key).
   */
  async request(method, path, { query = null, body = undefined, headers = {}, auth = true, retryNetwork = null } = {}) {
    const url = this.baseUrl + path + queryString(query);
    const safe = retryNetwork ?? (method === "GET" || method === "DELETE" || method === "PUT");
    for (let attempt = 0; ; attempt += 1) {
      let response;
      try {
        response = await this.fetch(url, {
          method,
          headers: {
            ...(auth ? this.authHeaders() : {}),
            ...(body !== undefined ? { "content-type": "application/json" } : {}),
            ...headers,
          },
          body: body !== undefined ? JSON.stringify(body) : undefined,
        });
      } catch (cause) {
        if (!safe || attempt >= this.maxRetries) throw new NetworkError(cause);
        await this.sleep(backoffDelay(attempt));
        continue;
      }
      if (response.ok) return readBody(response);
      const error = (await readBody(response))?.error;
      const wait = retryAfterSeconds(response.headers.get("retry-after"));
      if (RETRYABLE_STATUS.has(response.status) && attempt < this.maxRetries
          && (wait === null || wait <= this.maxRetryAfterSeconds)) {
        await this.sleep(wait !== null ? wait * 1000 : backoffDelay(attempt));
        continue;
      }
      if (response.status === 401 && auth && this.refreshToken && attempt === 0 && path !== "/auth/refresh") {
        if (await this.#refresh()) continue;
      }
      throw new RoomlogError(response.status, error, { retryAfter: wait });
    }
  }

  async #refresh() {
    try {
      const answer = await this.request("POST", "/auth/refresh", { body: { refresh_token: this.refreshToken }, auth: false });
      this.#useTokens(answer);
      return true;
    } catch {
      this.refreshToken = null;
      return false;
    }
  }

  /**
   * Send a message. A client_msg_id is assigned (or taken from `clientMsgId`) before the first try, so
   * retries after a lost answer or a Retry-After return the first result instead of a second message.
   */
  async send(roomId, content, { clientMsgId = newClientMsgId(), threadId, meta, type, attachments, mentions } = {}) {
    const body = { content, client_msg_id: clientMsgId };
    if (threadId !== undefined) body.thread_id = threadId;
    if (meta !== undefined) body.meta = meta;
    if (type !== undefined) body.type = type;
    if (attachments !== undefined) body.attachments = attachments;
    if (mentions !== undefined) body.mentions = mentions;
    const answer = await this.request("POST", `/rooms/${encodeURIComponent(roomId)}/messages`, { body, retryNetwork: true });
    return { ...answer, client_msg_id: clientMsgId };
  }

  /** Pages of a room's messages backwards from `beforeSeq` (newest first page), each in seq order. */
  async *historyPages(roomId, { beforeSeq, limit = 50 } = {}) {
    let before = beforeSeq;
    for (;;) {
      const page = await this.api.getRoomsRoomIdMessages({ room_id: roomId, limit, ...(before !== undefined ? { before_seq: before } : {}) });
      if (page.length === 0) return;
      yield page;
      if (page[0].seq <= 1 || page.length < limit) return;
      before = page[0].seq;
    }
  }

  /** Every event of a room's log after `afterSeq`, page by page, in seq order. */
  async *events(roomId, { afterSeq = 0, limit = 1000 } = {}) {
    let after = afterSeq;
    for (;;) {
      const page = await this.api.getRoomsRoomIdEvents({ room_id: roomId, after_seq: after, limit });
      yield* page;
      if (page.length < limit) return;
      after = page[page.length - 1].seq;
    }
  }

  /**
   * A live connection to `rooms`: an array of room ids (starting from their current last_seq) or an object
   * of room id -> last seq already seen (0 for the whole log). Events arrive once each, in seq order.
   */
  subscribe(rooms, options = {}) {
    if (typeof this.WebSocket !== "function") {
      throw new TypeError("no WebSocket class: on Node 20 run with --experimental-websocket, or pass { WebSocket }");
    }
    const connection = new LiveConnection(this, options);
    connection.start(rooms);
    return connection;
  }
}

function buildApi(client) {
  const api = {};
  for (const [id, op] of Object.entries(OPERATIONS)) {
    api[id] = (args = {}) => {
      let path = op.path;
      for (const name of op.pathParams) {
        if (args[name] === undefined) throw new TypeError(`${id}: missing path parameter ${name}`);
        path = path.replace(`{${name}}`, encodeURIComponent(args[name]));
      }
      const query = {};
      for (const name of op.query) if (args[name] !== undefined && args[name] !== null) query[name] = args[name];
      return client.request(op.method, path, { query, body: op.body ? args.body : undefined, auth: op.auth });
    };
  }
  return api;
}

function queryString(query) {
  if (!query) return "";
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) if (value !== undefined && value !== null) params.set(key, String(value));
  const text = params.toString();
  return text ? `?${text}` : "";
}

async function readBody(response) {
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return { error: { code: "HTTP_ERROR", message: text.slice(0, 200) } };
  }
}

/**
 * One subscription over a WebSocket that reconnects by itself. States: "connecting", "syncing", "live",
 * "reconnecting", "resynced" (live again after a reconnect, caught up), "closed".
 * Listeners: on("event", fn(event)), on("state", fn(state, detail)), on("frame", fn(frame)) for
 * typing/receipts/presence/notifications/errors, on("seq", fn(roomId, seq)) to persist positions.
 */
export class LiveConnection {
  constructor(client, {
    pingIntervalMs = 10_000, pongTimeoutMs = 5_000, backoff = {}, onSeq = null, online = globalThis,
  } = {}) {
    this.client = client;
    this.seqs = new Map();
    this.state = "connecting";
    this.pingIntervalMs = pingIntervalMs;
    this.pongTimeoutMs = pongTimeoutMs;
    this.backoff = backoff;
    this.listeners = new Map();
    this.attempt = 0;
    this.connections = 0;
    this.closed = false;
    this.socket = null;
    this.timers = new Set();
    this.wake = null;
    if (onSeq) this.on("seq", onSeq);
    this.online = online;
    this.onOnline = () => this.wake?.();
    this.onOffline = () => this.drop?.("offline");
    this.drop = null;
    online?.addEventListener?.("online", this.onOnline);
    online?.addEventListener?.("offline", this.onOffline);
  }

  /** Add a listener; returns a function removing it. */
  on(name, fn) {
    if (!this.listeners.has(name)) this.listeners.set(name, new Set());
    this.listeners.get(name).add(fn);
    return () => this.listeners.get(name).delete(fn);
  }

  #emit(name, ...args) {
    for (const fn of this.listeners.get(name) ?? []) {
      try {
        fn(...args);
      } catch (error) {
        queueMicrotask(() => { throw error; });
      }
    }
  }

  #setState(state, detail = {}) {
    this.state = state;
    this.#emit("state", state, detail);
  }

  /** The last seq received of each room, as an object. */
  positions() {
    return Object.fromEntries(this.seqs);
  }

  /** Begin following more rooms (ids, or id -> last seq); takes effect at once when connected. */
  async add(rooms) {
    await this.#adopt(rooms);
    this.#sendFrame({ type: "sync", rooms: this.positions() });
  }

  async #adopt(rooms) {
    const entries = Array.isArray(rooms) ? await Promise.all(rooms.map(async (id) => [id, this.seqs.get(id)
      ?? (await this.client.api.getRoomsRoomId({ room_id: id })).last_seq])) : Object.entries(rooms);
    for (const [id, seq] of entries) if (!this.seqs.has(id) || this.seqs.get(id) < seq) this.seqs.set(id, Number(seq));
  }

  async start(rooms) {
    try {
      await this.#adopt(rooms);
    } catch (error) {
      this.#emit("frame", { type: "error", code: error.code ?? "NETWORK_ERROR", message: error.message });
    }
    while (!this.closed) {
      const reconnectAfter = await this.#connectOnce();
      if (this.closed) break;
      const delay = reconnectAfter ?? backoffDelay(this.attempt, this.backoff);
      this.attempt += 1;
      this.#setState("reconnecting", { delayMs: delay, attempt: this.attempt });
      await this.#pause(delay);
    }
    this.#setState("closed");
  }

  #pause(ms) {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const self = this;
      function done() {
        clearTimeout(timer);
        self.wake = null;
        resolve();
      }
      this.wake = done;
    });
  }

  // One WebSocket's life: resolves when it is gone, with the delay the server asked for (if it did).
  async #connectOnce() {
    let url;
    try {
      const token = await this.client.request("POST", "/tokens", { retryNetwork: true });
      url = wsUrl(this.client.baseUrl, token.ws_url);
    } catch (error) {
      if (error instanceof RoomlogError && error.status === 401) this.#emit("frame", { type: "error", code: error.code, message: error.message });
      return null;
    }
    if (this.closed) return null;
    this.#setState(this.connections === 0 ? "connecting" : "reconnecting", { attempt: this.attempt });
    return new Promise((resolve) => {
      let reconnectAfter = null;
      let lastFrame = Date.now();
      let synced = false;
      const socket = new this.client.WebSocket(url);
      this.socket = socket;
      const heartbeat = setInterval(() => {
        if (Date.now() - lastFrame > this.pingIntervalMs + this.pongTimeoutMs) drop("no answer");
        else if (Date.now() - lastFrame >= this.pingIntervalMs) this.#sendFrame({ type: "ping" });
      }, Math.min(this.pingIntervalMs, this.pongTimeoutMs) / 2);
      const finish = () => {
        clearInterval(heartbeat);
        socket.onmessage = socket.onclose = socket.onopen = null;
        if (this.socket === socket) this.socket = null;
        if (this.drop === drop) this.drop = null;
        resolve(reconnectAfter);
      };
      // A socket we give up on (a gap, no pong, offline) is done at once: a browser may take long to close it.
      const drop = (reason) => {
        try {
          socket.close(4000, reason);
        } catch {
          // already closing
        }
        finish();
      };
      this.drop = drop;
      socket.onopen = () => {
        this.#setState("syncing");
        this.#sendFrame({ type: "sync", rooms: this.positions() });
      };
      socket.onmessage = (message) => {
        lastFrame = Date.now();
        let frame;
        try {
          frame = JSON.parse(typeof message.data === "string" ? message.data : new TextDecoder().decode(message.data));
        } catch {
          return;
        }
        if (frame.type === "server.shutdown") reconnectAfter = Math.max(0, Number(frame.reconnect_after_ms) || 0);
        if (frame.type === "resync") this.#emit("state", "resyncing", { rooms: frame.rooms });
        if (frame.type === "synced" && !synced) {
          synced = true;
          this.#caughtUp(frame);
        } else if (!this.#handle(frame)) {
          drop("gap");
        }
      };
      socket.onclose = finish;
      socket.onerror = () => {};
    });
  }

  // Deliver an event exactly once and in order; false on a gap (the caller reconnects and syncs again).
  #caughtUp(frame) {
    const again = this.connections > 0;
    this.connections += 1;
    this.attempt = 0;
    this.#setState(again ? "resynced" : "live", { rooms: frame.rooms });
    this.#emit("frame", frame);
  }

  #handle(frame) {
    if (SIGNAL_FRAMES.has(frame.type) || frame.room_id === undefined || typeof frame.seq !== "number") {
      this.#emit("frame", frame);
      return true;
    }
    const last = this.seqs.get(frame.room_id);
    if (last === undefined || frame.seq <= last) return true; // not followed, or already delivered
    if (frame.seq !== last + 1) return false;
    this.seqs.set(frame.room_id, frame.seq);
    this.#emit("event", frame);
    this.#emit("seq", frame.room_id, frame.seq);
    return true;
  }

  #sendFrame(frame) {
    if (this.socket && this.socket.readyState === 1) this.socket.send(JSON.stringify(frame));
  }

  /** Tell the room's other members that this user is (or stopped) typing. */
  typing(roomId, on = true) {
    this.#sendFrame({ type: on ? "typing.start" : "typing.stop", room_id: roomId });
  }

  /** Mark `seq` of a room read (broadcast as read.receipt). */
  read(roomId, seq) {
    this.#sendFrame({ type: "read", room_id: roomId, seq });
  }

  /** Stop for good: no more reconnects. */
  close() {
    this.closed = true;
    this.online?.removeEventListener?.("online", this.onOnline);
    this.online?.removeEventListener?.("offline", this.onOffline);
    this.wake?.();
    this.socket?.close(1000, "bye");
    this.drop?.("closed");
  }
}

function wsUrl(baseUrl, path) {
  const base = new URL(baseUrl || globalThis.location.href);
  const url = new URL(path, base);
  url.protocol = base.protocol === "https:" ? "wss:" : "ws:";
  return url.toString();
}

// The roomlog web console: plain ES modules on the JavaScript SDK, no build step.
import { RoomlogClient, RoomlogError } from "./sdk/roomlog.js";

const STORE = "roomlog.console.auth";
const PAGE = 30;
const STATE_TEXT = {
  connecting: "connecting…", syncing: "syncing…", live: "live", reconnecting: "reconnecting…",
  resyncing: "resyncing…", resynced: "resynced", closed: "disconnected",
};
const QUICK_REACTIONS = ["👍", "🎉", "❤️"];
const TYPING_SECONDS = 6;

const $ = (id) => document.getElementById(id);

/** An element with attributes (`on…` functions become listeners) and children (strings become text). */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) if (child !== null && child !== undefined) node.append(child);
  return node;
}

function time(iso) {
  const at = new Date(iso);
  return el("time", { datetime: iso, title: at.toLocaleString() }, at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }));
}

function errorText(error) {
  if (error instanceof RoomlogError) return `${error.message} (${error.code})`;
  return String(error?.message ?? error);
}

// A search snippet is HTML-escaped text with <mark> around matches: keep exactly those, as text and <mark>s.
function highlighted(snippet) {
  const doc = new DOMParser().parseFromString(`<p>${snippet}</p>`, "text/html");
  const out = [];
  for (const node of doc.body.firstChild?.childNodes ?? []) {
    if (node.nodeType === Node.TEXT_NODE) out.push(node.textContent);
    else if (node.nodeName === "MARK") out.push(el("mark", {}, node.textContent));
    else out.push(node.textContent);
  }
  return out;
}

// --- state ------------------------------------------------------------------------------------------------

let client = null;
let live = null;
let me = null;
let tenantId = null;
const rooms = new Map(); // room_id -> room as GET /rooms gives it, kept current by live events
const views = new Map(); // room_id -> { messages: Map(message_id -> message), items: Map(message_id -> li), oldest, complete }
const typing = new Map(); // room_id -> Map(user_id -> expiry ms)
const presence = new Map(); // user_id -> status as others see it ("online", "away", "dnd", "offline")
const refetching = new Map(); // message_id -> promise chain, so refetches of one message land in order
let current = null;
let threadTarget = null;
let typingSentAt = 0;
let inboxTimer = null;

// --- sign in ----------------------------------------------------------------------------------------------

function showSignIn(message = "") {
  $("app").hidden = true;
  $("signin").hidden = false;
  $("signin-error").textContent = message;
}

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const candidate = new RoomlogClient({ baseUrl: location.origin });
  try {
    const answer = await candidate.login(form.get("email"), form.get("password"));
    save({ accessToken: answer.access_token, refreshToken: answer.refresh_token });
    await start();
  } catch (error) {
    showSignIn(errorText(error));
  }
});

$("key-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  save({ apiKey: form.get("api_key").trim(), userId: form.get("user_id").trim() });
  await start();
});

$("sign-out").addEventListener("click", async () => {
  if (client?.accessToken) await client.api.postAuthLogout().catch(() => {});
  stop();
  sessionStorage.removeItem(STORE);
  showSignIn();
});

function save(auth) {
  sessionStorage.setItem(STORE, JSON.stringify(auth));
}

function stop() {
  live?.close();
  live = null;
  clearInterval(inboxTimer);
  rooms.clear();
  views.clear();
  platform = null;
  $("limits-form").hidden = true;
  current = null;
}

async function start() {
  const auth = JSON.parse(sessionStorage.getItem(STORE) ?? "null");
  if (!auth) return showSignIn();
  stop();
  client = new RoomlogClient({
    baseUrl: location.origin, ...auth,
    onTokens: (tokens) => save({ accessToken: tokens.access_token, refreshToken: tokens.refresh_token }),
  });
  try {
    // Who the caller is and their tenant; a tenant backend's user without an account may have no /auth/me.
    const who = await client.api.getAuthMe().catch((error) => { if (!auth.userId) throw error; return null; });
    me = auth.userId ?? who.user.user_id;
    tenantId = who?.tenant.tenant_id ?? null;
    await loadInbox();
  } catch (error) {
    sessionStorage.removeItem(STORE);
    return showSignIn(errorText(error));
  }
  $("signin").hidden = true;
  $("app").hidden = false;
  $("me").textContent = `signed in as ${me}`;
  live = client.subscribe(Object.fromEntries([...rooms.values()].map((r) => [r.room_id, r.last_seq])));
  live.on("state", showState);
  live.on("event", onEvent);
  live.on("frame", onFrame);
  inboxTimer = setInterval(() => loadInbox().catch(() => {}), 15_000);
  showState(live.state);
  show("chat");
}

// --- connection state -------------------------------------------------------------------------------------

function showState(state) {
  const badge = $("connection");
  badge.dataset.state = state;
  badge.textContent = STATE_TEXT[state] ?? state;
  if (state === "resynced") loadInbox().catch(() => {});
}

// --- inbox ------------------------------------------------------------------------------------------------

async function loadInbox() {
  // Archived rooms are left out of the default inbox: read them too, for the "Archived" list.
  const [listed, archived] = await Promise.all([
    client.api.getRooms({ limit: 100 }), client.api.getRooms({ limit: 100, archived: "true" }),
  ]);
  for (const room of [...listed, ...archived]) {
    const known = rooms.get(room.room_id);
    if (!known) {
      rooms.set(room.room_id, room);
      live?.add({ [room.room_id]: room.last_seq });
    } else {
      Object.assign(known, { ...room, last_seq: Math.max(known.last_seq, room.last_seq) });
      if (room.room_id === current) Object.assign(known, { unread_count: 0, mention_count: 0 });
    }
  }
  renderInbox();
}

function roomName(room) {
  return room.name || (room.type === "dm" ? `DM ${room.unique_key ?? room.room_id.slice(0, 8)}` : `room ${room.room_id.slice(0, 8)}`);
}

function renderInbox() {
  const items = [...rooms.values()].sort((a, b) => roomName(a).localeCompare(roomName(b)));
  const archived = items.filter((room) => room.is_archived);
  $("rooms").replaceChildren(...items.filter((room) => !room.is_archived).map(inboxItem));
  $("archived-rooms").replaceChildren(...archived.map(inboxItem));
  $("archived-count").textContent = `(${archived.length})`;
  if (current) renderRoomState();
}

function inboxItem(room) {
  const unread = room.unread_count ?? 0;
  const mentions = room.mention_count ?? 0;
  const preview = room.last_message && !room.last_message.deleted ? room.last_message.preview : "";
  return el("li", {},
    el("button", {
      type: "button", "aria-current": room.room_id === current ? "true" : "false", dataset: { roomId: room.room_id },
      "aria-label": `${roomName(room)}${unread ? `, ${unread} unread` : ""}${mentions ? `, ${mentions} ${mentions === 1 ? "mention" : "mentions"}` : ""}${room.is_muted ? ", muted" : ""}`,
      onclick: () => openRoom(room.room_id),
    },
    el("span", { class: "room-text" },
      el("span", { class: "room-name" }, roomName(room)),
      preview ? el("span", { class: "preview", "aria-hidden": "true" }, `${room.last_message.sender_id}: ${preview}`) : null),
    el("span", { class: "room-badges" },
      room.is_muted ? el("span", { class: "muted-mark", "aria-hidden": "true", title: "muted" }, "🔕") : null,
      mentions ? el("span", { class: "badge mention", "aria-hidden": "true" }, `@${mentions}`) : null,
      unread ? el("span", { class: "badge unread", "aria-hidden": "true" }, String(unread)) : null)));
}

// The open room's own mute and archive switches.
function renderRoomState() {
  const room = rooms.get(current);
  if (!room) return;
  $("room-mute").setAttribute("aria-pressed", String(Boolean(room.is_muted)));
  $("room-mute").textContent = room.is_muted ? "Unmute" : "Mute";
  $("room-archive").setAttribute("aria-pressed", String(Boolean(room.is_archived)));
  $("room-archive").textContent = room.is_archived ? "Unarchive" : "Archive";
}

async function toggleRoom(kind) {
  const room = rooms.get(current);
  const on = kind === "mute" ? !room.is_muted : !room.is_archived;
  const args = { room_id: room.room_id };
  try {
    const state = kind === "mute"
      ? await (on ? client.api.postRoomsRoomIdMute(args) : client.api.deleteRoomsRoomIdMute(args))
      : await (on ? client.api.postRoomsRoomIdArchive(args) : client.api.deleteRoomsRoomIdArchive(args));
    Object.assign(room, { is_muted: state.is_muted, is_archived: state.is_archived });
    if (kind === "archive" && on) $("archived-box").open = true; // the open room stays in sight
    renderInbox();
  } catch (error) {
    alert(errorText(error));
  }
}

$("room-mute").addEventListener("click", () => toggleRoom("mute"));
$("room-archive").addEventListener("click", () => toggleRoom("archive"));

$("new-room").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const members = String(form.get("members")).split(",").map((m) => m.trim()).filter(Boolean);
  const name = String(form.get("name")).trim();
  try {
    const room = await client.api.postRooms({ body: { type: "group", members, ...(name ? { name } : {}) } });
    rooms.set(room.room_id, { ...room, unread_count: 0 });
    await live.add({ [room.room_id]: room.last_seq });
    event.target.reset();
    renderInbox();
    await openRoom(room.room_id);
  } catch (error) {
    alert(errorText(error));
  }
});

// --- a room -----------------------------------------------------------------------------------------------

async function openRoom(roomId) {
  show("chat");
  current = roomId;
  threadTarget = null;
  renderThreadTarget();
  const room = rooms.get(roomId);
  $("room").hidden = false;
  $("no-room").hidden = true;
  $("room-title").textContent = roomName(room);
  if (!views.has(roomId)) {
    const view = { messages: new Map(), items: new Map(), oldest: null, complete: false, members: [] };
    views.set(roomId, view);
    $("messages").replaceChildren();
    await Promise.all([loadOlder(view, roomId), loadMembers(view, roomId)]);
  }
  renderMembers();
  renderRoom();
  markRead(roomId);
  renderInbox();
  $("compose").focus();
}

async function loadOlder(view, roomId) {
  const page = await client.api.getRoomsRoomIdMessages({
    room_id: roomId, limit: PAGE, ...(view.oldest !== null ? { before_seq: view.oldest } : {}),
  });
  for (const message of page) if (!view.messages.has(message.message_id)) view.messages.set(message.message_id, message);
  if (page.length) view.oldest = Math.min(view.oldest ?? Infinity, page[0].seq);
  view.complete = page.length < PAGE || view.oldest <= 1;
}

async function loadMembers(view, roomId) {
  const members = await client.api.getRoomsRoomIdMembers({ room_id: roomId });
  view.members = members.map((m) => m.user_id);
  // The member list carries each member's presence as of the read; presence.updated frames keep it current.
  for (const m of members) if (m.status) presence.set(m.user_id, m.status);
}

// Presence: the status the member list gave, then each presence.updated frame.
function renderMembers() {
  const view = views.get(current);
  if (!view) return;
  $("members").replaceChildren(...view.members.flatMap((user, index) => {
    const status = user === me ? "online" : presence.get(user);
    return [index ? ", " : "", el("span", { class: status ?? "unknown" }, status ? `${user} (${status})` : user)];
  }));
}

$("older").addEventListener("click", async () => {
  const view = views.get(current);
  const list = $("messages");
  const height = list.scrollHeight;
  await loadOlder(view, current);
  renderRoom({ keepScroll: height });
});

function markRead(roomId) {
  const room = rooms.get(roomId);
  if (!room || document.hidden) return;
  if (room.unread_count || room.mention_count) {
    Object.assign(room, { unread_count: 0, mention_count: 0 });
    renderInbox();
  }
  if (room.last_seq > (room.read_seq ?? 0)) {
    room.read_seq = room.last_seq;
    client.api.postRoomsRoomIdRead({ room_id: roomId, body: { seq: room.last_seq } }).catch(() => {});
  }
}

document.addEventListener("visibilitychange", () => current && markRead(current));

function renderRoom({ keepScroll = null } = {}) {
  const view = views.get(current);
  const list = $("messages");
  const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  const ordered = [...view.messages.values()].sort((a, b) => a.seq - b.seq);
  const wanted = ordered.map((message) => messageItem(view, message));
  // Keyed in place: existing items move only when needed, so focus inside them stays.
  wanted.forEach((item, index) => {
    if (list.children[index] !== item) list.insertBefore(item, list.children[index] ?? null);
  });
  while (list.children.length > wanted.length) list.lastChild.remove();
  $("older").hidden = view.complete;
  if (keepScroll !== null) list.scrollTop = list.scrollHeight - keepScroll;
  else if (nearBottom) list.scrollTop = list.scrollHeight;
  renderTyping();
}

function messageItem(view, message) {
  let item = view.items.get(message.message_id);
  if (!item) {
    item = el("li", { class: "message", dataset: { messageId: message.message_id } });
    view.items.set(message.message_id, item);
  }
  const focused = item.contains(document.activeElement) ? document.activeElement.dataset.action : null;
  const deleted = Boolean(message.deleted_at);
  item.className = `message${message.thread_id ? " reply" : ""}${deleted ? " deleted" : ""}`;
  item.dataset.seq = String(message.seq);
  const root = message.thread_id ? view.messages.get(message.thread_id) : null;
  const mine = message.sender_id === me;
  item.replaceChildren(...[
    el("div", { class: "head" },
      el("span", { class: "sender" }, message.sender_id),
      time(message.created_at),
      message.edited_at && !deleted ? el("span", { class: "edited" }, "(edited)") : null,
      message.thread_id ? el("span", { class: "in-thread" }, `↪ in thread${root ? `: ${root.content.slice(0, 40)}` : ""}`) : null,
      message.reply_count ? el("span", { class: "replies" }, `${message.reply_count} ${message.reply_count === 1 ? "reply" : "replies"}`) : null),
    (item.dataset.editing === "true" && !deleted ? item.querySelector(".edit-form") : null)
      ?? el("p", { class: "body" }, deleted ? "message deleted" : message.content),
    attachmentsOf(message),
    deleted ? null : reactionsOf(message),
    deleted ? null : el("div", { class: "actions" },
      message.thread_id ? null : el("button", { type: "button", dataset: { action: "reply" }, "aria-label": `Reply in thread to ${message.sender_id}`, onclick: () => startThread(message) }, "Reply in thread"),
      mine ? el("button", { type: "button", dataset: { action: "edit" }, "aria-label": "Edit message", onclick: () => startEdit(view, message) }, "Edit") : null,
      mine ? el("button", { type: "button", dataset: { action: "delete" }, "aria-label": "Delete message", onclick: () => deleteMessage(message) }, "Delete") : null,
      ...QUICK_REACTIONS.filter((emoji) => !message.reactions?.some((r) => r.emoji === emoji))
        .map((emoji) => el("button", { type: "button", dataset: { action: `react-${emoji}` }, "aria-label": `React with ${emoji}`, onclick: () => react(message, emoji, true) }, `+${emoji}`))),
  ].filter(Boolean));
  if (focused) item.querySelector(`[data-action="${CSS.escape(focused)}"]`)?.focus();
  return item;
}

function attachmentsOf(message) {
  if (!message.attachments?.length) return null;
  return el("ul", { class: "attachments" }, message.attachments.map((a) => el("li", {}, `📎 ${a.filename} (${a.content_type}, ${a.size} bytes)`)));
}

function reactionsOf(message) {
  if (!message.reactions?.length) return null;
  return el("div", { class: "reactions", role: "group", "aria-label": "Reactions" }, message.reactions.map((r) => el("button", {
    type: "button", "aria-pressed": r.me ? "true" : "false", dataset: { action: `reaction-${r.emoji}` },
    "aria-label": `${r.emoji} ${r.count}${r.me ? ", yours: take it back" : ", add yours"}`,
    onclick: () => react(message, r.emoji, !r.me),
  }, `${r.emoji} ${r.count}`)));
}

function editForm(message) {
  const input = el("input", { name: "content", value: message.content, "aria-label": "Edited message", required: true });
  const form = el("form", {
    class: "edit-form",
    onsubmit: async (event) => {
      event.preventDefault();
      try {
        await client.api.patchRoomsRoomIdMessagesMessageId({ room_id: current, message_id: message.message_id, body: { content: input.value } });
        stopEdit(message, input.value);
      } catch (error) {
        alert(errorText(error));
      }
    },
    onkeydown: (event) => { if (event.key === "Escape") stopEdit(message); },
  }, input, el("button", { type: "submit" }, "Save"), el("button", { type: "button", onclick: () => stopEdit(message) }, "Cancel"));
  queueMicrotask(() => input.focus());
  return form;
}

function startEdit(view, message) {
  const item = view.items.get(message.message_id);
  item.dataset.editing = "true";
  item.querySelector(".body")?.replaceWith(editForm(message));
}

function stopEdit(message, content) {
  const view = views.get(current);
  const item = view.items.get(message.message_id);
  item.dataset.editing = "false";
  if (content !== undefined) Object.assign(message, { content, edited_at: message.edited_at ?? new Date().toISOString() });
  messageItem(view, message);
  item.querySelector('[data-action="edit"]')?.focus();
}

async function deleteMessage(message) {
  if (!confirm("Delete this message?")) return;
  try {
    await client.api.deleteRoomsRoomIdMessagesMessageId({ room_id: current, message_id: message.message_id });
  } catch (error) {
    alert(errorText(error));
  }
}

async function react(message, emoji, add) {
  try {
    const changed = add
      ? await client.api.postRoomsRoomIdMessagesMessageIdReactions({ room_id: current, message_id: message.message_id, body: { emoji } })
      : await client.api.deleteRoomsRoomIdMessagesMessageIdReactionsEmoji({ room_id: current, message_id: message.message_id, emoji });
    message.reactions = changed.reactions;
    renderRoom();
  } catch (error) {
    alert(errorText(error));
  }
}

function startThread(message) {
  threadTarget = message;
  renderThreadTarget();
  $("compose").focus();
}

function renderThreadTarget() {
  $("thread-target").hidden = !threadTarget;
  $("thread-quote").textContent = threadTarget ? threadTarget.content.slice(0, 60) : "";
}

$("thread-cancel").addEventListener("click", () => {
  threadTarget = null;
  renderThreadTarget();
  $("compose").focus();
});

// --- composing --------------------------------------------------------------------------------------------

$("composer").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = $("compose");
  const content = input.value.trim();
  if (!content || !current) return;
  input.value = "";
  typingSentAt = 0;
  live.typing(current, false);
  try {
    const mentions = mentionsIn(content);
    await client.send(current, content, {
      ...(threadTarget ? { threadId: threadTarget.message_id } : {}), ...(mentions.length ? { mentions } : {}),
    });
    threadTarget = null;
    renderThreadTarget();
  } catch (error) {
    input.value = content;
    alert(errorText(error));
  }
});

// `@user_id` of a member of the room mentions them.
function mentionsIn(content) {
  const members = new Set(views.get(current)?.members ?? []);
  const named = [...content.matchAll(/(?:^|\s)@([^\s@,.;:!?]+)/g)].map((match) => match[1]);
  return [...new Set(named)].filter((user) => members.has(user) && user !== me);
}

$("compose").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    $("composer").requestSubmit();
  }
});

$("compose").addEventListener("input", () => {
  if (!current || Date.now() - typingSentAt < 3000) return;
  typingSentAt = Date.now();
  live.typing(current, true);
});

function renderTyping() {
  const now = Date.now();
  const who = [...(typing.get(current) ?? new Map())].filter(([user, until]) => user !== me && until > now).map(([user]) => user);
  $("typing").textContent = who.length ? `${who.join(", ")} ${who.length === 1 ? "is" : "are"} typing…` : "";
}

setInterval(renderTyping, 1000);

// --- live events ------------------------------------------------------------------------------------------

function onEvent(event) {
  const room = rooms.get(event.room_id);
  if (!room) return;
  room.last_seq = Math.max(room.last_seq, event.seq);
  const view = views.get(event.room_id);
  const data = event.data ?? {};
  if (event.type === "message.new") {
    const sender = data.sender_id ?? event.actor;
    // A new message brings an archived room back to the inbox, unless it is muted (as the server does).
    if (room.is_archived && !room.is_muted) room.is_archived = false;
    room.last_message = { message_id: data.message_id, seq: event.seq, sender_id: sender, preview: (data.content ?? "").slice(0, 140), deleted: false };
    renderInbox();
    if (sender !== me && (event.room_id !== current || document.hidden)) {
      room.unread_count = (room.unread_count ?? 0) + 1;
      if (Array.isArray(data.mentions) && data.mentions.includes(me)) room.mention_count = (room.mention_count ?? 0) + 1;
      renderInbox();
    }
    typing.get(event.room_id)?.delete(sender);
    if (view && !view.messages.has(data.message_id)) {
      view.messages.set(data.message_id, {
        message_id: data.message_id, sender_id: sender, seq: event.seq, content: data.content ?? "",
        meta: data.meta ?? null, created_at: event.created_at, thread_id: data.thread_id ?? null,
        reactions: [], reply_count: 0, type: data.message_type ?? "text", attachments: data.attachments ?? [],
      });
      const root = data.thread_id ? view.messages.get(data.thread_id) : null;
      if (root) root.reply_count = (root.reply_count ?? 0) + 1;
    }
    if (event.room_id === current) {
      renderRoom();
      markRead(current);
    }
    return;
  }
  if (data.message_id && view?.messages.has(data.message_id)) refetch(event.room_id, data.message_id);
  if ((event.type === "member.joined" || event.type === "member.removed") && view) {
    loadMembers(view, event.room_id).then(() => event.room_id === current && renderMembers()).catch(() => {});
  }
  if (event.type === "room.updated" && "name" in data) {
    room.name = data.name;
    renderInbox();
    if (event.room_id === current) $("room-title").textContent = roomName(room);
  }
}

// An edit, deletion or reaction: read the message as it is now (at least as new as the event), one read at a time.
function refetch(roomId, messageId) {
  const chain = (refetching.get(messageId) ?? Promise.resolve()).then(async () => {
    const fresh = await client.api.getRoomsRoomIdMessagesMessageId({ room_id: roomId, message_id: messageId });
    const view = views.get(roomId);
    const known = view?.messages.get(messageId);
    if (!known) return;
    Object.assign(known, fresh);
    if (roomId === current) renderRoom();
  }).catch(() => {});
  refetching.set(messageId, chain);
}

function onFrame(frame) {
  if (frame.type === "typing") {
    if (!typing.has(frame.room_id)) typing.set(frame.room_id, new Map());
    if (frame.typing) typing.get(frame.room_id).set(frame.user_id, Date.now() + TYPING_SECONDS * 1000);
    else typing.get(frame.room_id).delete(frame.user_id);
    if (frame.room_id === current) renderTyping();
  } else if (frame.type === "presence.updated") {
    presence.set(frame.user_id, frame.status);
    renderMembers();
  } else if (frame.type?.startsWith("support.")) {
    onSupportFrame(frame);
  } else if (frame.type === "read.receipt" && frame.user_id === me && rooms.has(frame.room_id)) {
    const room = rooms.get(frame.room_id);
    room.read_seq = Math.max(room.read_seq ?? 0, frame.seq);
  }
}

// --- search -----------------------------------------------------------------------------------------------

$("search-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const q = $("search-q").value.trim();
  if (!q) return;
  const hits = $("hits");
  try {
    const found = await client.api.getSearchMessages({ q, limit: 20 });
    $("search-count").textContent = `${found.total} ${found.total === 1 ? "message matches" : "messages match"}`
      + (found.next_cursor ? ` (newest ${found.data.length} shown)` : "");
    hits.replaceChildren(...(found.data.length ? found.data.map((hit) => el("li", { class: "hit" },
      el("div", { class: "head" }, el("strong", {}, hit.sender_id), " in ",
        el("button", { type: "button", onclick: () => openRoom(hit.room_id) }, roomName(rooms.get(hit.room_id) ?? { room_id: hit.room_id })),
        " ", time(hit.created_at)),
      hit.highlights.map((fragment) => el("p", { class: "snippet" }, highlighted(fragment))))) : [el("li", {}, "No messages match.")]));
  } catch (error) {
    $("search-count").textContent = "";
    hits.replaceChildren(el("li", { class: "error" }, errorText(error)));
  }
  show("search");
  $("search-title").focus();
});

$("search-close").addEventListener("click", () => {
  show("chat");
  $("search-q").focus();
});

// --- dead letters -----------------------------------------------------------------------------------------

async function loadLetters() {
  const status = $("admin-status");
  try {
    const letters = await client.api.getAdminDeadLetters({ limit: 100 });
    const rows = [
      ...letters.failed_messages.map((l) => ({ ...l, kind: "message.offline", target: `${l.user_id} in ${l.room_id ?? "?"}` })),
      ...letters.failed_notifications.map((l) => ({ ...l, kind: "notification", target: l.topic ?? l.notification_id ?? "" })),
    ];
    $("letters").replaceChildren(...rows.map((letter) => el("tr", { dataset: { letterId: letter.id } },
      el("td", {}, letter.kind), el("td", {}, letter.target), el("td", {}, String(letter.attempts)), el("td", {}, letter.error),
      el("td", {},
        el("button", { type: "button", "aria-label": `Retry delivery ${letter.id}`, onclick: () => handleLetter(letter, "retry") }, "Retry"),
        " ",
        el("button", { type: "button", "aria-label": `Discard delivery ${letter.id}`, onclick: () => handleLetter(letter, "discard") }, "Discard")))));
    status.textContent = rows.length ? `${rows.length} open` : "No dead letters.";
  } catch (error) {
    status.textContent = errorText(error);
  }
}

async function handleLetter(letter, action) {
  try {
    if (action === "retry") await client.api.postAdminDeadLettersIdRetry({ id: letter.id });
    else await client.api.deleteAdminDeadLettersId({ id: letter.id });
    await loadLetters();
    $("admin-status").textContent = `${action === "retry" ? "Queued again" : "Discarded"}: ${letter.id}`;
  } catch (error) {
    $("admin-status").textContent = errorText(error);
  }
}

$("admin-refresh").addEventListener("click", loadLetters);

// --- webhooks ---------------------------------------------------------------------------------------------

let webhookEvents = null;

// The event names a webhook may take, from the API's own description (so the console never lists them twice).
async function loadWebhookEvents() {
  if (webhookEvents) return webhookEvents;
  const doc = await (await fetch("/openapi.json")).json();
  webhookEvents = doc.components.schemas.CreateWebhook.properties.events.items.enum;
  $("webhook-events").replaceChildren(...webhookEvents.map((name) => el("label", { class: "choice" },
    el("input", { type: "checkbox", name: "events", value: name }), ` ${name}`)));
  return webhookEvents;
}

async function loadWebhooks() {
  const status = $("webhooks-status");
  try {
    await loadWebhookEvents();
    const hooks = await client.api.getWebhooks();
    $("webhook-rows").replaceChildren(...hooks.map((hook) => el("tr", { dataset: { webhookId: hook.webhook_id } },
      el("td", {}, hook.url), el("td", {}, hook.events.join(", ")), el("td", {}, time(hook.created_at)),
      el("td", {}, el("button", { type: "button", "aria-label": `Delete webhook ${hook.url}`, onclick: () => deleteWebhook(hook) }, "Delete")))));
    if (!status.textContent) status.textContent = hooks.length ? `${hooks.length} ${hooks.length === 1 ? "webhook" : "webhooks"}` : "No webhooks.";
  } catch (error) {
    status.textContent = errorText(error);
  }
}

$("webhook-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const events = form.getAll("events").map(String);
  if (!events.length) {
    $("webhooks-status").textContent = "Choose at least one event.";
    return;
  }
  try {
    const made = await client.api.postWebhooks({ body: { url: String(form.get("url")).trim(), events } });
    event.target.reset();
    showOnce("webhook-secret", made.secret);
    $("webhooks-status").textContent = `Created the webhook for ${made.url}.`;
    await loadWebhooks();
  } catch (error) {
    $("webhooks-status").textContent = errorText(error);
  }
});

async function deleteWebhook(hook) {
  if (!confirm(`Delete the webhook for ${hook.url}?`)) return;
  try {
    await client.api.deleteWebhooksWebhookId({ webhook_id: hook.webhook_id });
    $("webhooks-status").textContent = `Deleted the webhook for ${hook.url}.`;
    await loadWebhooks();
  } catch (error) {
    $("webhooks-status").textContent = errorText(error);
  }
}

// A secret the API shows only in its create answer: shown until the page is left, never stored.
function showOnce(box, secret) {
  $(box).hidden = false;
  const input = $(`${box}-value`);
  input.value = secret;
  input.focus();
  input.select();
}

// --- API keys ---------------------------------------------------------------------------------------------

async function loadKeys() {
  const status = $("keys-status");
  try {
    const keys = await client.api.getApiKeys();
    $("key-rows").replaceChildren(...keys.map((key) => el("tr", { dataset: { keyId: key.key_id }, class: key.revoked_at ? "revoked" : null },
      el("td", {}, key.name), el("td", {}, el("code", {}, key.prefix)), el("td", {}, key.role), el("td", {}, time(key.created_at)),
      el("td", {}, key.revoked_at ? time(key.revoked_at) : "—"),
      el("td", {}, key.revoked_at ? "revoked" : el("button", {
        type: "button", "aria-label": `Revoke key ${key.name}`, onclick: () => revokeKey(key),
      }, "Revoke")))));
    if (!status.textContent) status.textContent = `${keys.filter((k) => !k.revoked_at).length} active`;
  } catch (error) {
    status.textContent = errorText(error);
  }
}

$("key-create").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  try {
    const made = await client.api.postApiKeys({ body: { name: String(form.get("name")).trim(), role: String(form.get("role")) } });
    event.target.reset();
    showOnce("key-secret", made.api_key);
    $("keys-status").textContent = `Created key ${made.name} (${made.prefix}…).`;
    await loadKeys();
  } catch (error) {
    $("keys-status").textContent = errorText(error);
  }
});

async function revokeKey(key) {
  if (!confirm(`Revoke the key ${key.name}? Whatever uses it stops working.`)) return;
  try {
    await client.api.deleteApiKeysKeyId({ key_id: key.key_id });
    $("keys-status").textContent = `Revoked key ${key.name}.`;
    await loadKeys();
  } catch (error) {
    $("keys-status").textContent = errorText(error);
  }
}

// --- tenant limits ----------------------------------------------------------------------------------------

let platform = null; // { client, tenantId } once the platform admin key was given on this page

function limitsPage() {
  if (!$("limits-tenant").value && tenantId) $("limits-tenant").value = tenantId;
}

$("limits-auth").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  platform = {
    client: new RoomlogClient({ baseUrl: location.origin, apiKey: String(form.get("key")).trim() }),
    tenantId: String(form.get("tenant_id")).trim(),
  };
  await loadLimits();
});

async function loadLimits(message = "") {
  const status = $("limits-status");
  try {
    const [tenant, media] = await Promise.all([
      platform.client.api.getAdminTenantsTenantId({ tenant_id: platform.tenantId }),
      platform.client.api.getAdminTenantsTenantIdMediaLimits({ tenant_id: platform.tenantId }),
    ]);
    const form = $("limits-form");
    const own = new Set(media.overridden);
    form.elements.rate_limit.value = tenant.rate_limit ?? "";
    form.elements.send_rate_limit.value = tenant.send_rate_limit ?? "";
    for (const field of ["max_bytes", "quota_bytes"]) {
      form.elements[field].value = own.has(field) ? media[field] : "";
      form.elements[field].placeholder = String(media[field]);
    }
    form.elements.allowed_types.value = own.has("allowed_types") ? media.allowed_types.join(", ") : "";
    form.elements.allowed_types.placeholder = media.allowed_types.join(", ");
    form.hidden = false;
    status.textContent = message || `Limits of ${tenant.name} (${tenant.tenant_id}).`;
  } catch (error) {
    $("limits-form").hidden = true;
    status.textContent = errorText(error);
  }
}

$("limits-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const fields = event.target.elements;
  const number = (name) => (fields[name].value.trim() === "" ? null : Number(fields[name].value));
  const types = fields.allowed_types.value.split(",").map((t) => t.trim()).filter(Boolean);
  const args = { tenant_id: platform.tenantId };
  try {
    await platform.client.api.patchAdminTenantsTenantId({ ...args, body: { rate_limit: number("rate_limit"), send_rate_limit: number("send_rate_limit") } });
    await platform.client.api.putAdminTenantsTenantIdMediaLimits({ ...args, body: {
      max_bytes: number("max_bytes"), quota_bytes: number("quota_bytes"), allowed_types: types.length ? types : null,
    } });
    await loadLimits("Saved.");
  } catch (error) {
    $("limits-status").textContent = errorText(error);
  }
});

// --- the agent desk ---------------------------------------------------------------------------------------

const WORKING = new Set(["active", "on_hold"]);

async function loadDesk() {
  const status = $("desk-status");
  try {
    const [mine, queued, transferred] = await Promise.all([
      client.api.getSupportSessions({ agent_id: me, limit: 100 }),
      client.api.getSupportSessions({ status: "queued", limit: 100 }),
      client.api.getSupportSessions({ status: "transferred", limit: 100 }),
    ]);
    const working = mine.filter((session) => WORKING.has(session.status));
    const waiting = [...queued, ...transferred].sort((a, b) => a.queue_position - b.queue_position);
    $("my-sessions").replaceChildren(...(working.length ? working.map(mySession) : [el("li", { class: "hint" }, "No sessions assigned to you.")]));
    $("queue").replaceChildren(...(waiting.length ? waiting.map(queuedSession) : [el("li", { class: "hint" }, "Nobody is waiting.")]));
    status.textContent = `${working.length} yours, ${waiting.length} waiting`;
  } catch (error) {
    status.textContent = errorText(error);
  }
}

function sessionHead(session) {
  return el("div", { class: "head" },
    el("strong", {}, session.customer.name || session.customer.id),
    el("span", { class: `badge status-${session.status}` }, session.status.replace("_", " ")),
    el("span", { class: `badge priority-${session.priority}` }, session.priority),
    el("span", {}, session.channel), time(session.created_at));
}

function mySession(session) {
  const who = session.customer.name || session.customer.id;
  const target = el("input", { name: "agent", required: true, "aria-label": `Transfer ${who} to agent`, placeholder: "agent id" });
  return el("li", { class: "session", dataset: { sessionId: session.session_id } },
    sessionHead(session),
    el("div", { class: "actions" },
      el("button", { type: "button", "aria-label": `Open chat with ${who}`, onclick: () => openSessionChat(session) }, "Open chat"),
      el("form", {
        class: "inline-form",
        onsubmit: (event) => {
          event.preventDefault();
          sessionAction(session, "transfer", { target_type: "agent", target_id: target.value.trim() });
        },
      }, target, el("button", { type: "submit", "aria-label": `Transfer ${who}` }, "Transfer")),
      el("button", { type: "button", "aria-label": `End session with ${who}`, onclick: () => sessionAction(session, "end", { resolution: "resolved" }) }, "End")));
}

function queuedSession(session) {
  const who = session.customer.name || session.customer.id;
  return el("li", { class: "session", dataset: { sessionId: session.session_id } },
    sessionHead(session),
    el("p", { class: "wait" }, `position ${session.queue_position}, about ${session.estimated_wait_minutes} min`),
    // Assigning is routing's: "take" transfers a queued session to me, and routing gives it me once I have room.
    // A transferred one already waits for its agent or team.
    session.status === "queued" ? el("div", { class: "actions" },
      el("button", { type: "button", "aria-label": `Take ${who}`, onclick: () => sessionAction(session, "transfer", { target_type: "agent", target_id: me }) }, "Take")) : null);
}

async function sessionAction(session, action, body) {
  const args = { session_id: session.session_id, body };
  try {
    const changed = action === "end" ? await client.api.postSupportSessionsSessionIdEnd(args)
      : await client.api.postSupportSessionsSessionIdTransfer(args);
    await loadDesk();
    $("desk-status").textContent = `${action === "end" ? "Ended" : "Transferred"}: ${session.customer.id} (${changed.status.replace("_", " ")})`;
  } catch (error) {
    $("desk-status").textContent = errorText(error);
  }
}

// A session's customer chat is its room: the ordinary room view.
async function ensureRoom(roomId) {
  if (rooms.has(roomId)) return;
  const room = await client.api.getRoomsRoomId({ room_id: roomId });
  rooms.set(roomId, room);
  await live?.add({ [roomId]: room.last_seq });
  renderInbox();
}

async function openSessionChat(session) {
  try {
    await ensureRoom(session.room_id);
    const room = rooms.get(session.room_id);
    if (!room.name) room.name = `Support: ${session.customer.name || session.customer.id}`;
    await openRoom(session.room_id);
  } catch (error) {
    $("desk-status").textContent = errorText(error);
  }
}

function onSupportFrame(frame) {
  if (frame.type === "support.session.assigned" && frame.agent_id === me && frame.room_id) ensureRoom(frame.room_id).catch(() => {});
  if (page === "desk") loadDesk();
}

$("desk-refresh").addEventListener("click", loadDesk);

// --- tickets ----------------------------------------------------------------------------------------------

function ticketBadges(ticket) {
  return [
    el("span", { class: `badge status-${ticket.status}` }, ticket.status.replace("_", " ")),
    " ",
    el("span", { class: `badge priority-${ticket.priority}` }, ticket.priority),
  ];
}

// `sla` is null until a policy applies; its `status` names the clock's state.
function slaBadge(ticket, none = "—") {
  if (!ticket.sla) return el("span", { class: "muted" }, none);
  const due = [ticket.sla.response_due && `response due ${new Date(ticket.sla.response_due).toLocaleString()}`,
    ticket.sla.resolution_due && `resolution due ${new Date(ticket.sla.resolution_due).toLocaleString()}`].filter(Boolean).join(", ");
  return el("span", { class: `badge sla-${ticket.sla.status}`, title: due }, `SLA ${ticket.sla.status.replace("_", " ")}`);
}

async function loadTickets() {
  const status = $("tickets-status");
  const wanted = new FormData($("ticket-filter")).get("status");
  try {
    const found = await client.api.getSupportTickets({ limit: 50, ...(wanted ? { status: wanted } : {}) });
    $("ticket-rows").replaceChildren(...found.data.map((ticket) => el("tr", { dataset: { ticketId: ticket.id } },
      el("td", {}, el("button", { type: "button", "aria-label": `Open ticket ${ticket.number}`, onclick: () => openTicket(ticket.id) }, ticket.number)),
      el("td", {}, ticket.subject), el("td", {}, ticketBadges(ticket)[0]), el("td", {}, ticketBadges(ticket)[2]),
      el("td", {}, slaBadge(ticket)), el("td", {}, ticket.customer.name || ticket.customer.id),
      el("td", {}, ticket.assigned_to ? ticket.assigned_to.id : "—"))));
    status.textContent = `${found.total} ${found.total === 1 ? "ticket" : "tickets"}${found.total > found.data.length ? `, newest ${found.data.length} shown` : ""}`;
  } catch (error) {
    status.textContent = errorText(error);
  }
}

$("ticket-filter").addEventListener("submit", (event) => {
  event.preventDefault();
  loadTickets();
});

let ticketId = null;

async function openTicket(id) {
  ticketId = id;
  show("ticket");
  $("ticket-status").textContent = "";
  try {
    renderTicket(await client.api.getSupportTicketsTicketId({ ticket_id: id }));
    $("ticket-title").focus();
  } catch (error) {
    $("ticket-status").textContent = errorText(error);
  }
}

function renderTicket(ticket) {
  $("ticket-title").textContent = `${ticket.number} ${ticket.subject}`;
  $("ticket-title").tabIndex = -1;
  $("ticket-meta").replaceChildren(...[...ticketBadges(ticket), " ", slaBadge(ticket, "no SLA"),
    ` · customer ${ticket.customer.name || ticket.customer.id} · `,
    ticket.assigned_to ? `assigned to ${ticket.assigned_to.id}` : "unassigned", " ",
    ticket.assigned_to?.id === me ? null : el("button", { type: "button", onclick: () => updateTicket({ assigned_to: me }) }, "Assign to me"),
  ].filter((part) => part !== null));
  $("ticket-description").textContent = ticket.description;
  const entries = [
    ...ticket.comments.map((comment) => ({ kind: comment.public ? "comment" : "private", at: comment.timestamp, entry: comment })),
    ...ticket.notes.map((note) => ({ kind: "note", at: note.timestamp, entry: note })),
  ].sort((a, b) => a.at.localeCompare(b.at));
  $("ticket-thread").replaceChildren(...entries.map(({ kind, entry }) => el("li", { class: `entry ${kind}` },
    el("div", { class: "head" },
      el("strong", {}, entry.author.name || entry.author.id), ` (${entry.author.type})`, time(entry.timestamp),
      kind === "comment" ? null : el("span", { class: "internal" }, kind === "note" ? "Internal note: not shown to the customer" : "Internal comment")),
    el("p", { class: "body" }, entry.content))));
}

async function updateTicket(body) {
  try {
    renderTicket(await client.api.putSupportTicketsTicketId({ ticket_id: ticketId, body }));
    $("ticket-status").textContent = "Saved.";
  } catch (error) {
    $("ticket-status").textContent = errorText(error);
  }
}

$("ticket-update").addEventListener("submit", (event) => {
  event.preventDefault();
  updateTicket({ status: String(new FormData(event.target).get("status")) });
});

$("ticket-reply").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const content = String(new FormData(form).get("content")).trim();
  if (!content) return;
  const args = { ticket_id: ticketId, body: { content } };
  try {
    const ticket = event.submitter?.value === "note"
      ? await client.api.postSupportTicketsTicketIdNotes(args)
      : await client.api.postSupportTicketsTicketIdComments({ ticket_id: ticketId, body: { content, public: true } });
    form.reset();
    renderTicket(ticket);
  } catch (error) {
    $("ticket-status").textContent = errorText(error);
  }
});

$("ticket-back").addEventListener("click", () => show("tickets"));

// --- pages ------------------------------------------------------------------------------------------------

const SECTIONS = ["search-results", "admin", "webhooks", "keys", "limits", "desk", "tickets", "ticket"];
const SECTION_OF = { search: "search-results" };
const NAV = { chat: "nav-chat", desk: "nav-desk", tickets: "nav-tickets", ticket: "nav-tickets", admin: "nav-admin", webhooks: "nav-webhooks", keys: "nav-keys", limits: "nav-limits" };
const LOADERS = { admin: loadLetters, webhooks: loadWebhooks, keys: loadKeys, limits: limitsPage, desk: loadDesk, tickets: loadTickets };
let page = "chat";

function show(next) {
  page = next;
  const section = SECTION_OF[next] ?? next;
  const chat = next === "chat";
  for (const id of SECTIONS) $(id).hidden = id !== section;
  $("room").hidden = !chat || !current;
  $("no-room").hidden = !chat || Boolean(current);
  for (const id of new Set(Object.values(NAV))) $(id).setAttribute("aria-pressed", String(NAV[next] === id));
  // A secret shown once goes when its page is left.
  for (const box of ["webhook-secret", "key-secret"]) {
    $(box).hidden = true;
    $(`${box}-value`).value = "";
  }
  for (const id of ["webhooks-status", "keys-status"]) $(id).textContent = "";
  LOADERS[next]?.();
}

for (const [name, id] of Object.entries(NAV)) if (name !== "ticket") $(id).addEventListener("click", () => show(name));

start();

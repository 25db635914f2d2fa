// The AutoHands web chat: conversations, streaming answers, approval buttons, resume.
//
// Nothing is lost and nothing doubled (docs/API.md, "WebSocket"): every message gets a client
// id and stays in localStorage until the hub acks it (resent with the same id after a
// reconnect, which the hub answers once); the last server id seen per conversation is kept
// too, and every (re)connect sends {"type": "resume", "after": <it>} so the hub replays the
// final messages this page missed, even across a reload or a hub restart.

import { itemNode } from "./render.js";
import { Connection } from "./socket.js";

const $ = (id) => document.getElementById(id);
const MAX_ITEMS = 400;
const RESUMED_CONVERSATIONS = 30;
const MAX_FRAME_BYTES = 65536;
// The hub's default [channels.web] max_frame_bytes: a larger frame closes the socket (1009), and
// resending it after each reconnect would close it again.

// ------------------------------------------------------------------ storage

const saved = {
  get(key, fallback) {
    try {
      const raw = window.localStorage.getItem(`autohands.${key}`);
      return raw === null ? fallback : JSON.parse(raw);
    } catch {
      return fallback;
    }
  },
  set(key, value) {
    try {
      window.localStorage.setItem(`autohands.${key}`, JSON.stringify(value));
    } catch {
      // storage full or disabled: the page still works, it only forgets on reload
    }
  },
};

function newId(prefix) {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return prefix + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

const state = {
  conversations: saved.get("conversations", []), // [{id, title, updated}], newest first
  current: saved.get("current", null),
  pending: saved.get("pending", []), // client messages not acked yet: [{id, conversation, text}]
  lastSeen: saved.get("lastSeen", {}), // conversation -> last server message id
  transcripts: new Map(), // conversation -> items, loaded lazily
  drafts: new Map(), // conversation -> text streamed so far
  running: new Set(), // conversations whose answer is under way
  unread: new Set(),
};

function transcript(conversation) {
  if (!state.transcripts.has(conversation)) {
    state.transcripts.set(conversation, saved.get(`t.${conversation}`, []));
  }
  return state.transcripts.get(conversation);
}

function saveTranscript(conversation) {
  const items = transcript(conversation);
  if (items.length > MAX_ITEMS) items.splice(0, items.length - MAX_ITEMS);
  saved.set(`t.${conversation}`, items);
}

function saveState() {
  saved.set("conversations", state.conversations);
  saved.set("current", state.current);
  saved.set("pending", state.pending);
  saved.set("lastSeen", state.lastSeen);
}

function touchConversation(id, { title, updated } = {}) {
  let conv = state.conversations.find((c) => c.id === id);
  if (!conv) {
    conv = { id, title: "", updated: 0 };
    state.conversations.push(conv);
  }
  if (title && !conv.title) conv.title = title;
  conv.updated = Math.max(conv.updated || 0, updated || Date.now());
  state.conversations.sort((a, b) => (b.updated || 0) - (a.updated || 0));
  return conv;
}

// ------------------------------------------------------------------ rendering

const nodes = new Map(); // item id -> element, for the conversation on screen
let draftNode = null;

function nearBottom(box) {
  return box.scrollHeight - box.scrollTop - box.clientHeight < 80;
}

function scrollDown(force) {
  const box = $("messages");
  if (force || nearBottom(box)) box.scrollTop = box.scrollHeight;
}

function showItem(item) {
  const box = $("messages");
  const stick = nearBottom(box);
  const node = itemNode(item, answer);
  const old = item.id ? nodes.get(item.id) : null;
  if (old) {
    old.replaceWith(node);
  } else {
    box.insertBefore(node, draftNode && draftNode.isConnected ? draftNode : null);
  }
  if (item.id) nodes.set(item.id, node);
  $("empty").hidden = true;
  if (stick) scrollDown(true);
}

function showDraft() {
  const text = state.drafts.get(state.current);
  if (draftNode) draftNode.remove();
  draftNode = null;
  if (text) {
    const stick = nearBottom($("messages"));
    draftNode = itemNode({ kind: "draft", text });
    $("messages").append(draftNode);
    if (stick) scrollDown(true);
  }
}

function showTyping() {
  const busy = state.running.has(state.current);
  $("typing").hidden = !busy || Boolean(state.drafts.get(state.current));
  $("stop").hidden = !busy;
}

function showConversation() {
  for (const node of nodes.values()) node.remove();
  nodes.clear();
  if (draftNode) draftNode.remove();
  draftNode = null;
  const items = state.current ? transcript(state.current) : [];
  $("empty").hidden = items.length > 0;
  for (const item of items) showItem(item);
  showDraft();
  showTyping();
  const conv = state.conversations.find((c) => c.id === state.current);
  $("title").textContent = conv?.title || "New conversation";
  state.unread.delete(state.current);
  showList();
  scrollDown(true);
}

function showList() {
  const list = $("conversations");
  list.replaceChildren();
  for (const conv of state.conversations) {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "conversation";
    if (conv.id === state.current) button.classList.add("current");
    if (state.unread.has(conv.id)) button.classList.add("unread");
    button.textContent = conv.title || "New conversation";
    button.title = conv.title || "";
    button.addEventListener("click", () => switchTo(conv.id));
    li.append(button);
    list.append(li);
  }
}

// ------------------------------------------------------------------ actions

function switchTo(conversation) {
  state.current = conversation;
  saveState();
  connection.send({ type: "resume", conversation, after: state.lastSeen[conversation] || 0 });
  document.body.classList.remove("menu-open");
  showConversation();
  $("input").focus();
}

function newConversation() {
  if (state.current && transcript(state.current).length === 0) {
    switchTo(state.current); // already on an empty one
    return;
  }
  switchTo(newId("c-"));
}

function addItem(conversation, item) {
  const items = transcript(conversation);
  const at = item.id ? items.findIndex((i) => i.id === item.id) : -1;
  if (at >= 0) items[at] = { ...items[at], ...item };
  else items.push(item);
  saveTranscript(conversation);
  if (conversation === state.current) showItem(at >= 0 ? items[at] : item);
  else state.unread.add(conversation);
}

function sendText(text) {
  if (!state.current) state.current = newId("c-");
  const conversation = state.current;
  const message = { type: "message", id: newId("m-"), conversation, text };
  state.pending.push(message);
  touchConversation(conversation, { title: text.slice(0, 60) });
  saveState();
  addItem(conversation, { kind: "user", id: message.id, text, state: "pending" });
  showList();
  $("title").textContent = state.conversations.find((c) => c.id === conversation).title;
  connection.send(message);
  scrollDown(true);
}

function answer(item, choice) {
  if (item.answered) return;
  const { question, conversation } = item;
  const frame = { type: "answer", question, choice: choice.value, conversation };
  const sent = connection.send(frame);
  if (!sent) return; // offline: the buttons stay, so the person can tap again once back
  addItem(item.conversation, { ...item, answered: choice.value });
}

// ------------------------------------------------------------------ the hub's messages

function conversationOf(msg) {
  return msg.conversation || state.current;
}

function onAck(msg) {
  const message = state.pending.find((m) => m.id === msg.id);
  state.pending = state.pending.filter((m) => m.id !== msg.id);
  saveState();
  if (message) addItem(message.conversation, { kind: "user", id: msg.id, state: "sent" });
}

function onDelta(msg) {
  // A delta carries the whole text of its stream so far (docs/API.md, "WebSocket").
  const conversation = conversationOf(msg);
  state.drafts.set(conversation, msg.text || "");
  setRunning(conversation, true);
  if (conversation === state.current) showDraft();
}

const runningTimers = new Map();

function setRunning(conversation, busy) {
  // "typing" has no "done" frame of its own: an answer ends it, or a minute without news.
  clearTimeout(runningTimers.get(conversation));
  if (busy) {
    state.running.add(conversation);
    runningTimers.set(conversation, setTimeout(() => setRunning(conversation, false), 60000));
  } else {
    state.running.delete(conversation);
    runningTimers.delete(conversation);
  }
  if (conversation === state.current) showTyping();
}

function isNew(conversation, msg) {
  // Server ids count up per conversation: one at or below the last seen was shown already.
  const id = Number(msg.id);
  if (!Number.isFinite(id) || id <= 0) return true;
  if (id <= (state.lastSeen[conversation] || 0)) return false;
  state.lastSeen[conversation] = id;
  return true;
}

function onFinal(msg) {
  const conversation = conversationOf(msg);
  if (!isNew(conversation, msg)) return;
  touchConversation(conversation);
  saveState();
  if (msg.role === "user") {
    const id = String(msg.client_id ?? msg.id);
    addItem(conversation, { kind: "user", id, text: msg.text || "", state: "sent" });
  } else if (msg.type === "question" || (Array.isArray(msg.choices) && msg.choices.length)) {
    addQuestion(conversation, msg);
  } else {
    state.drafts.delete(conversation);
    addItem(conversation, { kind: "bot", id: itemId(msg), text: msg.text || "", plain: isPlain(msg) });
    setRunning(conversation, false);
  }
  if (conversation === state.current) showDraft();
  showList();
}

function isPlain(msg) {
  return msg.format === "text" || msg.format === "plain";
}

function itemId(msg) {
  // An edit (a question's outcome, a tool line that grew) replaces the message it edits.
  const id = msg.edit_of ?? msg.ref ?? msg.id;
  return id === undefined || id === null ? null : String(id);
}

function normalChoices(choices) {
  return (choices || []).map((c) => ({ value: c.id, label: c.label ?? c.id, style: c.style }));
}

function addQuestion(conversation, msg) {
  state.drafts.delete(conversation);
  setRunning(conversation, false);
  addItem(conversation, {
    kind: "question", id: itemId(msg), question: String(msg.question ?? msg.ref ?? msg.id), conversation,
    text: msg.text || "", plain: isPlain(msg), choices: normalChoices(msg.choices),
  });
}

function onStatus(msg) {
  const conversation = conversationOf(msg);
  if (msg.state === "typing") setRunning(conversation, true);
  if (msg.state === "synced" && Number.isFinite(msg.last) && msg.last < (state.lastSeen[conversation] || 0)) {
    // The hub has fewer messages than this page saw (its data was reset): follow it, or its
    // new messages would be taken for ones already shown.
    state.lastSeen[conversation] = msg.last;
    saveState();
  }
}

const RETRY_LATER = new Set(["stopping", "not_recorded"]);

function onError(msg) {
  const text = msg.message || "Something went wrong.";
  const message = state.pending.find((m) => m.id === msg.id);
  if (message && !RETRY_LATER.has(msg.code)) {
    // Refused for good (the hub named what is wrong): resending the same frame cannot help.
    state.pending = state.pending.filter((m) => m !== message);
    saveState();
    addItem(message.conversation, { kind: "user", id: message.id, state: "failed" });
  }
  addItem(message ? message.conversation : state.current, { kind: "error", text: String(text) });
}

function onConversations(msg) {
  for (const conv of msg.conversations || []) {
    const id = conv.id ?? conv.conversation;
    if (!id) continue;
    touchConversation(id, { title: conv.title || "", updated: Date.parse(conv.last_activity) || 1 });
    if ((conv.last_id || 0) > (state.lastSeen[id] || 0) && id !== state.current) state.unread.add(id);
  }
  saveState();
  showList();
}

const HANDLERS = {
  ack: onAck,
  delta: onDelta,
  message: onFinal,
  question: onFinal,
  status: onStatus,
  error: onError,
  conversations: onConversations,
};

function onMessage(msg) {
  const handler = HANDLERS[msg.type];
  if (handler) handler(msg);
}

function onOpen() {
  // Resume every recent conversation (a reminder may have arrived in another one), then resend
  // what was never acknowledged, in the order it was typed.
  const ids = state.conversations.slice(0, RESUMED_CONVERSATIONS).map((c) => c.id);
  if (state.current && !ids.includes(state.current)) ids.push(state.current);
  for (const conversation of ids) {
    connection.send({ type: "resume", conversation, after: state.lastSeen[conversation] || 0 });
  }
  connection.send({ type: "conversations" });
  for (const message of state.pending) connection.send(message);
}

function onState(name, detail = {}) {
  const label = $("connection");
  document.body.dataset.connection = name;
  if (name === "online") label.textContent = "";
  else if (name === "connecting") label.textContent = "Connecting…";
  else label.textContent = `Reconnecting… (${Math.max(1, Math.round(detail.delay / 1000))} s)`;
  if (name === "reconnecting" && detail.failures === 2) void checkSignedIn();
}

async function checkSignedIn() {
  // A refused upgrade looks like any dropped socket to a page; the page itself says 401 when
  // the session has expired, and then only signing in again helps.
  try {
    const response = await fetch(window.location.pathname, { cache: "no-store", credentials: "same-origin" });
    if (response.status === 401 || response.status === 403) {
      document.body.dataset.connection = "signed-out";
      $("connection").textContent = "Signed out: reload the page to sign in again";
    }
  } catch {
    // the hub is down: keep reconnecting
  }
}

const connection = new Connection({ onOpen, onMessage, onState });

// ------------------------------------------------------------------ the composer

function resizeInput() {
  const input = $("input");
  input.style.height = "auto"; // CSSOM, not an inline style attribute: allowed by the CSP
  input.style.height = `${Math.min(input.scrollHeight, 200)}px`;
}

function submit() {
  const input = $("input");
  const text = input.value.trim();
  if (!text) return;
  const size = new TextEncoder().encode(JSON.stringify(text)).length + 128; // + the frame's other fields
  if (size > MAX_FRAME_BYTES) {
    const kib = Math.ceil(size / 1024);
    addItem(state.current, { kind: "error", text: `Too long to send (${kib} KiB): the limit is 64 KiB.` });
    return; // the text stays in the box
  }
  input.value = "";
  resizeInput();
  sendText(text);
}

function wire() {
  const input = $("input");
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    }
  });
  input.addEventListener("input", resizeInput);
  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });
  $("stop").addEventListener("click", () => sendText("/stop"));
  $("new-chat").addEventListener("click", newConversation);
  $("menu").addEventListener("click", () => document.body.classList.toggle("menu-open"));
  $("scrim").addEventListener("click", () => document.body.classList.remove("menu-open"));
}

wire();
if (!state.current) state.current = newId("c-");
saveState();
showConversation();
connection.connect();
$("input").focus();

// The operator's dashboard (hub/dashboard). Plain DOM, no build step, no library.
// Everything shown comes from conversations, so it is only ever set as text (textContent),
// never as HTML; the page's Content-Security-Policy forbids inline script as a second guard.
"use strict";

const REFRESH_MS = 3000;
let current = "overview";

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const cell of cells) {
    const td = document.createElement("td");
    if (cell instanceof Node) td.appendChild(cell);
    else td.textContent = cell === null || cell === undefined ? "" : String(cell);
    tr.appendChild(td);
  }
  return tr;
}

function when(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

function cost(value) {
  return value === null || value === undefined ? "no price" : "$" + value.toFixed(4);
}

function status(text, bad) {
  const node = document.getElementById("status");
  node.textContent = text;
  node.classList.toggle("bad", Boolean(bad));
  node.classList.toggle("ok", !bad);
}

async function api(path, body) {
  const init = { credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.method = "POST";
    init.headers["Content-Type"] = "application/json";
    init.headers["X-AutoHands"] = "1"; // the CSRF guard every changing request needs
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const message = (data.error && data.error.message) || response.status + " " + response.statusText;
    throw new Error(message);
  }
  return data;
}

function fill(tbody, rows) {
  tbody.replaceChildren(...rows);
}

// ------------------------------------------------------------------ channels
async function loadOverview() {
  const data = await api("/api/admin/overview");
  const tbody = document.querySelector("#overview tbody");
  fill(tbody, data.channels.map((c) => {
    const state = el("span", c.problem ? "problem" : c.started ? "running" : "not started", "pill " + (c.problem || !c.started ? "bad" : "ok"));
    return row([c.name, state, c.problem || ""]);
  }));
  document.getElementById("overview-extra").textContent =
    `${data.active_runs} run(s) in progress · ${data.pending_approvals} approval(s) pending · signed in as ${data.you}` +
    (data.scheduler ? "" : " · scheduler off");
  badge(data.pending_approvals);
  status(data.ok ? "healthy" : "needs attention", !data.ok);
}

function badge(n) {
  const node = document.getElementById("approvals-count");
  node.hidden = !n;
  node.textContent = String(n);
}

// ------------------------------------------------------------------ approvals
async function loadApprovals() {
  const data = await api("/api/admin/approvals");
  const list = document.getElementById("approvals-list");
  badge(data.approvals.length);
  if (!data.approvals.length) {
    list.replaceChildren(el("p", "Nothing is waiting for an approval.", "muted"));
    return;
  }
  list.replaceChildren(...data.approvals.map(approvalCard));
}

function approvalCard(q) {
  const card = el("article", null, "card approval");
  card.dataset.question = q.id;
  const head = el("p", null, "meta");
  head.append(el("strong", q.conversation), ` · ${q.user} asked ${when(q.asked_at)}`);
  if (q.seconds_left !== null) head.append(` · ${Math.round(q.seconds_left)} s left`);
  card.append(head, el("pre", q.text, "question"));
  const buttons = el("div", null, "row");
  for (const b of q.buttons) {
    const button = el("button", b.label, "btn " + b.style);
    button.type = "button";
    button.addEventListener("click", async () => {
      buttons.querySelectorAll("button").forEach((x) => { x.disabled = true; });
      try {
        await api("/api/admin/approvals/" + encodeURIComponent(q.id), { button: b.id });
        card.replaceChildren(el("p", `${b.label}: sent to ${q.conversation}.`, "done"));
      } catch (err) {
        card.append(el("p", String(err.message), "error"));
      }
    });
    buttons.append(button);
  }
  card.append(buttons);
  return card;
}

// ------------------------------------------------------------------ jobs
let armedJob = null; // the job whose Cancel was clicked once: a second click cancels it

async function loadJobs() {
  const data = await api("/api/admin/jobs");
  const tbody = document.querySelector("#jobs tbody");
  document.getElementById("jobs-empty").hidden = data.jobs.length > 0;
  fill(tbody, data.jobs.map((j) => {
    const cancel = el("button", j.id === armedJob ? "Confirm cancel" : "Cancel", "btn danger");
    cancel.type = "button";
    cancel.addEventListener("click", async () => {
      if (armedJob !== j.id) {
        armedJob = j.id;
        cancel.textContent = "Confirm cancel";
        return;
      }
      armedJob = null;
      cancel.disabled = true;
      try {
        await api(`/api/admin/jobs/${encodeURIComponent(j.id)}/cancel`, {});
        await loadJobs();
      } catch (err) {
        status(String(err.message), true);
        cancel.disabled = false;
      }
    });
    const tr = row([j.id, j.conversation, j.description || j.text, when(j.next_run_at), cancel]);
    tr.dataset.job = j.id;
    return tr;
  }));
}

// ------------------------------------------------------------------ tasks
// The moves each state allows (hub/tasks/base.py: MOVES), as the buttons a task row offers.
const TASK_ACTIONS = {
  pending: ["cancel"],
  running: ["pause", "cancel"],
  paused: ["resume"],
  failed: ["retry"],
  cancelled: ["retry"],
  completed: [],
};

function taskButton(t, action) {
  const button = el("button", action[0].toUpperCase() + action.slice(1), "btn" + (action === "cancel" ? " danger" : ""));
  button.type = "button";
  button.dataset.action = action;
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await api(`/api/admin/tasks/${encodeURIComponent(t.id)}/${action}`, {});
      await loadTasks();
    } catch (err) {
      status(String(err.message), true);
      button.disabled = false;
    }
  });
  return button;
}

async function loadTasks() {
  const data = await api("/api/admin/tasks");
  document.getElementById("tasks-empty").hidden = data.tasks.length > 0;
  fill(document.querySelector("#tasks tbody"), data.tasks.map((t) => {
    const buttons = el("span", null, "row");
    buttons.append(...(TASK_ACTIONS[t.state] || []).map((action) => taskButton(t, action)));
    const what = t.error ? `${t.input} — ${t.error}` : t.input;
    const tr = row([t.id, el("span", t.state, "pill " + (t.state === "failed" ? "bad" : "ok")), t.owner, what, when(t.created_at), buttons]);
    tr.dataset.task = t.id;
    return tr;
  }));
}

// ------------------------------------------------------------------ conversations
async function loadConversations() {
  const q = document.getElementById("q").value.trim();
  const data = await api("/api/admin/conversations?limit=100" + (q ? "&q=" + encodeURIComponent(q) : ""));
  const tbody = document.querySelector("#conversations tbody");
  fill(tbody, data.conversations.map((c) => {
    const link = el("button", c.key, "link");
    link.type = "button";
    link.addEventListener("click", () => loadTranscript(c.key));
    return row([link, c.messages, `${c.input_tokens}/${c.output_tokens}`, when(c.last_activity)]);
  }));
  if (!data.conversations.length) fill(tbody, [row([q ? "No conversation matches." : "No conversations yet.", "", "", ""])]);
}

async function loadTranscript(key) {
  const box = document.getElementById("transcript");
  const data = await api("/api/admin/transcript?key=" + encodeURIComponent(key));
  const items = data.entries.map((e) => {
    const item = el("div", null, "said " + (e.from_user ? "user" : "bot"));
    item.append(el("p", `${e.from_user ? e.who : "AutoHands"} · ${when(e.at)} · ${e.status}`, "meta"), el("pre", e.text));
    return item;
  });
  box.replaceChildren(el("h3", key), ...(items.length ? items : [el("p", "Nothing was said.", "muted")]));
}

// ------------------------------------------------------------------ memories
let memoryScope = null; // the scope whose memories are shown: {kind, key}
let armedMemory = null; // the memory whose Forget was clicked once: a second click forgets it

function scopeLabel(s) {
  return s.kind === "global" ? "global (every user reads)" : `${s.kind} ${s.key}`;
}

async function loadMemories() {
  const off = document.getElementById("memories-off");
  let data;
  try {
    data = await api("/api/admin/memories");
  } catch (err) {
    off.textContent = String(err.message); // memory is off, or the backend could not answer
    off.hidden = false;
    return;
  }
  off.hidden = true;
  const tbody = document.querySelector("[data-testid=memory-scopes] tbody");
  fill(tbody, data.scopes.map((s) => {
    const link = el("button", scopeLabel(s), "link");
    link.type = "button";
    link.addEventListener("click", () => {
      memoryScope = s;
      document.getElementById("memory-q").value = "";
      loadScopeMemories().catch((err) => status(String(err.message), true));
    });
    const tr = row([link, s.count]);
    tr.dataset.scope = `${s.kind}:${s.key}`;
    return tr;
  }));
  if (!data.scopes.length) fill(tbody, [row(["No memories yet.", ""])]);
  if (memoryScope) await loadScopeMemories();
}

async function loadScopeMemories() {
  const s = memoryScope;
  const q = document.getElementById("memory-q").value.trim();
  const data = await api(
    `/api/admin/memories?scope=${encodeURIComponent(s.kind)}&key=${encodeURIComponent(s.key)}` + (q ? "&q=" + encodeURIComponent(q) : ""));
  document.getElementById("memory-scope").textContent = scopeLabel(s);
  document.getElementById("memory-search").hidden = false;
  const table = document.querySelector("#memory-list .memory-table");
  table.hidden = !data.memories.length;
  const empty = document.getElementById("memories-empty");
  empty.hidden = data.memories.length > 0;
  empty.textContent = q ? "No memory matches." : "No memories here.";
  // Memories are user-written: only ever text (el, row), never HTML.
  fill(table.querySelector("tbody"), data.memories.map((m) => {
    const said = el("div");
    said.append(el("p", `${m.id} · ${when(m.created_at)} · ${m.source}`, "meta"), el("p", m.text, "memory-text"));
    const tr = row([said, forgetButton(m)]);
    tr.dataset.memory = m.id;
    return tr;
  }));
}

function forgetButton(m) {
  const button = el("button", m.id === armedMemory ? "Confirm forget" : "Forget", "btn danger");
  button.type = "button";
  button.addEventListener("click", async () => {
    if (armedMemory !== m.id) {
      armedMemory = m.id;
      button.textContent = "Confirm forget";
      return;
    }
    armedMemory = null;
    button.disabled = true;
    try {
      await api(`/api/admin/memories/${encodeURIComponent(m.id)}/forget`, {});
      await loadMemories();
    } catch (err) {
      status(String(err.message), true);
      button.disabled = false;
    }
  });
  return button;
}

// ------------------------------------------------------------------ usage
async function loadUsage() {
  const days = document.getElementById("days").value;
  const data = await api("/api/admin/usage?days=" + encodeURIComponent(days));
  const [total] = data.total;
  document.getElementById("usage-total").textContent =
    `${total.runs} run(s) · ${total.input_tokens} tokens in, ${total.output_tokens} out · estimated ${cost(total.cost_usd)} (${data.currency}, last ${data.days} day(s))`;
  for (const table of document.querySelectorAll("[data-usage]")) {
    const rows = data[table.dataset.usage] || [];
    fill(table.querySelector("tbody"), rows.map((r) => row([r.label, r.runs, `${r.input_tokens}/${r.output_tokens}`, cost(r.cost_usd)])));
  }
}

// ------------------------------------------------------------------ tabs and refresh
const loaders = { overview: loadOverview, approvals: loadApprovals, jobs: loadJobs, tasks: loadTasks, conversations: loadConversations, memories: loadMemories, usage: loadUsage };

async function refresh() {
  try {
    // The overview also sets the health pill and the approvals badge every tab shows.
    await Promise.all(current === "overview" ? [loadOverview()] : [loaders[current](), loadOverview()]);
  } catch (err) {
    status(String(err.message), true);
  }
}

function show(tab) {
  current = tab;
  for (const button of document.querySelectorAll("[data-tab]")) button.classList.toggle("active", button.dataset.tab === tab);
  for (const panel of document.querySelectorAll(".panel")) panel.hidden = panel.id !== tab;
  refresh();
}

document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("[data-tab]")) button.addEventListener("click", () => show(button.dataset.tab));
  document.getElementById("search").addEventListener("submit", (event) => { event.preventDefault(); loadConversations(); });
  document.getElementById("memory-search").addEventListener("submit", (event) => {
    event.preventDefault();
    loadScopeMemories().catch((err) => status(String(err.message), true));
  });
  document.getElementById("days").addEventListener("change", () => loadUsage());
  const start = (location.hash || "#overview").slice(1);
  show(loaders[start] ? start : "overview");
  // Live views refresh themselves; the others (a search, a transcript being read) do not jump.
  setInterval(() => { if (current === "overview" || current === "approvals" || current === "jobs" || current === "tasks") refresh(); }, REFRESH_MS);
});

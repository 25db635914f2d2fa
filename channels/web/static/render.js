// How each item of a conversation looks: the person's messages as typed, the hub's through the
// safe Markdown renderer (markdown.js), approval questions with their buttons, code blocks with a
// copy button.

import { renderMarkdown } from "./markdown.js";

const STYLES = new Set(["primary", "danger"]);

function copyButton(code) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "copy";
  button.textContent = "Copy";
  button.addEventListener("click", async () => {
    const ok = await copyText(code);
    button.textContent = ok ? "Copied" : "Press Ctrl+C";
    setTimeout(() => { button.textContent = "Copy"; }, 1500);
  });
  return button;
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // http on another host is not a secure context: no clipboard API there
    const area = document.createElement("textarea");
    area.value = text;
    area.className = "offscreen";
    document.body.append(area);
    area.select();
    const ok = document.execCommand("copy");
    area.remove();
    return ok;
  }
}

function bubble(role, text, plain = false) {
  const row = document.createElement("div");
  row.className = `msg ${role}`;
  const body = document.createElement("div");
  body.className = plain ? "bubble plain" : "bubble";
  if (plain) {
    body.textContent = text; // what the person typed, or a reply marked plain, is shown as is
  } else {
    body.append(renderMarkdown(text, { copyButton }));
  }
  row.append(body);
  return row;
}

export function itemNode(item, onChoice) {
  if (item.kind === "user") {
    const row = bubble("user", item.text, true);
    row.dataset.state = item.state;
    return row;
  }
  if (item.kind === "question") return questionNode(item, onChoice);
  if (item.kind === "draft") return bubble("bot streaming", item.text);
  if (item.kind === "error") {
    const row = document.createElement("div");
    row.className = "msg error";
    row.textContent = item.text;
    return row;
  }
  return bubble("bot", item.text, item.plain);
}

function questionNode(item, onChoice) {
  const row = bubble("bot question", item.text, item.plain);
  const choices = document.createElement("div");
  choices.className = "choices";
  for (const choice of item.choices) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = STYLES.has(choice.style) ? `choice ${choice.style}` : "choice";
    button.textContent = choice.label;
    button.disabled = Boolean(item.answered);
    if (item.answered === choice.value) button.classList.add("chosen");
    button.addEventListener("click", () => onChoice(item, choice));
    choices.append(button);
  }
  row.querySelector(".bubble").append(choices);
  return row;
}

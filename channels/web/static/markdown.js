// A small, safe Markdown renderer for untrusted text (the model's answers).
//
// It never parses HTML: every piece of text becomes a DOM text node (textContent), and the only
// elements made are the ones listed here. Links are kept only when their address starts with
// http:, https: or mailto:, and they open in a new tab with rel="noopener noreferrer"; anything
// else (javascript:, data:, relative paths) is shown as plain text. Images are shown as links,
// never loaded, so an answer cannot make the browser fetch an address by itself.

const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([^`\s]*)[^`]*$/;
const HEADING = /^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
const RULE = /^ {0,3}([-*_])(\s*\1){2,}\s*$/;
const QUOTE = /^ {0,3}>\s?(.*)$/;
const ITEM = /^( *)([-*+]|\d{1,9}[.)])\s+(.*)$/;
const TABLE_SEP = /^\s*\|?\s*:?-{1,}:?\s*(\|\s*:?-{1,}:?\s*)*\|?\s*$/;
const SAFE_LINK = /^(https?:\/\/|mailto:)/i;

export function safeHref(raw) {
  const href = String(raw).trim();
  if (!SAFE_LINK.test(href)) return null;
  try {
    const url = new URL(href);
    return ["http:", "https:", "mailto:"].includes(url.protocol) ? url.href : null;
  } catch {
    return null;
  }
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// ------------------------------------------------------------------ blocks

export function renderMarkdown(text, hooks = {}) {
  const fragment = document.createDocumentFragment();
  renderBlocks(String(text).replace(/\r\n?/g, "\n").split("\n"), fragment, hooks);
  return fragment;
}

function renderBlocks(lines, parent, hooks) {
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (!line.trim()) { i += 1; continue; }
    const step = codeBlock(lines, i, parent, hooks) || heading(lines, i, parent) || rule(lines, i, parent)
      || quote(lines, i, parent, hooks) || list(lines, i, parent, hooks) || table(lines, i, parent)
      || paragraph(lines, i, parent);
    i = step;
  }
}

function codeBlock(lines, i, parent, hooks) {
  const open = FENCE.exec(lines[i]);
  if (!open) return 0;
  const marker = open[1];
  const body = [];
  let j = i + 1;
  while (j < lines.length && !(lines[j].trim().startsWith(marker) && /^[`~]+$/.test(lines[j].trim()))) {
    body.push(lines[j]);
    j += 1;
  }
  parent.append(codeNode(body.join("\n"), open[2], hooks));
  return j + 1; // past the closing fence (or the end, while an answer is still streaming)
}

function codeNode(code, lang, hooks) {
  const box = el("div", "code");
  const head = el("div", "code-head");
  head.append(el("span", "code-lang", lang || "text"));
  if (hooks.copyButton) head.append(hooks.copyButton(code));
  const pre = el("pre");
  pre.append(el("code", null, code));
  box.append(head, pre);
  return box;
}

function heading(lines, i, parent) {
  const m = HEADING.exec(lines[i]);
  if (!m) return 0;
  const node = el(`h${Math.min(m[1].length + 2, 6)}`); // h1 in an answer would outshout the page
  renderInline(m[2], node);
  parent.append(node);
  return i + 1;
}

function rule(lines, i, parent) {
  if (!RULE.test(lines[i])) return 0;
  parent.append(el("hr"));
  return i + 1;
}

function quote(lines, i, parent, hooks) {
  if (!QUOTE.test(lines[i])) return 0;
  const inner = [];
  let j = i;
  while (j < lines.length && lines[j].trim() && QUOTE.test(lines[j])) {
    inner.push(QUOTE.exec(lines[j])[1]);
    j += 1;
  }
  const node = el("blockquote");
  renderBlocks(inner, node, hooks);
  parent.append(node);
  return j;
}

function list(lines, i, parent, hooks) {
  const first = ITEM.exec(lines[i]);
  if (!first) return 0;
  const indent = first[1].length;
  const ordered = /\d/.test(first[2]);
  const node = el(ordered ? "ol" : "ul");
  if (ordered && parseInt(first[2], 10) !== 1) node.start = parseInt(first[2], 10);
  let j = i;
  let item = null;
  let loose = false;
  while (j < lines.length) {
    const m = ITEM.exec(lines[j]);
    const blank = !lines[j].trim();
    if (m && m[1].length <= indent + 1 && /\d/.test(m[2]) === ordered) {
      item = [m[3]];
      node.append(itemNode(item));
    } else if (blank && continues(lines[j + 1], indent)) {
      loose = loose || !ITEM.test(lines[j + 1]);
      item.push("");
    } else if (!blank && /^\s+\S/.test(lines[j])) {
      item.push(lines[j].replace(new RegExp(`^ {0,${indent + 4}}`), ""));
    } else if (!blank && !startsBlock(lines[j]) && lines[j - 1].trim()) {
      item.push(lines[j].trim()); // a lazy continuation line
    } else {
      break;
    }
    j += 1;
  }
  for (const li of node.children) fillItem(li, hooks, loose);
  parent.append(node);
  return j;
}

function continues(next, indent) {
  // After a blank line the list goes on with an indented line or another item of its level.
  if (next === undefined) return false;
  const item = ITEM.exec(next);
  return /^\s{2,}\S/.test(next) || (item !== null && item[1].length <= indent + 1);
}

function itemNode(lines) {
  const li = el("li");
  li._lines = lines;
  return li;
}

function fillItem(li, hooks, loose) {
  const lines = li._lines;
  delete li._lines;
  while (lines.length > 1 && !lines[lines.length - 1].trim()) lines.pop();
  const nested = lines.slice(1).some((l) => ITEM.test(l) || FENCE.test(l) || QUOTE.test(l));
  if (!loose && !nested) {
    renderInline(lines.join("\n"), li);
  } else {
    renderBlocks(lines, li, hooks);
  }
}

function splitRow(line) {
  let row = line.trim();
  if (row.startsWith("|")) row = row.slice(1);
  if (row.endsWith("|") && !row.endsWith("\\|")) row = row.slice(0, -1);
  return row.split(/(?<!\\)\|/).map((cell) => cell.trim().replace(/\\\|/g, "|"));
}

function table(lines, i, parent) {
  const separator = lines[i + 1];
  const isTable = lines[i].includes("|") && separator !== undefined && TABLE_SEP.test(separator);
  if (!isTable || !separator.includes("-")) return 0;
  const head = splitRow(lines[i]);
  const aligns = splitRow(separator).map((c) => {
    if (!c.endsWith(":")) return "";
    return c.startsWith(":") ? "center" : "right";
  });
  const wrap = el("div", "table");
  const node = el("table");
  const thead = el("thead");
  thead.append(rowNode(head, "th", aligns));
  const tbody = el("tbody");
  let j = i + 2;
  while (j < lines.length && lines[j].trim() && lines[j].includes("|")) {
    tbody.append(rowNode(splitRow(lines[j]), "td", aligns));
    j += 1;
  }
  node.append(thead, tbody);
  wrap.append(node);
  parent.append(wrap);
  return j;
}

function rowNode(cells, tag, aligns) {
  const tr = el("tr");
  cells.forEach((cell, k) => {
    const td = el(tag, aligns[k] ? `align-${aligns[k]}` : null);
    renderInline(cell, td);
    tr.append(td);
  });
  return tr;
}

function startsBlock(line) {
  return FENCE.test(line) || HEADING.test(line) || RULE.test(line) || QUOTE.test(line) || ITEM.test(line);
}

function paragraph(lines, i, parent) {
  const body = [lines[i]];
  let j = i + 1;
  while (j < lines.length && lines[j].trim() && !startsBlock(lines[j])
         && !(lines[j].includes("|") && j + 1 < lines.length && TABLE_SEP.test(lines[j + 1]))) {
    body.push(lines[j]);
    j += 1;
  }
  const node = el("p");
  renderInline(body.map((l) => l.trim()).join("\n"), node);
  parent.append(node);
  return j;
}

// ------------------------------------------------------------------ inline

const PUNCT = /[!-/:-@[-`{-~]/;
const BARE_URL = /^(https?:\/\/|mailto:)[^\s<>"]*[^\s<>"'.,;:!?)\]*_~]/i;
const EMPHASIS = [
  ["**", "strong"], ["__", "strong"], ["~~", "del"], ["*", "em"], ["_", "em"],
];

export function renderInline(text, parent, depth = 0, inLink = false) {
  let buffer = "";
  const flush = () => {
    if (buffer) parent.append(document.createTextNode(buffer));
    buffer = "";
  };
  let i = 0;
  while (i < text.length) {
    const rest = text.slice(i);
    const ch = text[i];
    let taken = null;
    if (ch === "\\" && i + 1 < text.length && PUNCT.test(text[i + 1])) {
      buffer += text[i + 1];
      i += 2;
      continue;
    }
    if (ch === "\n") taken = [1, document.createElement("br")];
    else if (ch === "`") taken = codeSpan(rest);
    else if (inLink) taken = null; // inside a link's label: no links within links
    else if (ch === "[" || (ch === "!" && text[i + 1] === "[")) taken = link(rest, depth);
    else if (ch === "<") taken = autolink(rest);
    else if (/[hm]/i.test(ch) && !/\w/.test(text[i - 1] || "")) taken = bareUrl(rest);
    if (!taken && depth < 8) taken = emphasis(rest, text[i - 1], depth, inLink);
    if (taken) {
      flush();
      parent.append(taken[1]);
      i += taken[0];
    } else {
      buffer += ch;
      i += 1;
    }
  }
  flush();
}

function codeSpan(rest) {
  const run = /^`+/.exec(rest)[0];
  const end = rest.indexOf(run, run.length);
  if (end < 0) return null;
  let code = rest.slice(run.length, end).replace(/\n/g, " ");
  if (/^ .* $/.test(code)) code = code.slice(1, -1);
  return [end + run.length, el("code", null, code)];
}

function closingBracket(text, from) {
  let depth = 0;
  for (let k = from; k < text.length; k += 1) {
    if (text[k] === "\\") k += 1;
    else if (text[k] === "[") depth += 1;
    else if (text[k] === "]" && --depth === 0) return k;
  }
  return -1;
}

function linkTarget(text, from) {
  // "(url)" or "(url "title")", with balanced parentheses inside the url
  if (text[from] !== "(") return null;
  let depth = 0;
  for (let k = from; k < text.length; k += 1) {
    if (text[k] === "\\") k += 1;
    else if (text[k] === "(") depth += 1;
    else if (text[k] === ")" && --depth === 0) {
      const inside = text.slice(from + 1, k).trim().replace(/^<(.*)>$/, "$1");
      return [k + 1, inside.replace(/\s+("[^"]*"|'[^']*')$/, "")];
    }
  }
  return null;
}

function link(rest, depth) {
  const image = rest[0] === "!";
  const open = image ? 1 : 0;
  const close = closingBracket(rest, open);
  if (close < 0) return null;
  const target = linkTarget(rest, close + 1);
  if (!target) return null;
  const label = rest.slice(open + 1, close);
  const href = safeHref(target[1]);
  const node = href ? anchor(href) : el("span", "unsafe-link");
  if (image) {
    node.classList.add("image-link");
    node.append(`🖼 ${label || "image"}`);
  } else {
    renderInline(label, node, depth + 1, true);
  }
  if (!href) node.title = "link removed: only http, https and mailto links are allowed";
  return [target[0], node];
}

function anchor(href, text) {
  const a = el("a", null, text);
  a.href = href;
  a.target = "_blank";
  a.rel = "noopener noreferrer";
  return a;
}

function autolink(rest) {
  const m = /^<((?:https?:\/\/|mailto:)[^\s<>]+)>/i.exec(rest);
  const href = m && safeHref(m[1]);
  return href ? [m[0].length, anchor(href, m[1])] : null;
}

function bareUrl(rest) {
  const m = BARE_URL.exec(rest);
  const href = m && safeHref(m[0]);
  return href ? [m[0].length, anchor(href, m[0])] : null;
}

function emphasis(rest, before, depth, inLink) {
  for (const [mark, tag] of EMPHASIS) {
    if (!rest.startsWith(mark)) continue;
    const after = rest[mark.length];
    if (!after || /\s/.test(after)) continue;
    if (mark[0] === "_" && /\w/.test(before || "")) continue; // snake_case_names stay as they are
    let end = rest.indexOf(mark, mark.length + 1);
    // the closing mark follows a non-space (CommonMark's right-flanking rule, simplified), and a
    // single mark is not half of a double one ("*a **b** c*")
    const half = (k) => mark.length === 1 && (rest[k - 1] === mark || rest[k + 1] === mark);
    while (end > 0 && (/\s/.test(rest[end - 1]) || half(end))) {
      end = rest.indexOf(mark, end + 1);
    }
    if (end < 0) continue;
    if (mark[0] === "_" && /\w/.test(rest[end + mark.length] || "")) continue;
    const node = el(tag);
    renderInline(rest.slice(mark.length, end), node, depth + 1, inLink);
    return [end + mark.length, node];
  }
  return null;
}

// genstack web UI: plain JavaScript, no build step.
// Safety rule: model and document text is only ever put in the page with
// textContent / text nodes, never as HTML. No <a> or <img> is ever built from it.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { history: [], controller: null, citations: {} };

function headers(json = true) {
  const h = {};
  if (json) h["Content-Type"] = "application/json";
  const key = $("key").value || localStorage.getItem("genstack-key") || "";
  if (key) h["Authorization"] = "Bearer " + key;
  return h;
}

async function api(path, options = {}) {
  const r = await fetch(path, { ...options, headers: { ...headers(options.body !== undefined), ...(options.headers || {}) } });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error((body.error && body.error.message) || r.statusText);
  return body;
}

function setStatus(text) { $("status").textContent = text; }

// Markdown images and links to other hosts are neutralised before display:
// the page shows what they were, and never fetches or links them.
function neutralise(text) {
  return text
    .replace(/!\[([^\]]*)\]\(([^)]*)\)/g, (_, alt) => `[image removed${alt ? ": " + alt : ""}]`)
    .replace(/\[([^\]]+)\]\(\s*([^)\s]+)[^)]*\)/g, (m, label, url) => {
      let host = "";
      try { host = new URL(url, location.href).host; } catch (e) { return label; }
      return host === location.host ? label : `${label} (link to ${host} removed)`;
    });
}

// Render answer text with [n] as clickable citation buttons.
function renderText(el, text, citations) {
  el.replaceChildren();
  const parts = neutralise(text).split(/(\[\d+\])/);
  for (const part of parts) {
    const m = /^\[(\d+)\]$/.exec(part);
    if (m && citations && citations[m[1]]) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "cite";
      b.textContent = part;
      b.dataset.n = m[1];
      b.addEventListener("click", () => showSource(citations[m[1]]));
      el.appendChild(b);
    } else if (part) {
      el.appendChild(document.createTextNode(part));
    }
  }
}

function showSource(c) {
  $("source-title").textContent = `[${c.n}] ${c.label}`;
  $("source-text").textContent = c.text;
  $("source-panel").hidden = false;
}

function addMessage(role, text) {
  const div = document.createElement("div");
  div.className = "msg " + role;
  const content = document.createElement("div");
  content.className = "content";
  content.textContent = text;
  div.appendChild(content);
  $("messages").appendChild(div);
  $("messages").scrollTop = $("messages").scrollHeight;
  return div;
}

// A thumb drawn as inline SVG (an emoji needs a font that many machines lack); down is up, flipped.
const THUMB = "M2 21h4V9H2v12zm20-11a2 2 0 0 0-2-2h-6.3l1-4.6v-.3c0-.4-.2-.8-.4-1.1L13.2 1 6.6 7.6C6.2 8 6 8.5 6 9v10a2 2 0 0 0 2 2h9c.8 0 1.5-.5 1.8-1.2l3-7.1c.1-.2.2-.5.2-.7v-2z";

function thumbIcon(down) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("width", "16");
  svg.setAttribute("height", "16");
  svg.setAttribute("aria-hidden", "true");
  if (down) svg.setAttribute("transform", "rotate(180)");
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", THUMB);
  path.setAttribute("fill", "currentColor");
  svg.appendChild(path);
  return svg;
}

function addFeedback(div, requestId, messages, answer, model) {
  const fb = document.createElement("div");
  fb.className = "feedback meta";
  for (const [rating, cls] of [[1, "fb-up"], [-1, "fb-down"]]) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = cls;
    b.appendChild(thumbIcon(rating < 0));
    b.title = rating > 0 ? "good answer" : "bad answer";
    b.setAttribute("aria-label", b.title);
    b.addEventListener("click", async () => {
      try {
        await api("/api/feedback", { method: "POST", body: JSON.stringify({ request_id: requestId, rating, messages, answer, model }) });
        fb.querySelectorAll("button").forEach((x) => x.classList.remove("chosen"));
        b.classList.add("chosen");
        fb.dataset.rated = String(rating);
      } catch (e) { setStatus("feedback failed: " + e.message); }
    });
    fb.appendChild(b);
  }
  div.appendChild(fb);
}

function addCitations(div, citations) {
  const cited = citations.filter((c) => c.cited);
  if (!cited.length) return;
  const ol = document.createElement("ol");
  ol.className = "citations";
  for (const c of cited) {
    const li = document.createElement("li");
    li.value = c.n;
    const b = document.createElement("button");
    b.type = "button";
    b.className = "cite";
    b.textContent = c.label;
    b.addEventListener("click", () => showSource(c));
    li.appendChild(b);
    li.appendChild(document.createTextNode(" " + c.snippet));
    ol.appendChild(li);
  }
  div.appendChild(ol);
}

function sampling() {
  const t = parseFloat($("temperature").value);
  return { temperature: t, top_k: parseInt($("top_k").value, 10), top_p: parseFloat($("top_p").value),
           max_tokens: parseInt($("max_tokens").value, 10) };
}

// POST ``body`` to ``path`` and call ``onEvent`` with each SSE event's JSON until [DONE];
// an HTTP error or an error event is thrown with the server's message.
async function streamEvents(path, body, signal, onEvent) {
  const r = await fetch(path, { method: "POST", headers: headers(), body: JSON.stringify(body), signal });
  if (!r.ok) {
    const err = await r.json().catch(() => ({}));
    throw new Error((err.error && err.error.message) || r.statusText);
  }
  const reader = r.body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const line = buf.slice(0, i).trim();
      buf = buf.slice(i + 2);
      if (!line.startsWith("data:")) continue;
      const data = line.slice(5).trim();
      if (data === "[DONE]") continue;
      const ev = JSON.parse(data);
      if (ev.error) throw new Error(ev.error.message);
      onEvent(ev);
    }
  }
}

async function send(question) {
  const collection = $("collection").value;
  const generator = $("model").value;
  const model = collection ? "rag:" + collection : generator;
  const messages = [...state.history, { role: "user", content: question }];
  addMessage("user", question);
  const div = addMessage("assistant", "");
  const content = div.querySelector(".content");
  const body = { model, messages, stream: true, stream_options: { include_usage: true }, ...sampling() };
  if (collection) body.generator = generator;
  const controller = new AbortController();
  state.controller = controller;
  $("send").disabled = true; $("stop").disabled = false;
  let text = "", requestId = null, citations = null, extra = null, usage = null;
  const t0 = performance.now();
  let ttft = null;
  try {
    await streamEvents("/v1/chat/completions", body, controller.signal, (ev) => {
      requestId = ev.id || requestId;
      if (ev.usage) usage = ev.usage;
      const choice = ev.choices && ev.choices[0];
      if (!choice) return;
      if (choice.delta && choice.delta.content) {
        if (ttft === null) ttft = performance.now() - t0;
        text += choice.delta.content;
        renderText(content, text, null);
        $("messages").scrollTop = $("messages").scrollHeight;
      }
      if (ev.citations) citations = ev.citations;
      if (ev.genstack) extra = ev.genstack;
    });
    // a grounded answer's checked text, else (plain chat) what was streamed
    const final = extra && typeof extra.answer === "string" ? extra.answer : text;
    const byN = {};
    for (const c of citations || []) byN[c.n] = c;
    renderText(content, final, byN);
    div.dataset.done = "1";
    if (citations) addCitations(div, citations);
    const meta = document.createElement("div");
    meta.className = "meta";
    const parts = [];
    if (extra && extra.abstained) parts.push("abstained: " + extra.reason);
    if (ttft !== null) parts.push(`first token ${(ttft / 1000).toFixed(2)} s`);
    if (usage) parts.push(`${usage.completion_tokens} tokens`);
    meta.textContent = parts.join(" · ");
    div.appendChild(meta);
    addFeedback(div, requestId, messages, final, model);
    state.history.push({ role: "user", content: question }, { role: "assistant", content: final });
  } catch (e) {
    div.className = "msg assistant error";
    div.dataset.done = "1";
    content.textContent = e.name === "AbortError" ? (text + " [stopped]") : ("error: " + e.message);
  } finally {
    state.controller = null;
    $("send").disabled = false; $("stop").disabled = true;
  }
}

async function loadModels() {
  const [models, cols] = await Promise.all([api("/v1/models"), api("/api/collections")]);
  const sel = $("model");
  const previous = sel.value;
  sel.replaceChildren();
  for (const m of models.data.filter((m) => m.genstack_kind === "generator")) {
    const o = document.createElement("option");
    o.value = m.id; o.textContent = m.id;
    sel.appendChild(o);
  }
  if (previous) sel.value = previous;
  const csel = $("collection");
  const current = csel.value;
  csel.replaceChildren();
  const none = document.createElement("option");
  none.value = ""; none.textContent = "(none: plain chat)";
  csel.appendChild(none);
  for (const c of cols.collections) {
    const o = document.createElement("option");
    o.value = c.name; o.textContent = `${c.name} (${c.chunks} chunks)`;
    csel.appendChild(o);
  }
  csel.value = current;
}

async function upload() {
  const files = $("file").files;
  const collection = $("collection").value || $("new-collection").value.trim();
  if (!files.length) { $("upload-status").textContent = "choose files first"; return; }
  if (!collection) { $("upload-status").textContent = "pick or name a collection first"; return; }
  if (!$("collection").value) {  // a new collection is created explicitly (an upload never creates one)
    const r = await fetch("/api/collections", { method: "POST", headers: headers(), body: JSON.stringify({ name: collection }) });
    if (!r.ok && r.status !== 409) {
      const err = await r.json().catch(() => ({}));
      $("upload-status").textContent = "upload failed: " + ((err.error && err.error.message) || r.statusText);
      return;
    }
  }
  const form = new FormData();
  for (const f of files) form.append("files", f, f.name);
  const xhr = new XMLHttpRequest();
  xhr.open("POST", `/api/collections/${encodeURIComponent(collection)}/documents`);
  const h = headers(false);
  for (const k in h) xhr.setRequestHeader(k, h[k]);
  const bar = $("upload-progress");
  bar.hidden = false; bar.value = 0;
  xhr.upload.onprogress = (e) => { if (e.lengthComputable) bar.value = Math.round(100 * e.loaded / e.total); };
  xhr.onload = () => {
    let body = {};
    try { body = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
    if (xhr.status !== 202) {
      $("upload-status").textContent = "upload failed: " + ((body.error && body.error.message) || xhr.statusText);
      return;
    }
    bar.value = 100;
    pollJob(body.job, collection);
  };
  xhr.onerror = () => { $("upload-status").textContent = "upload failed: network error"; };
  delete $("upload-status").dataset.state;
  $("upload-status").textContent = "uploading…";
  xhr.send(form);
}

async function pollJob(id, collection) {
  for (;;) {
    const job = await api("/api/jobs/" + id);
    $("upload-status").textContent = `ingesting into ${collection}: ${job.files_done}/${job.files} files, ${job.chunks} chunks`;
    if (job.status === "done" || job.status === "failed") {
      const r = job.report || {};
      $("upload-status").textContent = job.status === "done"
        ? `done: ${r.added || 0} added, ${r.updated || 0} updated, ${r.unchanged || 0} unchanged, ${r.chunks || 0} chunks`
        : "ingest failed: " + job.error;
      try {
        await loadModels();
        $("collection").value = collection;
      } finally {
        // set last: whoever waits for it sees the refreshed list with the collection selected
        $("upload-status").dataset.state = job.status;
      }
      return;
    }
    await new Promise((res) => setTimeout(res, 300));
  }
}

async function search() {
  const collection = $("collection").value;
  const query = $("search-input").value.trim();
  const out = $("search-results");
  out.replaceChildren();
  if (!collection || !query) { setStatus("pick a collection and type a query"); return; }
  try {
    const r = await api(`/api/collections/${encodeURIComponent(collection)}/search`, { method: "POST", body: JSON.stringify({ query, k: 5 }) });
    for (const h of r.hits) {
      const li = document.createElement("li");
      const title = document.createElement("strong");
      title.textContent = `${h.source} (${h.score.toFixed(3)})`;
      li.appendChild(title);
      li.appendChild(document.createTextNode("\n" + neutralise(h.text.slice(0, 300))));
      out.appendChild(li);
    }
    if (!r.hits.length) out.textContent = "no results";
  } catch (e) { setStatus("search failed: " + e.message); }
}

async function createCollection() {
  const name = $("new-collection").value.trim();
  try {
    await api("/api/collections", { method: "POST", body: JSON.stringify({ name }) });
    await loadModels();
    $("collection").value = name;
    setStatus(`collection ${name} created`);
  } catch (e) { setStatus("create failed: " + e.message); }
}

function bindSlider(id) {
  const show = () => { $(id + "-val").textContent = $(id).value; };
  $(id).addEventListener("input", show);
  show();
}

// ---- Arena: one prompt, two anonymous models streaming side by side, a vote, then the names ----
const arena = { battle: null, busy: false };

function showTab(name) {
  for (const t of ["chat", "arena"]) {
    $(t).hidden = t !== name;
    $("tab-" + t).setAttribute("aria-selected", String(t === name));
  }
  if (name === "arena") loadBoard();
}

async function battle(prompt) {
  arena.busy = true; arena.battle = null;
  $("arena-send").disabled = true;
  $("arena-vote").hidden = true;
  $("arena-reveal").textContent = "";
  const sides = { a: "", b: "" };
  for (const s of ["a", "b"]) {
    $("side-" + s).querySelector("h3").textContent = "Model " + s.toUpperCase();
    $("side-" + s).querySelector(".content").textContent = "";
    $("side-" + s).querySelector(".content").classList.remove("empty");
    $("side-" + s).querySelector(".meta").textContent = "";
    delete $("side-" + s).dataset.done;
  }
  const s = sampling();
  const body = { prompt, temperature: s.temperature, top_k: s.top_k, top_p: s.top_p, max_tokens: s.max_tokens };
  try {
    await streamEvents("/api/arena/battles", body, undefined, (ev) => {
      if (ev.side && typeof ev.delta === "string") {
        sides[ev.side] += ev.delta;
        $("side-" + ev.side).querySelector(".content").textContent = neutralise(sides[ev.side]);
      } else if (ev.side && ev.finish_reason) {
        sides[ev.side] = ev.text;
        const el = $("side-" + ev.side);
        const empty = !ev.text.trim();
        el.querySelector(".content").textContent = empty ? "(no answer: the model returned nothing)" : neutralise(ev.text);
        el.querySelector(".content").classList.toggle("empty", empty);
        el.querySelector(".meta").textContent = "finished: " + ev.finish_reason;
        el.dataset.done = "1";
      } else if (ev.done) {
        arena.battle = ev.battle;
      }
    });
    if (!arena.battle) throw new Error("the battle ended without a result");
    $("arena-vote").hidden = false;
    $("arena").dataset.state = "voting";
  } catch (e) {
    $("arena-reveal").textContent = "error: " + e.message;
    $("arena").dataset.state = "error";
  } finally {
    arena.busy = false;
    $("arena-send").disabled = false;
  }
}

async function castVote(winner) {
  if (!arena.battle) return;
  try {
    const r = await api(`/api/arena/battles/${encodeURIComponent(arena.battle)}/vote`, { method: "POST", body: JSON.stringify({ winner }) });
    $("side-a").querySelector("h3").textContent = "Model A: " + r.model_a;
    $("side-b").querySelector("h3").textContent = "Model B: " + r.model_b;
    const said = { model_a: "A is better", model_b: "B is better", tie: "a tie", "tie (bothbad)": "both are bad" }[r.winner];
    $("arena-reveal").textContent = `Your vote: ${said}. A was ${r.model_a}, B was ${r.model_b}.`;
    $("arena-vote").hidden = true;
    $("arena").dataset.state = "voted";
    arena.battle = null;
    await loadBoard();
  } catch (e) { $("arena-reveal").textContent = "vote failed: " + e.message; }
}

async function loadBoard() {
  const tbody = $("arena-board").querySelector("tbody");
  try {
    const b = await api(`/api/arena/leaderboard?method=${encodeURIComponent($("arena-method").value)}&bootstrap=100`);
    tbody.replaceChildren();
    for (const m of b.models) {
      const tr = document.createElement("tr");
      const ci = m.lower === null ? "-" : `${Math.round(m.lower)} – ${Math.round(m.upper)}`;
      for (const v of [m.rank, m.model, Math.round(m.rating), ci, m.battles]) {
        const td = document.createElement("td");
        td.textContent = String(v);
        tr.appendChild(td);
      }
      tbody.appendChild(tr);
    }
    $("arena-board-status").textContent = b.models.length
      ? `${b.battles} votes; models whose intervals overlap share a rank`
      : "no votes yet";
    renderMatrix(b);
    $("arena-board").dataset.loaded = String(b.battles);
  } catch (e) { $("arena-board-status").textContent = "leaderboard failed: " + e.message; }
}

function renderMatrix(b) {
  const t = $("arena-matrix");
  t.replaceChildren();
  const names = b.models.map((m) => m.model);
  if (!names.length) return;
  const head = document.createElement("tr");
  head.appendChild(document.createElement("th"));
  for (const n of names) { const th = document.createElement("th"); th.textContent = n; head.appendChild(th); }
  t.appendChild(head);
  for (const a of names) {
    const tr = document.createElement("tr");
    const th = document.createElement("th");
    th.textContent = a;
    tr.appendChild(th);
    for (const c of names) {
      const td = document.createElement("td");
      const w = b.win_rate[a] && b.win_rate[a][c];
      const p = b.predicted_win_rate[a] && b.predicted_win_rate[a][c];
      td.textContent = a === c ? "" : (w === null || w === undefined ? "-" : w.toFixed(2)) + (p == null ? "" : ` (${p.toFixed(2)})`);
      if (typeof w === "number") td.style.background = `rgba(${w < 0.5 ? "200,60,60" : "40,110,200"},${Math.abs(w - 0.5) * 1.2})`;
      tr.appendChild(td);
    }
    t.appendChild(tr);
  }
}

function initArena() {
  $("tab-chat").addEventListener("click", () => showTab("chat"));
  $("tab-arena").addEventListener("click", () => showTab("arena"));
  $("arena-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const q = $("arena-prompt").value.trim();
    if (!q || arena.busy) return;
    battle(q);
  });
  $("arena-prompt").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("arena-form").requestSubmit(); }
  });
  $("arena-vote").querySelectorAll("button").forEach((b) => b.addEventListener("click", () => castVote(b.dataset.winner)));
  $("arena-refresh").addEventListener("click", loadBoard);
  $("arena-method").addEventListener("change", loadBoard);
}

async function init() {
  ["temperature", "top_k", "top_p", "max_tokens"].forEach(bindSlider);
  initArena();
  const cfg = await api("/api/config");
  if (cfg.auth) {
    $("key-label").hidden = false;
    $("key").value = localStorage.getItem("genstack-key") || "";
    $("key").addEventListener("change", () => { localStorage.setItem("genstack-key", $("key").value); loadModels().catch((e) => setStatus(e.message)); });
  }
  $("max_tokens").max = String(cfg.max_tokens_cap);
  $("ask-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const q = $("prompt").value.trim();
    if (!q || state.controller) return;
    $("prompt").value = "";
    send(q);
  });
  $("prompt").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("ask-form").requestSubmit(); }
  });
  $("stop").addEventListener("click", () => state.controller && state.controller.abort());
  $("clear").addEventListener("click", () => { state.history = []; $("messages").replaceChildren(); });
  $("upload").addEventListener("click", upload);
  $("search-btn").addEventListener("click", search);
  $("create").addEventListener("click", createCollection);
  $("source-close").addEventListener("click", () => { $("source-panel").hidden = true; });
  $("collection").addEventListener("change", () => { state.history = []; });
  try {
    await loadModels();
    $("model").value = cfg.default_model;
    setStatus("ready");
    document.body.dataset.ready = "1";
  } catch (e) { setStatus(e.message); }
}

init();

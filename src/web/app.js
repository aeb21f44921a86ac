// dnsd's web view: the stream of queries (/events), the hierarchy and the cache
// (/api/...), drawn. Plain JavaScript, no build step; every text from a server is set
// with textContent, never parsed as HTML.
"use strict";

const MAX_ROWS = 300;
const MAX_HELD = 500;
const $ = (sel) => document.querySelector(sel);

const state = {
  servers: [],          // from /api/hierarchy
  byName: new Map(),    // server name -> its info
  localName: null,
  rootAddr: null,
  counts: new Map(),    // server name -> {line, dns-udp, dns-tcp}
  events: [],           // newest first
  paused: false,
  held: [],
  selected: null,       // the event drawn in the path panel
  cache: null,
  cacheFetched: 0,
};

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function ms(us) {
  return us >= 1000 ? (us / 1000).toFixed(1) + " ms" : (us / 1000).toFixed(2) + " ms";
}

function badge(kind, text) {
  return el("span", { class: "badge " + kind }, text);
}

function protoLabel(p) {
  return { "line": "line/tcp", "dns-udp": "DNS/udp", "dns-tcp": "DNS/tcp" }[p] || p;
}

function modeLabel(ev) {
  if (ev.mode === "rd") return "RD";
  if (ev.mode === "nord") return "no RD";
  return ev.mode;
}

// --- what an event means -------------------------------------------------------

function isNegative(code) {
  return code === "NXDOMAIN" || code === "0XFF";
}

function isFailure(code) {
  return ["SERVFAIL", "REFUSED", "FORMERR", "NOTIMP", "0XFE", "0XEE"].includes(code);
}

// A local server's query in mode I (or DNS) that asked a zone's servers without the
// root: its delegation came from the cache.
function delegationShortcut(ev) {
  if (ev.server !== state.localName || ev.hops.length === 0) return false;
  if (ev.mode === "R") return false;
  return !ev.hops.some((h) => h.server === "root");
}

// The path of one query, as steps: every message, out and back.
function steps(ev, from, out) {
  out = out || [];
  out.push({ dir: "ask", from: from, to: ev.server, ev: ev });
  for (const hop of ev.hops) {
    const to = hop.server || hop.to;
    if (hop.served) {
      steps(hop.served, ev.server, out);
      out[out.length - 1].hop = hop;
    } else {
      out.push({ dir: "ask", from: ev.server, to: to, hop: hop });
      out.push({ dir: "reply", from: to, to: ev.server, hop: hop });
    }
  }
  out.push({ dir: "reply", from: ev.server, to: from, ev: ev });
  return out;
}

// A short path for the table: the servers in the order they were asked.
function pathText(ev) {
  const parts = [ev.server];
  const walk = (e) => {
    for (const hop of e.hops) {
      parts.push((hop.server || hop.to) + (hop.ok ? "" : " ✗"));
      if (hop.served) walk(hop.served);
    }
  };
  walk(ev);
  if (ev.cached) return ev.server + " (cache)";
  return parts.join(" → ");
}

// One message of a path. A line-protocol query is shown as the very lines exchanged
// (`TAG, NAME, MODE` and `CODE, SERVER, TEXT`); a DNS one as its question and rcode.
function describeStep(s) {
  const li = el("li", { class: "step-" + s.dir });
  const ev = s.ev;
  const hop = s.hop;
  li.append(s.from + " → " + s.to + "   ");
  if (s.dir === "ask") {
    if (ev) {
      li.append(badge("proto", protoLabel(ev.protocol) + " " + modeLabel(ev)), " ");
      li.append(ev.protocol === "line" && ev.tag
        ? el("code", {}, ev.tag + ", " + ev.name + ", " + ev.mode)
        : ev.qtype + " " + ev.name + "?");
    } else {
      li.append(badge("proto", "mode " + hop.mode), " ");
      li.append((hop.qtype === "ADDR" ? "" : hop.qtype + " ") + hop.name + "?");
    }
  } else if (ev) {
    li.append(badge(codeClass(ev), ev.code), " ");
    li.append(ev.protocol === "line"
      ? el("code", {}, ev.code + ", " + ev.server + ", " + ev.answer)
      : ev.answer || "");
    if (ev.cached) li.append(" ", badge("hit", "from the cache"));
    if (delegationShortcut(ev)) li.append(" ", badge("deleg", "delegation cache: root skipped"));
    li.append("  (" + ms(hop ? hop.elapsed_us : ev.elapsed_us) + ")");
  } else {
    li.append(badge(hop.ok ? "proto" : "bad", hop.result), "  (" + ms(hop.elapsed_us) + ")");
  }
  return li;
}

function codeClass(ev) {
  if (ev.cached) return "hit";
  if (isFailure(ev.code)) return "bad";
  if (isNegative(ev.code)) return "neg";
  return "proto";
}

function drawPath(ev) {
  const box = $("#path");
  box.replaceChildren();
  const head = el("p", { class: "head" },
    "#" + ev.id + "  " + (ev.peer || "?") + " asked " + ev.server + ": " + ev.name + " (" + protoLabel(ev.protocol) + ", " + modeLabel(ev) + ") → " + ev.code);
  if (ev.cached) head.append(" ", badge("hit", "cache hit"));
  if (delegationShortcut(ev)) head.append(" ", badge("deleg", "delegation cache: root skipped"));
  box.append(head);
  const list = el("ol", { "aria-label": "the messages of query " + ev.id, "data-id": ev.id });
  for (const s of steps(ev, "client")) list.append(describeStep(s));
  box.append(list);
}

// --- the table -------------------------------------------------------------------

function rowFor(ev) {
  const classes = [];
  if (ev.cached) classes.push("hit");
  if (delegationShortcut(ev)) classes.push("deleg");
  if (isFailure(ev.code)) classes.push("bad");
  if (isNegative(ev.code)) classes.push("neg");
  const time = new Date(ev.at_ms).toLocaleTimeString([], { hour12: false });
  const show = el("button", {
    type: "button", class: "small",
    "aria-label": "show the path of query " + ev.id,
    onclick: () => { state.selected = ev; drawPath(ev); markSelected(); },
  }, "Path");
  const row = el("tr", {
    class: classes.join(" "), "data-id": ev.id, "data-name": ev.name,
    "data-server": ev.server, "data-code": ev.code,
  },
  el("td", { class: "num" }, ev.id),
  el("td", { class: "num" }, time),
  el("td", {}, ev.server),
  el("td", {}, protoLabel(ev.protocol)),
  el("td", {}, modeLabel(ev)),
  el("td", { class: "name" }, ev.name || "(unreadable)"),
  el("td", { class: "code" }, ev.code),
  el("td", { class: "path-cell" }, pathText(ev), delegationShortcut(ev) ? " (delegation cache)" : "", " ", show),
  el("td", { class: "num" }, ms(ev.elapsed_us)));
  return row;
}

function matches(ev) {
  const name = $("#f-name").value.trim().toLowerCase();
  const server = $("#f-server").value;
  const code = $("#f-code").value.trim().toUpperCase();
  return (!name || ev.name.includes(name)) && (!server || ev.server === server) &&
    (!code || ev.code.toUpperCase().includes(code));
}

function redrawTable() {
  const body = $("#queries tbody");
  body.replaceChildren(...state.events.filter(matches).map(rowFor));
  markSelected();
}

function markSelected() {
  for (const tr of document.querySelectorAll("#queries tbody tr")) {
    tr.classList.toggle("selected", state.selected !== null && tr.dataset.id === String(state.selected.id));
  }
}

// Events are drawn in batches, at most four times a second: a flood costs the page
// (and the machine it shares with the servers) one redraw per batch, not one per
// query; a lone query is drawn at once.
const pending = [];
const BATCH_SHOWN = 20;
const REDRAW_EVERY = 250;
let renderTimer = null;
let lastRender = 0;

function queueEvent(ev) {
  pending.push(ev);
  if (renderTimer) return;
  const wait = Math.max(10, REDRAW_EVERY - (Date.now() - lastRender));
  renderTimer = setTimeout(() => { renderTimer = null; lastRender = Date.now(); render(); }, wait);
}

function count(ev) {
  const c = state.counts.get(ev.server) || { "line": 0, "dns-udp": 0, "dns-tcp": 0 };
  c[ev.protocol] = (c[ev.protocol] || 0) + 1;
  state.counts.set(ev.server, c);
}

function render() {
  if (!pending.length) return;
  const batch = pending.splice(0);
  batch.forEach(count);
  const shown = batch.slice(-BATCH_SHOWN).reverse(); // newest first
  state.events = shown.concat(state.events).slice(0, MAX_ROWS);
  const rows = document.createDocumentFragment();
  for (const ev of shown) if (matches(ev)) rows.append(rowFor(ev));
  const body = $("#queries tbody");
  body.prepend(rows);
  while (body.rows.length > MAX_ROWS) body.deleteRow(-1);
  // The local server's queries are drawn (the servers they went through answered
  // before them, and are drawn inside them); with no local server, every query.
  const last = shown.find((ev) => !state.localName || ev.server === state.localName);
  if (last) {
    state.selected = last;
    drawPath(last);
  }
  markSelected();
  updateCounters();
  flash(shown);
  if (shown.some((ev) => ev.server === state.localName)) refreshCacheSoon();
}

function flash(events) {
  const names = new Set();
  const walk = (e) => {
    names.add(e.server);
    e.hops.forEach((h) => { if (h.server) names.add(h.server); if (h.served) walk(h.served); });
  };
  events.forEach(walk);
  for (const n of names) {
    const box = document.getElementById("server-" + n);
    if (box) {
      box.classList.add("busy");
      setTimeout(() => box.classList.remove("busy"), 600);
    }
  }
}

function updateCounters() {
  for (const s of state.servers) {
    const box = document.getElementById("server-" + s.name);
    if (!box) continue;
    const c = state.counts.get(s.name) || {};
    for (const dd of box.querySelectorAll("[data-counter]")) dd.textContent = c[dd.dataset.counter] || 0;
  }
}

// --- the hierarchy ---------------------------------------------------------------

function drawServers() {
  const box = $("#servers");
  const order = { local: 0, root: 1, tld: 2 };
  const servers = [...state.servers].sort((a, b) => order[a.role] - order[b.role]);
  box.replaceChildren(...servers.map((s) => {
    const c = state.counts.get(s.name) || {};
    return el("article", { class: "server", id: "server-" + s.name, "aria-label": s.role + " server " + s.name },
      el("h3", {}, s.name, " ", el("span", { class: "role" }, "(" + s.role + ")")),
      el("dl", {},
        el("dt", {}, "address"), el("dd", { class: "mono" }, s.addr),
        el("dt", {}, "line"), el("dd", { "data-counter": "line" }, c["line"] || 0),
        el("dt", {}, "DNS/udp"), el("dd", { "data-counter": "dns-udp" }, c["dns-udp"] || 0),
        el("dt", {}, "DNS/tcp"), el("dd", { "data-counter": "dns-tcp" }, c["dns-tcp"] || 0)));
  }));
}

async function loadHierarchy() {
  const r = await fetch("/api/hierarchy");
  const h = await r.json();
  state.servers = h.servers;
  state.byName = new Map(h.servers.map((s) => [s.name, s]));
  const local = h.servers.find((s) => s.role === "local");
  state.localName = local ? local.name : null;
  state.rootAddr = h.root;
  if (!h.root) {
    $("#ask").replaceChildren(el("p", { class: "muted" }, "No root is known here: nothing to trace through."));
  }
  const select = $("#f-server");
  const chosen = select.value;
  select.replaceChildren(el("option", { value: "" }, "all"),
    ...h.servers.map((s) => el("option", { value: s.name }, s.name)));
  select.value = chosen;
  drawServers();
  return h;
}

// --- the stream ------------------------------------------------------------------

function connect() {
  const source = new EventSource("/events");
  source.onopen = () => setStatus();
  source.onerror = () => { $("#status").textContent = "Disconnected: retrying…"; };
  source.onmessage = (m) => {
    let ev;
    try { ev = JSON.parse(m.data); } catch (e) { return; }
    if (state.paused) {
      state.held.push(ev);
      if (state.held.length > MAX_HELD) state.held.shift();
      $("#held").textContent = state.held.length + " held while paused";
      return;
    }
    queueEvent(ev);
  };
}

let dropped = 0;
function setStatus() {
  $("#status").textContent = (state.paused ? "Paused" : "Live") +
    (dropped ? " · " + dropped + " events dropped (too many to show; queries were not slowed)" : "");
}

async function poll() {
  try {
    const h = await fetch("/api/hierarchy").then((r) => r.json());
    dropped = h.events.dropped;
    setStatus();
  } catch (e) { /* the stream's status says it */ }
}

// --- the form --------------------------------------------------------------------

function recordsTable(records) {
  if (!records.length) return null;
  return el("table", {},
    el("thead", {}, el("tr", {}, ["Section", "Name", "TTL", "Type", "Data"].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, records.map((r) => el("tr", {},
      el("td", {}, r.section), el("td", {}, r.name), el("td", { class: "num" }, r.ttl), el("td", {}, r.type), el("td", {}, r.data)))));
}

function drawTrace(t) {
  const box = $("#trace");
  box.replaceChildren();
  box.append(el("p", { class: "head" }, "trace " + t.qtype + " " + t.name + ", mode " + t.mode +
    (t.mode === "I" ? ": you ask each server yourself" : ": the root resolves it for you")));
  const list = el("ol", { id: "trace-hops" });
  let n = 0;
  for (const hop of t.hops) {
    n++;
    list.append(el("li", { class: "hop-ask", "data-server": hop.server },
      "you → " + hop.server + " " + hop.address + "   " + hop.question + "? ",
      badge("proto", hop.transport + (hop.recursion_desired ? " RD" : " no RD"))));
    const reply = el("li", { class: "hop-reply", "data-server": hop.server },
      hop.server + " → you   ",
      hop.error ? badge("bad", "failed: " + hop.error) : badge(hop.rcode === "NOERROR" ? "proto" : "neg", hop.rcode),
      " ", hop.answer || "",
      hop.authoritative ? " (authoritative)" : "",
      hop.recursion_available ? " (recursion available)" : "",
      "  (" + ms(hop.elapsed_us) + ")");
    const table = recordsTable(hop.records);
    if (table) reply.append(table);
    list.append(reply);
  }
  box.append(list);
  if (t.via) box.append(el("p", {}, "The root asked " + t.via.server + " (" + t.via.address + ") for you."));
  box.append(el("p", { class: "result" }, "result: " + t.rcode +
    (t.addresses.length ? " " + t.addresses.join(", ") : "") + " (" + t.hops.length + " queries, " + ms(t.elapsed_us) + " in all)"));
}

async function ask(e) {
  e.preventDefault();
  const form = e.target;
  const params = new URLSearchParams({
    name: form.name.value.trim(), type: form.type.value, mode: form.mode.value,
  });
  $("#trace").replaceChildren(el("p", { class: "muted" }, "Resolving…"));
  try {
    const r = await fetch("/api/resolve?" + params);
    const body = await r.json();
    if (!r.ok) { $("#trace").replaceChildren(el("p", {}, badge("bad", body.error || r.statusText))); return; }
    drawTrace(body);
  } catch (err) {
    $("#trace").replaceChildren(el("p", {}, badge("bad", String(err))));
  }
}

// --- the cache -------------------------------------------------------------------

// The cache is read again after the local server has answered, at most every two
// seconds: reading it takes the cache's lock, which the server's queries need too.
const CACHE_EVERY = 2000;
let cacheTimer = null;
function refreshCacheSoon() {
  if (cacheTimer) return;
  const wait = Math.max(300, CACHE_EVERY - (Date.now() - state.cacheFetched));
  cacheTimer = setTimeout(() => { cacheTimer = null; loadCache(); }, wait);
}

// Between readings the TTLs count down in place (a redraw would move the keyboard's
// focus off a Flush button).
function tickCache() {
  for (const cell of document.querySelectorAll("#cache [data-ttl], #delegations [data-ttl]")) {
    const n = left(Number(cell.dataset.ttl));
    cell.textContent = n + " s";
    if (n === 0) cell.closest("tr").classList.add("expired");
  }
}

async function loadCache() {
  const r = await fetch("/api/cache");
  if (!r.ok) { $("#cache-summary").textContent = "No local server here: no cache."; return; }
  state.cache = await r.json();
  state.cacheFetched = Date.now();
  drawCache();
}

function left(ttl) {
  const gone = Math.floor((Date.now() - state.cacheFetched) / 1000);
  return Math.max(0, ttl - gone);
}

function drawCache() {
  const c = state.cache;
  if (!c) return;
  // Keep the keyboard's place across the redraw.
  const focused = document.activeElement && document.activeElement.closest("#cache")
    ? document.activeElement.getAttribute("aria-label") : null;
  $("#cache-summary").textContent = c.learned_names + " names learned; " + c.fixed_names +
    " fixed entries (from cache files: never expire)" +
    (c.delegation_cache ? "" : "; the delegation cache is off (--no-delegation-cache)");
  const rows = c.learned.filter((l) => left(l.ttl_left) > 0).map((l) => {
    const answer = l.records.map((r) => r.type + " " + r.data).join(", ");
    return el("tr", { class: l.negative ? "neg" : "", "data-name": l.name },
      el("td", { class: "name" }, l.name),
      el("td", {}, l.question),
      el("td", { class: "answer" }, l.negative ? badge("neg", l.kind === "nxdomain" ? "NXDOMAIN" : "NODATA") : "", l.negative ? " " : "", answer),
      el("td", { class: "num", "data-ttl": l.ttl_left }, left(l.ttl_left) + " s"),
      el("td", {}, el("button", { type: "button", class: "small", "aria-label": "flush " + l.name, onclick: () => flush(l.name) }, "Flush")));
  });
  $("#cache tbody").replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 5, class: "muted" }, "Nothing learned yet."))]));
  const dels = c.delegations.filter((d) => left(d.ttl_left) > 0).map((d) => el("tr", { "data-zone": d.zone },
    el("td", { class: "name" }, d.zone),
    el("td", {}, d.servers.map((s) => s.name + " " + s.addresses.join(" ")).join(", ")),
    el("td", {}, d.from),
    el("td", { class: "num", "data-ttl": d.ttl_left }, left(d.ttl_left) + " s")));
  $("#delegations tbody").replaceChildren(...(dels.length ? dels : [el("tr", {}, el("td", { colspan: 4, class: "muted" }, "No delegation kept."))]));
  if (focused) {
    const again = [...document.querySelectorAll("#cache button")].find((b) => b.getAttribute("aria-label") === focused);
    if (again) again.focus();
  }
}

async function flush(name) {
  const q = name === null ? "all=1" : "name=" + encodeURIComponent(name);
  const r = await fetch("/api/flush?" + q, { method: "POST" });
  const body = await r.json();
  $("#flush-status").textContent = r.ok
    ? (name === null ? "Flushed everything learned" : "Flushed " + name) + ": " + body.names + " names, " + body.zones + " zones."
    : "Refused: " + body.error;
  await loadCache();
}

// --- wiring ----------------------------------------------------------------------

$("#ask").addEventListener("submit", ask);
$("#flush").addEventListener("submit", (e) => {
  e.preventDefault();
  const name = $("#flush-name").value.trim();
  if (name) flush(name);
});
$("#flush-all").addEventListener("click", () => flush(null));
for (const id of ["#f-name", "#f-server", "#f-code"]) {
  for (const what of ["input", "change", "search"]) $(id).addEventListener(what, redrawTable);
}
$("#pause").addEventListener("click", (e) => {
  state.paused = !state.paused;
  e.target.setAttribute("aria-pressed", String(state.paused));
  e.target.textContent = state.paused ? "Resume" : "Pause";
  if (!state.paused) {
    state.held.splice(0).forEach(queueEvent);
    $("#held").textContent = "";
  }
  setStatus();
});

loadHierarchy().then(() => { connect(); loadCache(); });
setInterval(poll, 2000);
setInterval(tickCache, 1000);
setInterval(loadCache, 10000);

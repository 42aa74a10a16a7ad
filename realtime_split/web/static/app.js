// realtime-split ui: the page. State lives on the server and arrives over one WebSocket 20 times a second;
// actions are fetch() calls. Every request carries the token the server printed.
"use strict";
const T = window.TOKEN;
const $ = (id) => document.getElementById(id);
const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k);
  return e;
};
const url = (path, extra = "") => `${path}?token=${encodeURIComponent(T)}${extra}`;
async function api(path, body) {
  const opts = body instanceof FormData ? { method: "POST", body }
    : { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {}) };
  const r = await fetch(url(path), opts);
  const data = await r.json().catch(() => ({ error: `${r.status} ${r.statusText}` }));
  if (!r.ok) throw new Error(data.error || r.statusText);
  return data;
}
const dbText = (x) => (x > 0 ? (20 * Math.log10(x)).toFixed(1) : "-∞");

// ---------------------------------------------------------------- tabs
for (const b of document.querySelectorAll(".tab")) {
  b.addEventListener("click", () => showPage(b.dataset.page));
}
function showPage(name) {
  for (const b of document.querySelectorAll(".tab")) b.classList.toggle("active", b.dataset.page === name);
  for (const p of document.querySelectorAll(".page")) p.classList.toggle("hidden", p.id !== `page-${name}`);
  location.hash = name;
}
if (location.hash === "#live") showPage("live");

// ---------------------------------------------------------------- options
let OPTIONS = null;
async function loadOptions() {
  const r = await fetch(url("/api/options"));
  OPTIONS = await r.json();
  const models = $("model");
  for (const m of OPTIONS.models) models.append(el("option", { value: m }, m));
  if (OPTIONS.model) models.value = OPTIONS.model;
  models.addEventListener("change", fillPresets);
  fillPresets();
  const live = $("live-preset");
  for (const p of OPTIONS.presets) {
    live.append(el("option", { value: `${p.model}|${p.preset}` }, `${p.preset}: ${p.ms} ms (${p.model})`));
  }
  if (OPTIONS.model && !OPTIONS.models.slice(1).includes(OPTIONS.model)) {
    live.prepend(el("option", { value: `${OPTIONS.model}|` }, `${OPTIONS.model}: its default preset`));
  }
  live.selectedIndex = 0;
  for (const d of OPTIONS.devices.inputs) $("live-input-device").append(el("option", { value: d }, d));
  for (const d of OPTIONS.devices.outputs) $("live-output-device").append(el("option", { value: d }, d));
  $("path-row").classList.toggle("hidden", !OPTIONS.allow_paths);
}
function fillPresets() {
  const sel = $("preset");
  sel.textContent = "";
  sel.append(el("option", { value: "" }, "offline (best)"));
  for (const p of (OPTIONS.presets || []).filter((p) => p.model === $("model").value && p.preset !== "offline")) {
    sel.append(el("option", { value: p.preset }, `${p.preset} (as live, ${p.ms} ms)`));
  }
}

// ---------------------------------------------------------------- files in
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); upload(e.dataTransfer.files); });
$("file-input").addEventListener("change", (e) => { upload(e.target.files); e.target.value = ""; });
$("path-go").addEventListener("click", async () => {
  $("files-error").textContent = "";
  try { await api("/api/paths", { path: $("path").value, ...choices() }); } catch (err) { $("files-error").textContent = err.message; }
});
function choices() { return { model: $("model").value, latency: $("preset").value, stems: $("stems").value }; }
async function upload(files) {
  $("files-error").textContent = "";
  if (!files || !files.length) return;
  const form = new FormData();
  for (const f of files) form.append("files", f, f.name);
  for (const [k, v] of Object.entries(choices())) form.append(k, v);
  try { await api("/api/files", form); } catch (err) { $("files-error").textContent = err.message; }
}

// ---------------------------------------------------------------- jobs
const cards = new Map();
function renderJobs(jobs) {
  const box = $("jobs");
  for (const job of jobs.slice().reverse()) {
    let card = cards.get(job.id);
    if (!card) {
      card = makeCard(job);
      cards.set(job.id, card);
      box.prepend(card.root);
    }
    card.state.textContent = job.state;
    card.state.className = `state ${job.state}`;
    card.bar.value = job.fraction;
    card.bar.classList.toggle("hidden", job.state !== "running" && job.state !== "queued");
    card.cancel.classList.toggle("hidden", job.state !== "running" && job.state !== "queued");
    card.error.textContent = job.error || "";
    if (job.state === "done" && !card.done) { card.done = true; card.root.append(finished(job)); }
  }
}
function makeCard(job) {
  const state = el("span", { class: "state" });
  const bar = el("progress", { max: 1, value: 0 });
  const cancel = el("button", { class: "cancel", onclick: () => api(`/api/jobs/${job.id}/cancel`) }, "Cancel");
  const error = el("p", { class: "error" });
  const title = el("h3", {}, job.name, state, cancel);
  const root = el("div", { class: "job", id: `job-${job.id}`, "data-job": job.id }, title, bar, error);
  return { root, state, bar, cancel, error, done: false };
}
function finished(job) {
  const box = el("div", { class: "result" });
  const note = el("p", { class: "muted" },
    `${(job.model || "default model").split("/").pop()}, ${job.latency || "offline"}; ` +
    `${(job.seconds || 0).toFixed(1)} s of audio in ` +
    `${(job.elapsed || 0).toFixed(1)} s`);
  if (job.mix_of) {
    box.append(note, el("a", { href: url(`/api/jobs/${job.id}/stems/mix`, "&download=1"), class: "button download",
      "data-stem": "mix" }, "Download the mix"));
    return box;
  }
  const player = new Player(job);
  const peaks = fetch(url(`/api/jobs/${job.id}/peaks`)).then((r) => r.json());
  const play = el("button", { class: "play primary", onclick: () => player.toggle() }, "Play");
  const time = el("span", { class: "time muted" }, "loading…");
  player.onstate = (playing, t, ready) => {
    play.textContent = playing ? "Pause" : "Play";
    time.textContent = ready ? `${t.toFixed(1)} / ${player.duration.toFixed(1)} s` : "loading…";
  };
  const rows = job.stems.map((stem) => {
    const canvas = el("canvas", { width: 480, height: 44 });
    peaks.then((all) => drawPeaks(canvas, all[stem] || []));
    const fader = el("input", { type: "range", min: -40, max: 12, step: 0.5, value: 0, class: "gain" });
    const mute = el("button", { class: "mute" }, "M");
    const solo = el("button", { class: "solo" }, "S");
    const val = el("span", { class: "db" }, "0 dB");
    fader.addEventListener("input", () => { val.textContent = `${fader.value} dB`; player.setGain(stem, +fader.value); });
    mute.addEventListener("click", () => { mute.classList.toggle("on"); player.setMute(stem, mute.classList.contains("on")); });
    solo.addEventListener("click", () => { solo.classList.toggle("on"); player.setSolo(stem, solo.classList.contains("on")); });
    return el("div", { class: "stem", "data-stem": stem }, el("span", { class: "name" }, stem), canvas, fader, val,
      el("span", {}, mute, " ", solo),
      el("a", { href: url(`/api/jobs/${job.id}/stems/${stem}`, "&download=1"), class: "download", "data-stem": stem },
        `⬇ ${job.files[stem]}`));
  });
  const zip = el("a", { href: url(`/api/jobs/${job.id}/zip`), class: "button zip" }, "Download all (zip)");
  const karaoke = el("button", { class: "karaoke", onclick: () => api(`/api/jobs/${job.id}/mix`, { gains: player.gainsForMix() }) },
    "Mix with these gains");
  box.append(note, el("div", { class: "transport" }, play, time), ...rows, el("div", { class: "row" }, zip, karaoke));
  player.load();
  return box;
}
function drawPeaks(canvas, peaks) {
  const g = canvas.getContext("2d"), w = canvas.width, h = canvas.height;
  g.fillStyle = "#2f6fde";
  const n = peaks.length || 1;
  for (let i = 0; i < peaks.length; i++) {
    const y = Math.min(1, peaks[i]) * (h / 2);
    g.fillRect((i * w) / n, h / 2 - y, Math.max(1, w / n), Math.max(1, 2 * y));
  }
}

// Players: every stem decoded into one AudioContext and started at the same instant, so they stay in sync;
// mute, solo and gain are GainNodes.
let AUDIO = null;
class Player {
  constructor(job) { this.job = job; this.buffers = {}; this.gains = {}; this.db = {}; this.muted = {}; this.soloed = {};
    this.sources = []; this.offset = 0; this.started = 0; this.playing = false; this.duration = 0; this.ready = false;
    this.onstate = () => {}; }
  async load() {
    AUDIO = AUDIO || new AudioContext();
    const names = this.job.stems;
    await Promise.all(names.map(async (s) => {
      const r = await fetch(url(`/api/jobs/${this.job.id}/stems/${s}`));
      this.buffers[s] = await AUDIO.decodeAudioData(await r.arrayBuffer());
      this.gains[s] = AUDIO.createGain(); this.gains[s].connect(AUDIO.destination); this.db[s] = 0;
    }));
    this.duration = Math.max(...names.map((s) => this.buffers[s].duration));
    this.ready = true;
    const root = document.getElementById(`job-${this.job.id}`);
    root.dataset.ready = "1"; root.dataset.duration = this.duration.toFixed(3);
    root.dataset.channels = names.map((s) => this.buffers[s].numberOfChannels).join(",");
    this.tick();
  }
  position() { return this.playing ? Math.min(this.duration, this.offset + AUDIO.currentTime - this.started) : this.offset; }
  toggle() {
    if (!this.ready) return;
    if (this.playing) { this.offset = this.position(); this.stopSources(); this.playing = false; }
    else {
      AUDIO.resume();
      if (this.offset >= this.duration) this.offset = 0;
      const at = AUDIO.currentTime + 0.05;
      this.sources = this.job.stems.map((s) => {
        const src = AUDIO.createBufferSource(); src.buffer = this.buffers[s]; src.connect(this.gains[s]);
        src.start(at, this.offset); return src;
      });
      this.started = at; this.playing = true;
    }
    this.apply(); this.tick();
  }
  stopSources() { for (const s of this.sources) { try { s.stop(); } catch (e) { /* already ended */ } } this.sources = []; }
  tick() {
    const t = this.position();
    if (this.playing && t >= this.duration) { this.playing = false; this.offset = this.duration; this.stopSources(); }
    this.onstate(this.playing, t, this.ready);
    const root = document.getElementById(`job-${this.job.id}`);
    if (root) root.dataset.position = t.toFixed(3);
    if (this.playing) requestAnimationFrame(() => this.tick());
  }
  level(s) {
    const solo = Object.values(this.soloed).some(Boolean);
    return this.muted[s] || (solo && !this.soloed[s]) ? 0 : Math.pow(10, this.db[s] / 20);
  }
  apply() { for (const s of this.job.stems) if (this.gains[s]) this.gains[s].gain.setTargetAtTime(this.level(s), AUDIO.currentTime, 0.005); }
  setGain(s, db) { this.db[s] = db; this.apply(); }
  setMute(s, on) { this.muted[s] = on; this.apply(); }
  setSolo(s, on) { this.soloed[s] = on; this.apply(); }
  gainsForMix() {
    const out = {};
    for (const s of this.job.stems) out[s] = this.level(s) > 0 ? (this.db[s] || 0) : null;  // null: silent (-inf)
    return out;
  }
}

// ---------------------------------------------------------------- live
const show = (id, on) => $(id).classList.toggle("hidden", !on);
function liveRows() {
  const i = $("live-input").value, o = $("live-output").value;
  show("live-input-device-row", i === "device"); show("live-file-row", i === "upload"); show("live-path-row", i === "path");
  show("live-output-device-row", o === "device"); show("live-connect-row", o === "jack" || i === "jack");
}
$("live-input").addEventListener("change", liveRows);
$("live-output").addEventListener("change", liveRows);
liveRows();
$("live-start").addEventListener("click", async () => {
  $("live-error").textContent = "";
  const [model, latency] = $("live-preset").value.split("|");
  const body = { input: $("live-input").value, output: $("live-output").value, model, latency,
    input_device: $("live-input-device").value, output_device: $("live-output-device").value,
    path: $("live-path").value, connect: $("live-connect").value.split(/\s+/).filter(Boolean) };
  try {
    if (body.input === "upload") {
      const f = $("live-file").files[0];
      if (!f) throw new Error("choose a file to play first");
      const form = new FormData(); form.append("files", f, f.name); form.append("purpose", "live");
      body.upload = (await api("/api/files", form)).added[0].upload;
    }
    $("live-state").textContent = "starting";
    await api("/api/live/start", body);
  } catch (err) { $("live-error").textContent = err.message; }
});
$("live-stop").addEventListener("click", () => api("/api/live/stop").catch((err) => { $("live-error").textContent = err.message; }));

const channels = new Map();
let SOCKET = null;
function control(action, stem, value) {
  if (SOCKET && SOCKET.readyState === 1) SOCKET.send(JSON.stringify({ action, stem, value }));
}
function channel(name, mixable) {
  let c = channels.get(name);
  if (c) return c;
  const bar = el("div");
  const db = el("span", { class: "db" }, "–");
  const row = el("div", { class: "channel", "data-channel": name }, el("span", { class: "name" }, name),
    el("div", { class: "meter" }, bar), el("span"), el("span"), el("span"), db);
  c = { row, bar, db };
  if (mixable) {
    const fader = el("input", { type: "range", min: -40, max: 12, step: 0.5, value: 0, class: "fader" });
    const val = el("span", { class: "db fader-db" }, "0 dB");
    const mute = el("button", { class: "mute" }, "Mute");
    const solo = el("button", { class: "solo" }, "Solo");
    fader.addEventListener("input", () => { val.textContent = `${fader.value} dB`; control("gain", name, +fader.value); });
    mute.addEventListener("click", () => control("mute", name, !mute.classList.contains("on")));
    solo.addEventListener("click", () => control("solo", name, !solo.classList.contains("on")));
    row.children[2].replaceWith(el("span", {}, fader, " ", val));
    row.children[3].replaceWith(mute); row.children[4].replaceWith(solo);
    Object.assign(c, { fader, val, mute, solo });
  }
  channels.set(name, c);
  $("mixer").append(row);
  return c;
}
function renderLive(live) {
  $("live-state").textContent = live.state;
  $("live-state").className = `state ${live.state}`;
  if (live.error) $("live-error").textContent = live.error;
  const running = live.state === "running";
  $("live-start").disabled = live.state !== "stopped";
  $("live-stop").disabled = live.state === "stopped";
  if (!live.levels) return;
  $("live-latency").textContent = `${live.latency_ms} ms`;
  $("live-latency-text").textContent = live.latency_text + (live.session ? ` — ${live.session.model}, ${live.session.preset}` : "");
  $("live-missed").textContent = live.missed_deadlines;
  $("live-xruns").textContent = live.xruns;
  $("live-seconds").textContent = `${live.seconds.toFixed(1)} s`;
  $("live-load").textContent = `${Math.round(100 * live.load)} %`;
  const mix = new Map((live.mix || []).map((m) => [m.stem, m]));
  for (const [name, peak] of Object.entries(live.levels)) {
    const c = channel(name, name !== "input" && mix.has(name));
    const db = peak > 0 ? 20 * Math.log10(peak) : -99;
    c.bar.style.width = `${Math.max(0, Math.min(100, ((db + 60) / 60) * 100))}%`;
    c.bar.className = db > -1 ? "over" : db > -9 ? "hot" : "";
    c.db.textContent = `${dbText(peak)} dB`;
    c.row.dataset.level = peak.toFixed(5);
    const m = mix.get(name);
    if (m && c.mute) {
      c.mute.classList.toggle("on", m.muted); c.solo.classList.toggle("on", m.soloed);
      if (document.activeElement !== c.fader && m.db !== null) { c.fader.value = m.db; c.val.textContent = `${m.db} dB`; }
    }
  }
  if (!running) for (const c of channels.values()) c.bar.style.width = "0";
}

// ---------------------------------------------------------------- the push
let UPDATES = 0;
function connect() {
  const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws?token=${encodeURIComponent(T)}`);
  ws.onopen = () => { SOCKET = ws; $("connection").textContent = "connected"; };
  ws.onmessage = (e) => {
    const data = JSON.parse(e.data);
    if (data.error) { $("live-error").textContent = data.error; return; }
    UPDATES++; document.body.dataset.updates = UPDATES;
    renderJobs(data.jobs); renderLive(data.live);
  };
  ws.onclose = () => { SOCKET = null; $("connection").textContent = "disconnected: retrying…"; setTimeout(connect, 1000); };
}
loadOptions().then(connect);

// bigcppn explore: the page. Every request to /api/ and /live/ carries the token the page got at load.
"use strict";
const BOOT = JSON.parse(document.getElementById("boot").textContent);
const TOKEN = BOOT.token;
const CH = BOOT.choices;
const $ = (id) => document.getElementById(id);
const HDR = { "X-Bigcppn-Token": TOKEN };

let cfg = BOOT.config;          // the full config, as the server's config_to_dict makes it
let live = null;                // the last /api/view answer
let page = 0;                   // the seed page of the grid
let viewer = null;
const hist = { list: [], at: -1 };
const inflight = {};            // name -> AbortController: a newer request cancels the older one
window.explore = { ready: false, views: 0, previews: 0, gridLoads: 0, errors: [] };

// ---------------------------------------------------------------- encoding and requests
function encode(c) {
  const bytes = new TextEncoder().encode(JSON.stringify(c));
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
function decode(text) {
  const s = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  return JSON.parse(new TextDecoder().decode(Uint8Array.from(s, (ch) => ch.charCodeAt(0))));
}
async function api(name, path, params, method = "GET") {
  if (name && inflight[name]) inflight[name].abort();
  const ctl = new AbortController();
  if (name) inflight[name] = ctl;
  const url = path + "?" + new URLSearchParams(params).toString();
  const r = await fetch(url, { method, headers: HDR, signal: ctl.signal });
  if (name && inflight[name] === ctl) delete inflight[name];
  return r;
}
async function failure(r) {
  try { return await r.json(); } catch (e) { return { error: `${r.status} ${r.statusText}` }; }
}
const quiet = (e) => { if (e.name !== "AbortError") console.warn(e); };

// ---------------------------------------------------------------- errors beside the controls
function clearErrors() {
  for (const el of document.querySelectorAll(".error")) el.textContent = "";
}
function showError(err, fallback = "error-general") {
  const key = err.key;
  let el = key ? document.querySelector(`.error[data-key="${key}"]`) : null;
  if (!el && key) el = document.querySelector(`.error[data-key^="${key.split(".")[0]}"]`);
  (el || $(fallback)).textContent = err.error;
  window.explore.errors.push(err.error);
}

// ---------------------------------------------------------------- controls
function field(label, key, input) {
  const row = document.createElement("label");
  row.className = "row";
  row.innerHTML = `<span>${label}</span>`;
  row.appendChild(input);
  const err = document.createElement("div");
  err.className = "error";
  err.dataset.key = key;
  const wrap = document.createElement("div");
  wrap.append(row, err);
  return wrap;
}
function select(options, value, onchange) {
  const s = document.createElement("select");
  for (const o of options) s.add(new Option(o, o, false, String(o) === String(value)));
  s.onchange = () => onchange(s.value);
  return s;
}
function number(value, step, onchange) {
  const i = document.createElement("input");
  i.type = "number"; i.step = step; i.value = value;
  i.onchange = () => onchange(parseFloat(i.value));
  return i;
}
function slider(value, min, max, step, oninput, name) {
  const box = document.createElement("span");
  const r = document.createElement("input");
  r.type = "range"; r.min = min; r.max = max; r.step = step; r.value = value;
  if (name) r.name = name;
  const n = document.createElement("output");
  n.textContent = Number(value).toFixed(3);
  r.oninput = () => { n.textContent = Number(r.value).toFixed(3); oninput(parseFloat(r.value), false); };
  r.onchange = () => oninput(parseFloat(r.value), true);
  box.append(r, n);
  return box;
}
function set(path, value, push = true) {
  const c = structuredClone(cfg);
  let node = c;
  for (const k of path.slice(0, -1)) node = node[k];
  node[path[path.length - 1]] = value;
  apply(c, { push });
}

function buildControls() {
  const f = $("controls");
  f.innerHTML = "";
  const net = cfg.network, view = cfg.view;
  const h2 = (t) => { const e = document.createElement("h3"); e.textContent = t; f.appendChild(e); };
  h2("Picture");
  f.appendChild(field("seed", "seed", number(cfg.seed, 1, (v) => set(["seed"], Math.max(0, Math.round(v))))));
  const perLayer = Array.isArray(net.activation);
  const one = perLayer ? net.activation[0] : net.activation;
  f.appendChild(field("activation", "network.activation", select(CH.activations, one,
    (v) => set(["network", "activation"], perLayer ? net.hidden.map(() => v) : v))));
  const pl = document.createElement("input");
  pl.type = "checkbox"; pl.checked = perLayer;
  pl.onchange = () => set(["network", "activation"], pl.checked ? net.hidden.map(() => one) : one);
  f.appendChild(field("per layer", "network.activation", pl));
  if (perLayer) {
    net.activation.forEach((a, i) => f.appendChild(field(`layer ${i + 1}`, "network.activation",
      select(CH.activations, a, (v) => { const acts = [...net.activation]; acts[i] = v; set(["network", "activation"], acts); }))));
  }
  const hid = document.createElement("input");
  hid.value = net.hidden.join(","); hid.name = "hidden";
  hid.onchange = () => {
    const widths = hid.value.split(",").map((s) => parseInt(s.trim(), 10)).filter((v) => !Number.isNaN(v));
    const acts = Array.isArray(net.activation) ? widths.map((_, i) => net.activation[i] || one) : net.activation;
    const c = structuredClone(cfg);
    c.network.hidden = widths; c.network.activation = acts;
    apply(c, { push: true });
  };
  f.appendChild(field("hidden widths", "network.hidden", hid));
  f.appendChild(field("weight init", "network.weight_init", select(CH.inits, net.weight_init, (v) => set(["network", "weight_init"], v))));
  f.appendChild(field("weight scale", "network.weight_scale", slider(net.weight_scale, 0, 5, 0.01, (v, p) => set(["network", "weight_scale"], v, p), "weight_scale")));
  f.appendChild(field("bias init", "network.bias_init", select(CH.inits, net.bias_init, (v) => set(["network", "bias_init"], v))));
  f.appendChild(field("bias scale", "network.bias_scale", slider(net.bias_scale, 0, 5, 0.01, (v, p) => set(["network", "bias_scale"], v, p), "bias_scale")));
  f.appendChild(field("bias", "network.bias", select(["true", "false", "first"], String(net.bias),
    (v) => set(["network", "bias"], v === "first" ? "first" : v === "true"))));
  const ins = document.createElement("span");
  for (const name of CH.inputs) {
    const b = document.createElement("input");
    b.type = "checkbox"; b.checked = net.inputs.includes(name); b.title = name;
    b.onchange = () => set(["network", "inputs"], CH.inputs.filter((n) => (n === name ? b.checked : net.inputs.includes(n))));
    const l = document.createElement("label"); l.append(b, name); ins.appendChild(l);
  }
  f.appendChild(field("inputs", "network.inputs", ins));
  if (net.inputs.includes("z")) {
    f.appendChild(field("z size", "network.z_size", number(net.z_size, 1, (v) => {
      const c = structuredClone(cfg); c.network.z_size = Math.round(v); c.network.z = []; apply(c, { push: true });
    })));
    const z = net.z.length ? net.z : (live && live.z) || [];
    z.forEach((v, i) => f.appendChild(field(`z[${i}]`, "network.z", slider(v, -2, 2, 0.01, (x, p) => {
      const zz = [...z]; zz[i] = x; set(["network", "z"], zz, p);
    }, `z${i}`))));
  }
  f.appendChild(field("colour", "network.color", select(CH.colors, net.color, (v) => set(["network", "color"], v))));
  f.appendChild(field("output", "network.output_activation", select(CH.activations, net.output_activation, (v) => set(["network", "output_activation"], v))));
  h2("View");
  f.appendChild(field("centre x", "view.center", number(view.center[0], 0.01, (v) => set(["view", "center"], [v, view.center[1]]))));
  f.appendChild(field("centre y", "view.center", number(view.center[1], 0.01, (v) => set(["view", "center"], [view.center[0], v]))));
  f.appendChild(field("zoom (log2)", "view.zoom", slider(Math.log2(view.zoom), -6, 30, 0.01, (v, p) => set(["view", "zoom"], 2 ** v, p), "zoom")));
  const use = document.createElement("button");
  use.type = "button"; use.id = "use-view"; use.textContent = "use the viewer's view"; use.onclick = useViewerView;
  f.appendChild(use);
  f.appendChild(field("canvas width", "canvas.width", number(cfg.canvas.width, 1, (v) => set(["canvas", "width"], Math.round(v)))));
  f.appendChild(field("canvas height", "canvas.height", number(cfg.canvas.height, 1, (v) => set(["canvas", "height"], Math.round(v)))));
}

function useViewerView() {
  if (!viewer || !live) return;
  const [W, H] = live.base;
  const c = viewer.viewport.getCenter(true);
  const pitch = 1 / (cfg.view.zoom * (Math.min(W, H) - 2 * cfg.canvas.bleed));  // the trimmed side spans 1/zoom
  const cx = cfg.view.center[0] + (c.x * W - W / 2) * pitch;
  const cy = cfg.view.center[1] + (c.y * W - H / 2) * pitch;
  const zoom = cfg.view.zoom * viewer.viewport.getZoom(true) / viewer.viewport.getHomeZoom();
  const n = structuredClone(cfg);
  n.view.center = [cx, cy]; n.view.zoom = zoom;
  apply(n, { push: true });
}

// ---------------------------------------------------------------- applying a config
let pending = null;
function apply(c, { push = true, grid = true } = {}) {
  const gridChanged = grid && JSON.stringify({ ...c, seed: 0 }) !== JSON.stringify({ ...cfg, seed: 0 });
  cfg = c;
  if (push) remember();
  location.replace("#c=" + encode(cfg) + "&page=" + page);
  $("permalink").href = location.href;
  if (pending) cancelAnimationFrame(pending);
  pending = requestAnimationFrame(() => { pending = null; refresh(); });
  // the grid follows once the setting rests a moment: the picture first
  if (gridChanged) { clearTimeout(gridTimer); gridTimer = setTimeout(loadGrid, push ? 150 : 400); }
}
let gridTimer = null;
function remember() {
  const enc = encode(cfg);
  if (hist.list[hist.at] === enc) return;
  hist.list = hist.list.slice(0, hist.at + 1);
  hist.list.push(enc);
  hist.at = hist.list.length - 1;
}
function travel(step) {
  const at = hist.at + step;
  if (at < 0 || at >= hist.list.length) return;
  hist.at = at;
  apply(decode(hist.list[at]), { push: false });
  buildControls();
}

let generation = 0, sharpGeneration = 0;  // the newest refresh, and the newest whose tiles are all drawn
async function refresh() {
  const my = ++generation;
  clearErrors();
  const enc = encode(cfg);
  $("status").textContent = "rendering…";
  const t0 = performance.now();
  // the coarse preview at once, then the live tiles
  api("preview", "/api/preview", { c: enc, size: 192 }).then(async (r) => {
    if (!r.ok) return;
    const blob = await r.blob();
    window.explore.previews++;
    window.explore.previewMs = performance.now() - t0;
    if (sharpGeneration >= my) return;  // the sharp tiles came first (cached): no preview over them
    const url = URL.createObjectURL(blob);
    const img = $("preview");
    if (img.src) URL.revokeObjectURL(img.src);
    img.src = url; img.style.opacity = 1;
  }).catch(quiet);
  let r;
  try { r = await api("view", "/api/view", { c: enc }); } catch (e) { return quiet(e); }
  if (!r.ok) { showError(await failure(r)); $("status").textContent = "not rendered"; return; }
  live = await r.json();
  $("toml").textContent = live.toml;
  const dl = $("download-toml");
  if (dl.href.startsWith("blob:")) URL.revokeObjectURL(dl.href);
  dl.href = URL.createObjectURL(new Blob([live.toml], { type: "application/toml" }));
  dl.download = `bigcppn-seed${cfg.seed}.toml`;
  if (cfg.network.inputs.includes("z") && !cfg.network.z.length && live.z) buildControls();
  openLive(my);
  window.explore.views++;
  $("status").textContent = `seed ${cfg.seed} · ${live.base[0]}×${live.base[1]} base, zooms ×2^${live.extra}`;
  planPrint();
}

function openLive(my) {
  if (typeof OpenSeadragon === "undefined") { window.explore.ready = true; return; }
  const source = { Image: { xmlns: "http://schemas.microsoft.com/deepzoom/2008", Url: `/live/${live.tag}/image_files/`,
    Format: "jpeg", Overlap: String(live.overlap), TileSize: String(live.tile),
    Size: { Width: String(live.width), Height: String(live.height) } } };
  if (!viewer) {
    viewer = OpenSeadragon({ element: $("viewer"), prefixUrl: "/openseadragon/images/", showNavigator: true,
      loadTilesWithAjax: true, ajaxHeaders: HDR, immediateRender: true, maxZoomPixelRatio: 2,
      visibilityRatio: 0.2, zoomPerScroll: 1.6, drawer: "canvas", preserveViewport: false });
    window.viewer = viewer;
    viewer.addHandler("tile-load-failed", () => {});  // a superseded tile: the newer picture replaces it
  } else {
    viewer.imageLoader.clear();  // tiles of the older picture not yet asked for are never asked for
  }
  const tag = live.tag;
  viewer.open(source);
  viewer.addOnceHandler("open", () => {
    const item = viewer.world.getItemAt(0);
    const done = () => {
      if (live && live.tag === tag && item.getFullyLoaded()) {
        sharpGeneration = Math.max(sharpGeneration, my);
        if (!window.explore.sharpMs) window.explore.sharpMs = performance.now();
        $("preview").style.opacity = 0; window.explore.ready = true; window.explore.sharpTag = tag;
      }
    };
    item.addHandler("fully-loaded-change", done);
    done();
  });
}

// ---------------------------------------------------------------- the seed grid
async function loadGrid() {
  const c = structuredClone(cfg);
  $("page-label").textContent = `${page * CH.pageSeeds}–${(page + 1) * CH.pageSeeds - 1}`;
  let r;
  try { r = await api("sheet", "/api/sheet", { c: encode(c), page, cell: 160 }); } catch (e) { return quiet(e); }
  if (!r.ok) { showError(await failure(r)); return; }
  const url = URL.createObjectURL(await r.blob());
  const img = new Image();
  img.onload = () => {
    const cols = 6, rows = Math.ceil(CH.pageSeeds / cols);
    const w = img.naturalWidth / cols, h = img.naturalHeight / rows;
    const grid = $("grid");
    for (const old of grid.querySelectorAll(".cell")) if (old.dataset.url) URL.revokeObjectURL(old.dataset.url);
    grid.innerHTML = "";
    for (let i = 0; i < CH.pageSeeds; i++) {
      const seed = page * CH.pageSeeds + i;
      const d = document.createElement("button");
      d.className = "cell"; d.title = `seed ${seed}`; d.dataset.seed = seed;
      const scale = 80 / Math.max(w, h);
      Object.assign(d.style, { width: `${w * scale}px`, height: `${h * scale}px`, backgroundImage: `url(${url})`,
        backgroundSize: `${img.naturalWidth * scale}px ${img.naturalHeight * scale}px`,
        backgroundPosition: `-${(i % cols) * w * scale}px -${Math.floor(i / cols) * h * scale}px` });
      d.innerHTML = `<span>${seed}</span>`;
      d.onclick = () => { set(["seed"], seed); buildControls(); };
      grid.appendChild(d);
    }
    if (grid.firstChild) grid.firstChild.dataset.url = url;
    if (!window.explore.gridLoads) window.explore.gridMs = performance.now();  // since the page was asked for
    window.explore.gridLoads++;
  };
  img.src = url;
}

// ---------------------------------------------------------------- favourites
function loadFavs() { try { return JSON.parse(localStorage.getItem("bigcppn-favs") || "[]"); } catch (e) { return []; } }
function drawFavs() {
  const box = $("favs");
  box.innerHTML = "";
  loadFavs().forEach((f, i) => {
    const b = document.createElement("button");
    b.className = "fav"; b.title = "open; right-click removes";
    b.innerHTML = `<img src="${f.thumb}" alt=""><span>${f.seed}</span>`;
    b.onclick = () => { apply(decode(f.c)); buildControls(); };
    b.oncontextmenu = (e) => { e.preventDefault(); const l = loadFavs(); l.splice(i, 1); localStorage.setItem("bigcppn-favs", JSON.stringify(l)); drawFavs(); };
    box.appendChild(b);
  });
}
async function addFav() {
  const r = await api(null, "/api/preview", { c: encode(cfg), size: 96 });
  if (!r.ok) return showError(await failure(r));
  const blob = await r.blob();
  const thumb = await new Promise((ok) => { const fr = new FileReader(); fr.onload = () => ok(fr.result); fr.readAsDataURL(blob); });
  const l = loadFavs();
  l.push({ c: encode(cfg), seed: cfg.seed, thumb });
  localStorage.setItem("bigcppn-favs", JSON.stringify(l.slice(-24)));
  drawFavs();
}

// ---------------------------------------------------------------- print, pyramid, jobs
function buildProducts() {
  const p = $("print");
  p.innerHTML = "";
  p.appendChild(field("paper", "canvas.width", select(["pixels", ...CH.papers], "A2", planPrint))).querySelector("select").name = "paper";
  for (const [label, name, val] of [["width px", "width", ""], ["height px", "height", ""], ["DPI", "dpi", "300"], ["bleed", "bleed", "3mm"]]) {
    const i = document.createElement("input"); i.name = name; i.value = val; i.onchange = planPrint;
    p.appendChild(field(label, `canvas.${name}`, i));
  }
  p.appendChild(field("format", "output.format", select(CH.formats, "tif", planPrint))).querySelector("select").name = "format";
  for (const name of ["landscape", "cmyk"]) {
    const b = document.createElement("input"); b.type = "checkbox"; b.name = name; b.onchange = planPrint;
    p.appendChild(field(name, `output.${name}`, b));
  }
  const go = document.createElement("button"); go.type = "button"; go.textContent = "start print"; go.id = "start-print";
  go.onclick = () => startJob("print", printParams(), "error-print");
  p.appendChild(go);
  const y = $("pyramid");
  y.innerHTML = "";
  y.appendChild(field("layout", "layout", select(CH.layouts, "dz", () => {}))).querySelector("select").name = "layout";
  const s = document.createElement("input"); s.name = "size"; s.value = "4096";
  y.appendChild(field("longer side px", "size", s));
  const gp = document.createElement("button"); gp.type = "button"; gp.textContent = "start pyramid";
  gp.onclick = () => startJob("pyramid", { c: encode(cfg), layout: y.layout.value, size: s.value }, "error-pyramid");
  y.appendChild(gp);
  const v = $("video");
  v.innerHTML = "";
  v.appendChild(field("format", "format", select(CH.videoFormats, "mp4", () => {}))).querySelector("select").name = "format";
  for (const [label, name, val] of [["seconds (≤ 10)", "seconds", "4"], ["fps", "fps", "30"], ["longer side px", "size", "640"],
    ["zoom from:to", "zoom", "1:8"], ["z loop radius", "z_loop", ""], ["tween KEY=A:B", "tween", ""]]) {
    const i = document.createElement("input"); i.name = name; i.value = val;
    v.appendChild(field(label, name, i));
  }
  v.appendChild(field("ease", "ease", select(["linear", "smooth"], "smooth", () => {}))).querySelector("select").name = "ease";
  const gv = document.createElement("button"); gv.type = "button"; gv.textContent = "start video";
  gv.onclick = () => {
    const q = { c: encode(cfg) };
    for (const n of ["format", "seconds", "fps", "size", "zoom", "z_loop", "tween", "ease"]) q[n] = v[n].value;
    startJob("video", q, "error-video");
  };
  v.appendChild(gv);
}
function printParams() {
  const p = $("print");
  const q = { c: encode(cfg), format: p.format.value, dpi: p.dpi.value, bleed: p.bleed.value,
    landscape: p.landscape.checked ? "1" : "", cmyk: p.cmyk.checked ? "1" : "" };
  if (p.paper.value === "pixels") { q.width = p.width.value; q.height = p.height.value; } else q.paper = p.paper.value;
  return q;
}
async function planPrint() {
  if (!$("print-box").open) return;
  $("error-print").textContent = "";
  let r;
  try { r = await api("plan", "/api/plan", printParams()); } catch (e) { return quiet(e); }
  if (!r.ok) { $("error-print").textContent = (await failure(r)).error; $("print-plan").textContent = ""; return; }
  const d = await r.json();
  const mb = (d.bytes / 1e6).toFixed(d.bytes < 1e7 ? 1 : 0);
  const t = d.seconds == null ? "?" : d.seconds < 90 ? `${d.seconds.toFixed(0)} s` : `${(d.seconds / 60).toFixed(1)} min`;
  $("print-plan").textContent = `${d.width}×${d.height} px (${d.megapixels} MP), about ${t}, about ${mb} MB (${d.format})`;
}
async function startJob(kind, params, errId) {
  $(errId).textContent = "";
  const r = await api(null, `/api/jobs/${kind}`, params, "POST");
  if (!r.ok) { $(errId).textContent = (await failure(r)).error; return; }
  pollJobs();
}
let polling = null;
async function pollJobs() {
  clearTimeout(polling);
  let r;
  try { r = await api(null, "/api/jobs", {}); } catch (e) { return quiet(e); }
  if (!r.ok) return;
  const { jobs } = await r.json();
  const box = $("jobs");
  box.innerHTML = "";
  for (const j of jobs.slice().reverse()) {
    const d = document.createElement("div");
    d.className = `job ${j.state}`;
    const pct = j.total ? Math.floor((100 * j.done) / j.total) : 0;
    d.innerHTML = `<div>${j.kind} ${j.label}: <b>${j.state}</b> ${j.state === "running" ? pct + "%" : ""} ${j.error ? j.error : ""}</div>` +
      `<progress max="100" value="${j.state === "done" ? 100 : pct}"></progress>`;
    if (j.state === "queued" || j.state === "running") {
      const c = document.createElement("button"); c.textContent = "cancel";
      c.onclick = async () => { await api(null, `/api/jobs/${j.id}/cancel`, {}, "POST"); pollJobs(); };
      d.appendChild(c);
    }
    if (j.state === "done" && j.result) {
      const a = document.createElement("a");
      a.href = `/out/${j.result}`;
      if (j.kind === "pyramid") { a.textContent = "open in the viewer"; a.target = "_blank"; } else { a.textContent = "download"; a.download = ""; }
      d.appendChild(a);
    }
    box.appendChild(d);
  }
  if (jobs.some((j) => j.state === "queued" || j.state === "running")) polling = setTimeout(pollJobs, 700);
}

// ---------------------------------------------------------------- start
function start() {
  const h = new URLSearchParams(location.hash.slice(1));
  if (h.get("c")) {
    try { cfg = decode(h.get("c")); } catch (e) { $("error-general").textContent = "the permalink's config is unreadable; showing the default"; }
  }
  page = Math.max(0, parseInt(h.get("page") || "0", 10) || 0);
  $("back").onclick = () => travel(-1);
  $("forward").onclick = () => travel(1);
  $("fav").onclick = addFav;
  $("prev-page").onclick = () => { page = Math.max(0, page - 1); apply(cfg, { push: false, grid: false }); loadGrid(); };
  $("next-page").onclick = () => { page += 1; apply(cfg, { push: false, grid: false }); loadGrid(); };
  $("load-toml").onclick = async () => {
    $("error-paste").textContent = "";
    const r = await api(null, "/api/parse", { toml: $("paste").value });
    if (!r.ok) { $("error-paste").textContent = (await failure(r)).error; return; }
    apply((await r.json()).config); buildControls();
  };
  $("print-box").addEventListener("toggle", planPrint);
  buildControls();
  buildProducts();
  drawFavs();
  apply(cfg, { push: true, grid: false });
  loadGrid();
  pollJobs();
}
start();

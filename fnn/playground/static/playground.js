// fnn playground page: plain JS and canvas, no build step, nothing fetched from outside this server.
// One session per tab (POST /api/sessions), its Updates arrive over Server-Sent Events; each
// Update's history is appended at once, but pictures are drawn only for the newest Update, once
// per animation frame, so a fast server never queues work on the page. API: fnn/playground/API.md.
"use strict";
(function () {
  const ORANGE = [245, 147, 34], WHITE = [232, 234, 235], BLUE = [8, 119, 189];
  // class colours: orange and blue first (two classes look like Playground), then 8 distinct others
  const CLASS_RGB = [ORANGE, BLUE, [46, 160, 67], [214, 39, 40], [148, 103, 189], [140, 86, 75],
    [227, 119, 194], [127, 127, 127], [188, 189, 34], [23, 190, 207]];
  const NUMBERS = ["learning_rate", "momentum", "l2"];  // the server changes these without a reset
  const STRUCTURE = ["layers", "activation", "features", "optimizer", "initializer", "batch_size", "dataset",
    "classes", "n_points", "noise", "train_fraction", "seed"];
  const $ = (id) => document.getElementById(id);

  const st = {
    id: null, config: null, options: null, source: null,
    applied: 0,            // `updates` of the newest Update applied
    latest: null,          // the newest Update (its pictures are drawn on the next frame)
    dirty: false, points: null, history: {epoch: [], loss: [], val_loss: []}, previous: null,
    compare: false, rendered: 0, parseMs: 0, renderMs: 0, received: 0, rateLog: [], lateMax: 0, lateRecent: [],
  };

  // ------------------------------------------------------------------ server calls
  async function api(method, path, body, type) {
    const init = {method, headers: {}};
    if (body !== undefined) {
      init.headers["Content-Type"] = type || "application/json";
      init.body = type ? body : JSON.stringify(body);
    }
    const r = await fetch(path, init);
    let value;
    try { value = await r.json(); } catch (e) { value = {error: `the server answered ${r.status} without JSON`}; }
    if (!r.ok || value.error) throw new Error(value.error || `the server answered ${r.status}`);
    return value;
  }

  function showMessage(text) {
    const m = $("message");
    m.textContent = text || "";
    m.hidden = !text;
  }

  function fail(e) { showMessage(e && e.message ? e.message : String(e)); }

  // ------------------------------------------------------------------ the URL's hash = the whole Config
  function readHash() {
    const given = {};
    const text = location.hash.replace(/^#/, "");
    if (!text) return given;
    for (const part of text.split("&")) {
      const i = part.indexOf("=");
      if (i <= 0) continue;
      given[decodeURIComponent(part.slice(0, i))] = decodeURIComponent(part.slice(i + 1));
    }
    delete given.problem;  // derived by the server
    return given;
  }

  function hashOf(config) {
    return "#" + Object.keys(config).filter((k) => k !== "problem").map((k) => {
      const v = Array.isArray(config[k]) ? config[k].join(",") : String(config[k]);
      return encodeURIComponent(k) + "=" + encodeURIComponent(v).replace(/%2C/g, ",");
    }).join("&");
  }

  function writeHash() {
    const h = hashOf(st.config);
    if (location.hash !== h) history.replaceState(null, "", h);
    st.hash = location.hash;
  }

  // ------------------------------------------------------------------ session life
  async function start() {
    try {
      st.options = await api("GET", "/api/options");
    } catch (e) { return fail(e); }
    fillOptions();
    const given = readHash();
    let created;
    try {
      created = await api("POST", "/api/sessions", {config: given});
    } catch (e) {  // an out-of-range link: say so, and start from the defaults so the page still works
      showMessage(`This link's settings were refused: ${e.message}. Started with the defaults instead.`);
      try { created = await api("POST", "/api/sessions", {config: {}}); } catch (e2) { return fail(e2); }
    }
    st.id = created.id;
    setConfig(created.config);
    receive(created.update);
    subscribe();
    window.addEventListener("pagehide", () => {
      if (st.id) fetch(`/api/sessions/${st.id}`, {method: "DELETE", keepalive: true});
    });
    window.addEventListener("hashchange", () => {
      if (location.hash !== st.hash) send(readHash());
    });
  }

  function subscribe() {
    if (st.source) st.source.close();
    st.source = new EventSource(`/api/sessions/${st.id}/events`);
    st.source.onmessage = (ev) => {
      const t0 = performance.now(), u = JSON.parse(ev.data);
      st.parseMs += performance.now() - t0;
      receive(u);
    };
  }

  // Changes go to the server one after another, in the order made: two quick clicks never race
  // (the server answers requests on parallel threads).
  let queue = Promise.resolve();
  function send(partial) {
    queue = queue.then(() => sendNow(partial));
    return queue;
  }

  async function sendNow(partial) {
    const keys = Object.keys(partial);
    const structural = keys.some((k) => STRUCTURE.includes(k));
    const t0 = performance.now();
    let timer = null;
    if (structural) {
      const tick = () => { $("compiling").textContent = `compiling… (${((performance.now() - t0) / 1000).toFixed(1)} s)`; };
      tick();
      timer = setInterval(tick, 100);
    }
    try {
      const r = await api("POST", `/api/sessions/${st.id}/config`, {config: partial});
      showMessage("");
      setConfig(r.config);
      receive(r.update);
      if (structural) {
        const u = r.update;
        $("compiling").textContent = r.recompiled && u.compile_s != null
          ? `compiled in ${u.compile_s.toFixed(2)} s` : "no compile: structure seen before";
      }
    } catch (e) {
      fail(e);
      setConfig(st.config);  // the controls go back to what the server runs
      if (structural) $("compiling").textContent = "";
    } finally {
      if (timer) clearInterval(timer);
    }
  }

  async function act(action) {
    try {
      const r = await api("POST", `/api/sessions/${st.id}/action`, {action});
      showMessage("");
      receive(r.update);
    } catch (e) { fail(e); }
  }

  async function upload(file) {
    let text;
    try { text = await file.text(); } catch (e) { return fail(e); }
    const t0 = performance.now();
    $("compiling").textContent = "compiling… (0.0 s)";
    const timer = setInterval(() => {
      $("compiling").textContent = `compiling… (${((performance.now() - t0) / 1000).toFixed(1)} s)`;
    }, 100);
    try {
      const r = await api("POST", `/api/sessions/${st.id}/data`, text, "text/csv");
      showMessage("");
      setConfig(r.config);
      receive(r.update);
      $("compiling").textContent = r.update.compile_s != null ? `compiled in ${r.update.compile_s.toFixed(2)} s` : "";
    } catch (e) {
      fail(new Error(`${file.name}: ${e.message}`));
      $("compiling").textContent = "";
    } finally {
      clearInterval(timer);
    }
  }

  // ------------------------------------------------------------------ Updates in, pictures out
  function receive(u) {
    if (!u || u.updates <= st.applied) return;  // a response and the stream carry the same Update
    st.applied = u.updates;
    st.received += 1;
    if (u.history_reset) {
      if (st.compare && st.history.epoch.length > 1) st.previous = st.history;
      st.history = {epoch: [], loss: [], val_loss: []};
    }
    const h = u.history || {epoch: []};
    for (let i = 0; i < h.epoch.length; i++) {
      st.history.epoch.push(h.epoch[i]);
      st.history.loss.push(h.loss[i]);
      st.history.val_loss.push(h.val_loss[i]);
    }
    if (u.points) st.points = u.points;
    if (u.error) showMessage(u.error);
    st.latest = u;
    if (!st.dirty) { st.dirty = true; requestAnimationFrame(render); }
  }

  function render() {
    st.dirty = false;
    const u = st.latest;
    if (!u) return;
    const started = performance.now();
    st.rendered += 1;
    const now = performance.now();
    st.rateLog.push(now);
    while (st.rateLog.length && now - st.rateLog[0] > 2000) st.rateLog.shift();
    document.body.classList.toggle("playing", !!u.playing);
    $("epoch").textContent = String(u.epoch).padStart(6, "0").replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    $("loss").textContent = fmt(u.loss);
    $("val-loss").textContent = fmt(u.val_loss);
    $("metric-name").textContent = u.metric_name === "mae" ? "mean abs. error" : "accuracy";
    $("metric").textContent = u.metric_name === "accuracy" ? pct(u.metric) : fmt(u.metric);
    $("val-metric").textContent = u.metric_name === "accuracy" ? pct(u.val_metric) : fmt(u.val_metric);
    $("rate").textContent = (st.rateLog.length / 2).toFixed(0);
    $("update-count").textContent = u.updates;
    $("compiles").textContent = u.compiles;
    drawNetwork(u);
    drawOutput(u);
    drawLoss();
    st.renderMs += performance.now() - started;
  }

  const fmt = (v) => (v == null ? "–" : v < 0.001 ? v.toExponential(2) : v.toFixed(3));
  const pct = (v) => (v == null ? "–" : (100 * v).toFixed(1) + "%");

  // ------------------------------------------------------------------ colours
  function mix(a, b, t) { return [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t]; }
  function diverging(t) {  // t in [-1, 1]: orange, light grey at 0, blue
    t = Math.max(-1, Math.min(1, t));
    return t < 0 ? mix(WHITE, ORANGE, -t) : mix(WHITE, BLUE, t);
  }
  const css = (c, a) => `rgba(${c[0] | 0},${c[1] | 0},${c[2] | 0},${a == null ? 1 : a})`;

  function bytesOf(b64) {
    const s = atob(b64), out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  }

  // A 256-entry palette for a heatmap on [lo, hi], centred on 0 (as Playground: the sign is the colour).
  function paletteOf(lo, hi, grey) {
    const m = Math.max(Math.abs(lo), Math.abs(hi)) || 1, pal = new Uint8ClampedArray(256 * 3);
    for (let b = 0; b < 256; b++) {
      let c = diverging((lo + (b / 255) * (hi - lo)) / m);
      if (grey) { const g = 0.3 * c[0] + 0.59 * c[1] + 0.11 * c[2]; c = mix([g, g, g], WHITE, 0.5); }
      pal[3 * b] = c[0]; pal[3 * b + 1] = c[1]; pal[3 * b + 2] = c[2];
    }
    return pal;
  }

  const scratch = {};
  function heatCanvas(key, n) {
    let c = scratch[key];
    if (!c || c.width !== n) { c = scratch[key] = document.createElement("canvas"); c.width = c.height = n; }
    return c;
  }

  // n*n bytes (row 0 = lowest x2) into a small canvas, through colour(byte index) -> [r,g,b]
  function paint(canvas, n, bytes, colourAt, alpha) {
    const ctx = canvas.getContext("2d"), img = ctx.createImageData(n, n), d = img.data;
    for (let row = 0; row < n; row++) {
      const y = n - 1 - row;  // the canvas's top row is the highest x2
      for (let col = 0; col < n; col++) {
        const i = row * n + col, o = 4 * (y * n + col);
        colourAt(bytes[i], i, d, o);
        d[o + 3] = alpha;
      }
    }
    ctx.putImageData(img, 0, 0);
    return canvas;
  }

  function unitCanvas(key, n, unit) {
    const pal = paletteOf(unit.lo, unit.hi, unit.dead);
    return paint(heatCanvas(key, n), n, bytesOf(unit.data), (b, i, d, o) => {
      d[o] = pal[3 * b]; d[o + 1] = pal[3 * b + 1]; d[o + 2] = pal[3 * b + 2];
    }, 255);
  }

  const LIGHT = 0.3;  // the big output heatmap is lightened towards white so the points stand out
  function outputCanvas(u, key, discrete, light) {
    const out = u.output, n = u.grid.n, bytes = bytesOf(out.data);
    if (out.kind === "classes") {
      const conf = bytesOf(out.confidence), k = out.classes;
      return paint(heatCanvas(key, n), n, bytes, (b, i, d, o) => {
        const c0 = CLASS_RGB[b % CLASS_RGB.length];
        const t = discrete ? 0.75 : Math.max(0, (conf[i] / 255 - 1 / k) / (1 - 1 / k)) * 0.85 + 0.1;
        const c = mix(WHITE, c0, t * (1 - (light || 0)));
        d[o] = c[0]; d[o + 1] = c[1]; d[o + 2] = c[2];
      }, 255);
    }
    const lo = out.kind === "binary" ? -1 : out.lo, hi = out.kind === "binary" ? 1 : out.hi;
    const pal = paletteOf(lo, hi, false);
    return paint(heatCanvas(key, n), n, bytes, (b, i, d, o) => {
      if (discrete) b = b < 128 ? 0 : 255;
      const f = light || 0;
      d[o] = pal[3 * b] + (255 - pal[3 * b]) * f; d[o + 1] = pal[3 * b + 1] + (255 - pal[3 * b + 1]) * f;
      d[o + 2] = pal[3 * b + 2] + (255 - pal[3 * b + 2]) * f;
    }, 255);
  }

  // ------------------------------------------------------------------ the network
  let netLayout = null;  // what the last frame drew, for hover and the unit controls

  function drawNetwork(u) {
    const cv = $("network"), ctx = cv.getContext("2d"), W = cv.width, H = cv.height, n = u.grid.n;
    const cols = u.layers.map((l) => l.units.length).concat([1]);
    const most = Math.max(...cols);
    const size = Math.max(9, Math.min(34, Math.floor((H - 20) / (most * 1.3))));
    const gap = Math.min(size * 0.35, 14);
    const x0 = 62, x1 = W - 30 - size;  // room on the left for the inputs' names
    const xs = cols.map((_, k) => x0 + (cols.length === 1 ? 0 : (k * (x1 - x0)) / (cols.length - 1)));
    const nodes = cols.map((count, k) => {
      const total = count * size + (count - 1) * gap, top = Math.max(4, (H - total) / 2);
      return Array.from({length: count}, (_, i) => ({x: xs[k], y: top + i * (size + gap), k, i}));
    });
    ctx.clearRect(0, 0, W, H);
    // edges first, beneath the nodes: colour = sign (as the heatmaps), width = |w|. Binned into a few
    // paths (sign x 12 strengths), so a 32-wide net is a dozen strokes, not thousands
    const edges = [], bins = new Map();
    u.weights.forEach((m, k) => {
      if (!nodes[k] || !nodes[k + 1]) return;
      m.forEach((row, i) => row.forEach((w, j) => {
        const a = nodes[k][i], b = nodes[k + 1][j];
        if (!a || !b) return;
        const e = {w, k, i, j, ax: a.x + size, ay: a.y + size / 2, bx: b.x, by: b.y + size / 2};
        edges.push(e);
        const key = (w < 0 ? -1 : 1) * (1 + Math.min(11, Math.floor(Math.abs(w) * 4)));
        if (!bins.has(key)) bins.set(key, []);
        bins.get(key).push(e);
      }));
    });
    for (const [key, list] of bins) {
      const strength = (Math.abs(key) - 0.5) / 4;  // the bin's middle |w|
      ctx.strokeStyle = css(diverging(Math.sign(key) * strength), 0.85);
      ctx.lineWidth = Math.min(0.6 + 2.4 * strength, 7);
      ctx.beginPath();
      for (const e of list) {
        const mx = (e.ax + e.bx) / 2;
        ctx.moveTo(e.ax, e.ay);
        ctx.bezierCurveTo(mx, e.ay, mx, e.by, e.bx, e.by);
      }
      ctx.stroke();
    }
    ctx.imageSmoothingEnabled = false;
    u.layers.forEach((layer, k) => layer.units.forEach((unit, i) => {
      const p = nodes[k][i];
      ctx.globalAlpha = unit.dead ? 0.55 : 1;
      ctx.drawImage(unitCanvas(`u${k}_${i}`, n, unit), p.x, p.y, size, size);
      ctx.globalAlpha = 1;
      ctx.strokeStyle = unit.dead ? "#999" : "#555";
      ctx.lineWidth = 1;
      ctx.strokeRect(p.x + 0.5, p.y + 0.5, size - 1, size - 1);
      if (unit.dead) {
        ctx.strokeStyle = "#888";
        ctx.beginPath(); ctx.moveTo(p.x + 2, p.y + 2); ctx.lineTo(p.x + size - 2, p.y + size - 2); ctx.stroke();
      }
    }));
    const o = nodes[nodes.length - 1][0];
    ctx.drawImage(outputCanvas(u, "out-node", false), o.x, o.y, size, size);
    ctx.strokeStyle = "#222";
    ctx.strokeRect(o.x + 0.5, o.y + 0.5, size - 1, size - 1);
    // input names beside the input column
    ctx.fillStyle = "#555";
    ctx.font = "11px ui-monospace, Menlo, Consolas, monospace";
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    const names = inputNames(u);
    nodes[0].forEach((p, i) => { if (names[i]) ctx.fillText(names[i], p.x - 4, p.y + size / 2); });
    ctx.textAlign = "center";
    ctx.fillText("output", o.x + size / 2, o.y + size + 12);
    netLayout = {nodes, edges, size, u, xs};
    placeUnitControls(xs, size, u);
  }

  function inputNames(u) {
    const c = st.config;
    if (c && c.dataset === "csv" && u.layers[0].units.length !== c.features.length) {
      return u.layers[0].units.map((_, i) => `c${i + 1}`);
    }
    return c ? c.features : [];
  }

  let placedFor = "";
  function placeUnitControls(xs, size, u) {
    const key = xs.join(",") + "|" + st.config.layers.join(",");
    if (key === placedFor) return;
    placedFor = key;
    const box = $("unit-controls");
    box.innerHTML = "";
    st.config.layers.forEach((units, k) => {
      const d = document.createElement("div");
      d.className = "unit-ctl";
      d.style.left = `${xs[k + 1] + size / 2}px`;
      d.innerHTML = `<div><button class="round small units-minus" data-layer="${k}" title="Remove a unit">&minus;</button>` +
        `<button class="round small units-plus" data-layer="${k}" title="Add a unit">+</button></div>${units} unit${units === 1 ? "" : "s"}`;
      box.appendChild(d);
    });
  }

  // +/- builds on the layers asked for last, not on the last answer: quick clicks all count
  let wanted = null, wantedPending = 0;
  function sendLayers(layers) {
    wanted = layers;
    wantedPending += 1;
    send({layers}).finally(() => { if (--wantedPending === 0) wanted = null; });
  }

  function changeUnits(k, delta) {
    const layers = (wanted || st.config.layers).slice();
    const v = layers[k] + delta;
    if (v < 1 || v > 32) return;
    layers[k] = v;
    sendLayers(layers);
  }

  function changeLayers(delta) {
    const layers = (wanted || st.config.layers).slice();
    if (delta > 0 && layers.length < 8) layers.push(layers.length ? layers[layers.length - 1] : 4);
    else if (delta < 0 && layers.length > 0) layers.pop();
    else return;
    sendLayers(layers);
  }

  function bezierAt(e, t) {
    const mx = (e.ax + e.bx) / 2, s = 1 - t;
    return [s * s * s * e.ax + 3 * s * s * t * mx + 3 * s * t * t * mx + t * t * t * e.bx,
      s * s * s * e.ay + 3 * s * s * t * e.ay + 3 * s * t * t * e.by + t * t * t * e.by];
  }

  function hover(ev) {
    const tip = $("tooltip");
    if (!netLayout) return;
    const r = $("network").getBoundingClientRect(), x = ev.clientX - r.left, y = ev.clientY - r.top;
    const {nodes, edges, size, u} = netLayout;
    let text = null;
    for (const col of nodes) for (const p of col) {
      if (x >= p.x && x <= p.x + size && y >= p.y && y <= p.y + size) {
        if (p.k >= u.layers.length) {
          text = `output · ${u.output.kind} · range [${u.output.lo.toFixed(3)}, ${u.output.hi.toFixed(3)}]`;
        } else {
          const unit = u.layers[p.k].units[p.i], name = p.k === 0 ? (inputNames(u)[p.i] || `input ${p.i + 1}`) : `${u.layers[p.k].name} unit ${p.i + 1}`;
          text = `${name}` + (unit.bias == null ? "" : ` · bias ${unit.bias.toFixed(4)}`) +
            `<br>range [${unit.lo.toFixed(3)}, ${unit.hi.toFixed(3)}]` + (unit.dead ? " · dead" : "");
        }
      }
    }
    if (!text) {
      let best = 5, hit = null;
      for (const e of edges) {
        if (x < e.ax - 2 || x > e.bx + 2) continue;
        for (let t = 0; t <= 1; t += 1 / 24) {
          const q = bezierAt(e, t), d = Math.hypot(q[0] - x, q[1] - y);
          if (d < best) { best = d; hit = e; }
        }
      }
      if (hit) {
        const to = hit.k + 1 >= u.layers.length ? "output" : `${u.layers[hit.k + 1].name} unit ${hit.j + 1}`;
        const from = hit.k === 0 ? (inputNames(u)[hit.i] || `input ${hit.i + 1}`) : `${u.layers[hit.k].name} unit ${hit.i + 1}`;
        text = `weight ${hit.w.toFixed(4)}<br>${from} → ${to}`;
      }
    }
    tip.hidden = !text;
    if (text) {
      tip.innerHTML = text;
      tip.style.left = `${x + 14}px`;
      tip.style.top = `${y + 44 + 10}px`;
    }
  }

  // ------------------------------------------------------------------ output heatmap and points
  function drawOutput(u) {
    const cv = $("output"), ctx = cv.getContext("2d"), W = cv.width, H = cv.height;
    const pad = {l: 40, r: 6, t: 6, b: 28}, w = W - pad.l - pad.r, h = H - pad.t - pad.b;
    ctx.clearRect(0, 0, W, H);
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(outputCanvas(u, "out-big", $("discretize").checked, LIGHT), pad.l, pad.t, w, h);
    const [a1, b1] = u.grid.x1, [a2, b2] = u.grid.x2;
    const px = (v) => pad.l + ((v - a1) / (b1 - a1)) * w, py = (v) => pad.t + h - ((v - a2) / (b2 - a2)) * h;
    const out = u.output;
    const colour = (label) => {
      if (out.kind === "regression") {
        const m = Math.max(Math.abs(out.lo), Math.abs(out.hi)) || 1;
        return diverging(label / m);
      }
      return CLASS_RGB[label % CLASS_RGB.length];
    };
    ctx.save();
    ctx.beginPath(); ctx.rect(pad.l, pad.t, w, h); ctx.clip();
    if (st.points) {
      ctx.lineWidth = 1;
      for (const [x1, x2, label] of st.points.train) {
        ctx.fillStyle = css(colour(label));
        ctx.strokeStyle = "#fff";
        ctx.beginPath(); ctx.arc(px(x1), py(x2), 3, 0, 2 * Math.PI); ctx.fill(); ctx.stroke();
      }
      if ($("show-test").checked) {
        ctx.lineWidth = 1.6;
        for (const [x1, x2, label] of st.points.test) {
          ctx.strokeStyle = css(mix(colour(label), [0, 0, 0], 0.35));
          ctx.beginPath(); ctx.arc(px(x1), py(x2), 3.2, 0, 2 * Math.PI); ctx.stroke();
        }
      }
    }
    ctx.restore();
    ctx.strokeStyle = "#999";
    ctx.strokeRect(pad.l + 0.5, pad.t + 0.5, w - 1, h - 1);
    axisTicks(ctx, a1, b1, (v) => [px(v), pad.t + h], "x");
    axisTicks(ctx, a2, b2, (v) => [pad.l, py(v)], "y");
    ctx.fillStyle = "#555";
    ctx.font = "11px system-ui, sans-serif";
    ctx.textAlign = "center";
    ctx.fillText("x1", pad.l + w / 2, H - 3);
    ctx.save(); ctx.translate(7, pad.t + h / 2); ctx.rotate(-Math.PI / 2); ctx.textBaseline = "middle"; ctx.fillText("x2", 0, 0); ctx.restore();
    drawColorbar(u);
  }

  function niceStep(span, count) {
    const raw = span / count, p = Math.pow(10, Math.floor(Math.log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
  }

  function axisTicks(ctx, lo, hi, at, axis) {
    const step = niceStep(hi - lo, 5);
    ctx.fillStyle = "#666";
    ctx.strokeStyle = "#999";
    ctx.font = "10px system-ui, sans-serif";
    for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) {
      const [x, y] = at(v), label = (Math.abs(v) < 1e-9 ? 0 : v).toFixed(step < 1 ? 1 : 0);
      ctx.beginPath();
      if (axis === "x") { ctx.moveTo(x, y); ctx.lineTo(x, y + 4); ctx.textAlign = "center"; ctx.textBaseline = "top"; ctx.stroke(); ctx.fillText(label, x, y + 5); }
      else { ctx.moveTo(x, y); ctx.lineTo(x - 4, y); ctx.textAlign = "right"; ctx.textBaseline = "middle"; ctx.stroke(); ctx.fillText(label, x - 5, y); }
    }
  }

  function drawColorbar(u) {
    const cv = $("colorbar"), ctx = cv.getContext("2d"), W = cv.width, l = 40, w = W - 46, out = u.output;
    ctx.clearRect(0, 0, W, cv.height);
    ctx.font = "10.5px system-ui, sans-serif";
    ctx.fillStyle = "#555";
    ctx.textBaseline = "top";
    if (out.kind === "classes") {
      const k = out.classes, bw = w / k;
      for (let c = 0; c < k; c++) {
        ctx.fillStyle = css(mix(WHITE, CLASS_RGB[c % CLASS_RGB.length], 0.85));
        ctx.fillRect(l + c * bw, 4, bw - 2, 10);
        ctx.fillStyle = "#555"; ctx.textAlign = "center";
        ctx.fillText(`class ${c}`.slice(k > 6 ? 6 : 0), l + c * bw + bw / 2, 17);
      }
      ctx.textAlign = "left";
      return;
    }
    for (let i = 0; i < w; i++) {
      ctx.fillStyle = css(diverging((2 * i) / (w - 1) - 1));
      ctx.fillRect(l + i, 4, 1, 10);
    }
    const text = out.kind === "binary"
      ? ["p(class 1) = 0: class 0", "0.5", "1: class 1"]
      : (() => {  // the same scale as the heatmap: centred on 0, out to the larger of |lo|, |hi|
        const m = Math.max(Math.abs(out.lo), Math.abs(out.hi)) || 1;
        return [`${(-m).toFixed(2)}`, "0: output (regression)", `${m.toFixed(2)}`];
      })();
    ctx.fillStyle = "#555";
    ctx.textAlign = "left"; ctx.fillText(text[0], l, 17);
    ctx.textAlign = "center"; ctx.fillText(text[1], l + w / 2, 17);
    ctx.textAlign = "right"; ctx.fillText(text[2], l + w, 17);
    ctx.textAlign = "left";
  }

  // ------------------------------------------------------------------ loss chart
  function drawLoss() {
    const cv = $("loss-chart"), ctx = cv.getContext("2d"), W = cv.width, H = cv.height;
    const pad = {l: 44, r: 8, t: 16, b: 26}, w = W - pad.l - pad.r, h = H - pad.t - pad.b;
    ctx.clearRect(0, 0, W, H);
    const runs = [st.history].concat(st.previous ? [st.previous] : []);
    let emax = 1, lo = Infinity, hi = -Infinity;
    for (const r of runs) {
      if (r.epoch.length) emax = Math.max(emax, r.epoch[r.epoch.length - 1]);
      for (const v of r.loss.concat(r.val_loss)) if (v != null && v > 0 && isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    }
    if (!isFinite(lo)) { lo = 0.01; hi = 1; }
    let llo = Math.floor(Math.log10(lo)), lhi = Math.ceil(Math.log10(hi));
    if (lhi <= llo) lhi = llo + 1;
    const px = (e) => pad.l + (e / emax) * w, py = (v) => pad.t + h - ((Math.log10(v) - llo) / (lhi - llo)) * h;
    ctx.strokeStyle = "#eee"; ctx.fillStyle = "#666"; ctx.font = "10px system-ui, sans-serif";
    ctx.textAlign = "right"; ctx.textBaseline = "middle";
    for (let d = llo; d <= lhi; d++) {
      const y = py(Math.pow(10, d));
      ctx.beginPath(); ctx.moveTo(pad.l, y); ctx.lineTo(pad.l + w, y); ctx.stroke();
      ctx.fillText(d >= -2 && d <= 2 ? String(Math.pow(10, d)) : `1e${d}`, pad.l - 4, y);
    }
    const step = niceStep(emax, 5);
    ctx.textAlign = "center"; ctx.textBaseline = "top";
    for (let e = 0; e <= emax + 1e-9; e += step) ctx.fillText(String(Math.round(e)), px(e), pad.t + h + 3);
    ctx.strokeStyle = "#999"; ctx.strokeRect(pad.l + 0.5, pad.t + 0.5, w, h);
    ctx.fillStyle = "#555"; ctx.font = "11px system-ui, sans-serif";
    ctx.fillText("epoch", pad.l + w / 2, H - 11);
    ctx.save(); ctx.translate(10, pad.t + h / 2); ctx.rotate(-Math.PI / 2); ctx.textBaseline = "middle"; ctx.fillText("loss (log)", 0, 0); ctx.restore();
    const line = (r, key, colour, dash, width) => {
      ctx.strokeStyle = colour; ctx.setLineDash(dash); ctx.lineWidth = width; ctx.beginPath();
      let started = false;
      for (let i = 0; i < r.epoch.length; i++) {
        const v = r[key][i];
        if (v == null || !(v > 0) || !isFinite(v)) { started = false; continue; }
        const x = px(r.epoch[i]), y = py(v);
        if (started) ctx.lineTo(x, y); else { ctx.moveTo(x, y); started = true; }
      }
      ctx.stroke(); ctx.setLineDash([]); ctx.lineWidth = 1;
    };
    ctx.save(); ctx.beginPath(); ctx.rect(pad.l, pad.t, w, h); ctx.clip();
    if (st.previous) { line(st.previous, "loss", "rgba(60,60,60,0.28)", [], 1.5); line(st.previous, "val_loss", "rgba(245,147,34,0.35)", [4, 3], 1.5); }
    line(st.history, "loss", "#333", [], 1.6);
    line(st.history, "val_loss", "#e07b00", [4, 3], 1.6);
    ctx.restore();
    // legend, above the plot
    const items = [["training", "#333", []], ["test", "#e07b00", [4, 3]]].concat(st.previous ? [["previous run", "rgba(60,60,60,0.35)", []]] : []);
    let x = pad.l;
    ctx.font = "10.5px system-ui, sans-serif"; ctx.textAlign = "left"; ctx.textBaseline = "middle";
    for (const [name, colour, dash] of items) {
      ctx.strokeStyle = colour; ctx.setLineDash(dash); ctx.lineWidth = 1.6;
      ctx.beginPath(); ctx.moveTo(x, 7); ctx.lineTo(x + 16, 7); ctx.stroke(); ctx.setLineDash([]); ctx.lineWidth = 1;
      ctx.fillStyle = "#555"; ctx.fillText(name, x + 20, 7);
      x += 28 + ctx.measureText(name).width;
    }
  }

  // ------------------------------------------------------------------ controls
  function fillOptions() {
    const o = st.options;
    const sel = (id, values) => { $(id).innerHTML = values.map((v) => `<option value="${v}">${v}</option>`).join(""); };
    sel("activation", o.activations);
    sel("initializer", o.initializers);
    $("features").innerHTML = o.features.map((f) =>
      `<label><input type="checkbox" data-feature="${f}"> ${f}</label>`).join("");
  }

  function setConfig(config) {
    st.config = config;
    const c = config;
    $("dataset").value = c.dataset;
    $("csv-option").hidden = c.dataset !== "csv";
    $("learning-rate").value = c.learning_rate;
    $("optimizer").value = c.optimizer;
    $("momentum").value = c.momentum;
    $("momentum").disabled = c.optimizer === "sgd";
    $("batch-size").value = c.batch_size;
    $("activation").value = c.activation;
    $("initializer").value = c.initializer;
    $("l2").value = c.l2;
    $("problem").textContent = c.problem;
    $("classes").value = c.classes;
    $("classes-value").textContent = c.classes;
    $("classes").disabled = !(st.options.multiclass || []).includes(c.dataset);
    $("train-fraction").value = c.train_fraction;
    $("train-fraction-value").textContent = `${Math.round(100 * c.train_fraction)}%`;
    $("noise").value = c.noise;
    $("noise-value").textContent = Number(c.noise).toFixed(2);
    $("n-points").value = c.n_points;
    $("n-points-value").textContent = c.n_points;
    $("seed").value = c.seed;
    $("epochs-per-update").value = c.epochs_per_update;
    $("n-layers").textContent = c.layers.length;
    for (const box of document.querySelectorAll("[data-feature]")) {
      box.checked = c.features.includes(box.dataset.feature);
      box.disabled = c.dataset === "csv";
    }
    $("export").href = `/api/sessions/${st.id}/export.py`;
    $("export-checkpoint").href = `/api/sessions/${st.id}/export.safetensors`;
    placedFor = "";
    writeHash();
  }

  function bind() {
    $("play").onclick = () => act("play");
    $("pause").onclick = () => act("pause");
    $("step").onclick = () => act("step");
    $("reset").onclick = () => act("reset");
    const change = (id, key, parse) => $(id).addEventListener("change", () => send({[key]: parse ? parse($(id).value) : $(id).value}));
    change("learning-rate", "learning_rate", Number);
    change("momentum", "momentum", Number);
    change("l2", "l2", Number);
    change("optimizer", "optimizer");
    change("batch-size", "batch_size", Number);
    change("activation", "activation");
    change("initializer", "initializer");
    change("dataset", "dataset");
    change("classes", "classes", Number);
    change("train-fraction", "train_fraction", Number);
    change("noise", "noise", Number);
    change("n-points", "n_points", Number);
    change("seed", "seed", Number);
    change("epochs-per-update", "epochs_per_update", Number);
    // sliders show their value while dragged; the server hears the value when let go
    $("classes").addEventListener("input", () => { $("classes-value").textContent = $("classes").value; });
    $("train-fraction").addEventListener("input", () => { $("train-fraction-value").textContent = `${Math.round(100 * $("train-fraction").value)}%`; });
    $("noise").addEventListener("input", () => { $("noise-value").textContent = Number($("noise").value).toFixed(2); });
    $("n-points").addEventListener("input", () => { $("n-points-value").textContent = $("n-points").value; });
    $("features").addEventListener("change", () => {
      const features = [...document.querySelectorAll("[data-feature]")].filter((b) => b.checked).map((b) => b.dataset.feature);
      send({features});
    });
    $("add-layer").onclick = () => changeLayers(+1);
    $("remove-layer").onclick = () => changeLayers(-1);
    $("unit-controls").addEventListener("click", (ev) => {
      const b = ev.target.closest("button");
      if (b) changeUnits(Number(b.dataset.layer), b.classList.contains("units-plus") ? 1 : -1);
    });
    $("upload").addEventListener("change", () => {
      const f = $("upload").files[0];
      if (f) upload(f);
      $("upload").value = "";  // the same file may be chosen again
    });
    $("compare").onclick = () => {
      st.compare = !st.compare;
      $("compare").setAttribute("aria-pressed", String(st.compare));
      st.previous = st.compare ? {epoch: st.history.epoch.slice(), loss: st.history.loss.slice(), val_loss: st.history.val_loss.slice()} : null;
      if (st.latest && !st.dirty) { st.dirty = true; requestAnimationFrame(render); }
    };
    const redraw = () => { if (st.latest && !st.dirty) { st.dirty = true; requestAnimationFrame(render); } };
    $("show-test").onchange = redraw;
    $("discretize").onchange = redraw;
    $("network").addEventListener("mousemove", hover);
    $("network").addEventListener("mouseleave", () => { $("tooltip").hidden = true; });
  }

  // the main thread's responsiveness: how late a 50 ms timer fires (a blocked page fires late)
  function watchLateness() {
    let last = performance.now();
    setInterval(() => {
      const now = performance.now(), late = Math.max(0, now - last - 50);
      last = now;
      st.lateMax = Math.max(st.lateMax, late);
      st.lateRecent.push(late);
      if (st.lateRecent.length > 100) st.lateRecent.shift();
    }, 50);
  }

  window.playground = {
    status() {
      const u = st.latest || {};
      return {epoch: u.epoch ?? null, loss: u.loss ?? null, val_loss: u.val_loss ?? null, compiles: u.compiles ?? null,
        updates: u.updates ?? null, playing: !!u.playing, rendered: st.rendered, received: st.received,
        session: st.id, metric: u.metric ?? null, parse_ms: st.parseMs, render_ms: st.renderMs};
    },
    lateness() {
      return {max_ms: st.lateMax, recent_max_ms: Math.max(0, ...st.lateRecent)};
    },
    resetLateness() { st.lateMax = 0; st.lateRecent = []; },
    config() { return st.config; },
  };

  bind();
  watchLateness();
  start();
})();

"use strict";
// scene-agent web page: polls the JSON API, sends actions by POST with the CSRF token.
(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const $ = (id) => document.getElementById(id);
  const PAGE = 12;
  let offset = 0;
  let lastStored = -1;
  let lastBaseline = null;

  function show(text, ok) {
    const el = $("message");
    el.textContent = text;
    el.className = ok ? "ok" : "error";
  }

  async function action(path, body) {
    try {
      const res = await fetch(path, {
        method: "POST",
        headers: { "X-CSRF-Token": csrf, "Content-Type": "application/json" },
        body: body || "",
        credentials: "same-origin",
      });
      const reply = await res.json();
      show(reply.message || (reply.ok ? "done" : "failed"), reply.ok);
      await refresh(true);
      return reply;
    } catch (err) {
      show("the agent cannot be reached", false);
      return null;
    }
  }

  function age(iso) {
    if (!iso) return "";
    const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    if (s < 90) return s + " s ago";
    if (s < 5400) return Math.round(s / 60) + " min ago";
    if (s < 129600) return Math.round(s / 3600) + " h ago";
    return Math.round(s / 86400) + " days ago";
  }

  async function loadState() {
    const res = await fetch("/api/state", { credentials: "same-origin" });
    if (!res.ok) throw new Error("state " + res.status);
    const st = await res.json();
    $("monitoring").textContent = st.monitoring ? "on" : "off";
    $("camera").textContent = st.camera;
    $("camera").className = st.camera === "online" ? "ok" : "error";
    $("threshold").textContent = st.threshold;
    $("score").textContent = st.score === null ? "–" : st.score.toFixed(1);
    const meter = $("score-meter");
    meter.max = st.threshold * 2;
    meter.value = st.score === null ? 0 : Math.min(st.score, st.threshold * 2);
    meter.high = st.threshold;
    $("stored").textContent = st.events_stored;
    $("tamper").textContent = st.tamper ? st.tamper : "none";
    $("tamper").className = st.tamper ? "error" : "ok";
    const refs = (st.references || []).join(", ") || "none";
    $("reference").textContent = st.mode + " (have: " + refs + ")" + (st.learning ? " · learning…" : "");
    const badge = $("change");
    if (st.monitoring && st.tamper) {
      badge.dataset.state = "tamper";
      badge.textContent = "Tamper: " + st.tamper;
    } else if (!st.monitoring) {
      badge.dataset.state = "unknown";
      badge.textContent = "Monitoring off";
    } else if (!st.baseline) {
      badge.dataset.state = "unknown";
      badge.textContent = "No baseline yet";
    } else {
      badge.dataset.state = st.change ? "changed" : "same";
      badge.textContent = st.change ? "Scene changed" : "As the baseline";
    }
    const b = st.baseline;
    $("baseline-age").textContent = b ? "(" + age(b.taken_at) + ")" : "(none)";
    if (b && b.id !== lastBaseline) {
      lastBaseline = b.id;
      $("baseline").src = "/baseline.jpg?v=" + encodeURIComponent(b.id);
    }
    return st;
  }

  function eventItem(ev) {
    const li = document.createElement("li");
    li.dataset.id = ev.id;
    const img = document.createElement("img");
    img.src = ev.thumb;
    img.alt = ev.type + " at " + ev.time;
    img.loading = "lazy";
    img.addEventListener("click", () => {
      $("full").src = ev.image;
      $("viewer").showModal();
    });
    const cap = document.createElement("div");
    const what = (ev.event_type || "change").startsWith("tamper") ? "tamper " : "";
    cap.textContent = what + (ev.type === "end" ? "ended " : "started ") +
      new Date(ev.time).toLocaleString() + " · score " + Number(ev.score).toFixed(1);
    const del = document.createElement("button");
    del.type = "button";
    del.className = "danger delete";
    del.textContent = "Delete";
    del.addEventListener("click", () => action("/api/events/" + encodeURIComponent(ev.id) + "/delete"));
    li.append(img, cap, del);
    return li;
  }

  async function loadEvents() {
    const res = await fetch("/api/events?limit=" + PAGE + "&offset=" + offset, { credentials: "same-origin" });
    if (!res.ok) throw new Error("events " + res.status);
    const data = await res.json();
    if (offset > 0 && offset >= data.total) {
      offset = Math.max(0, offset - PAGE);
      return loadEvents();
    }
    const list = $("gallery");
    list.replaceChildren(...data.events.map(eventItem));
    $("total").textContent = "(" + data.total + ")";
    const pages = Math.max(1, Math.ceil(data.total / PAGE));
    $("page").textContent = "page " + (Math.floor(offset / PAGE) + 1) + " of " + pages;
    $("newer").disabled = offset === 0;
    $("older").disabled = offset + PAGE >= data.total;
  }

  async function loadScores() {
    const res = await fetch("/api/scores", { credentials: "same-origin" });
    if (!res.ok) throw new Error("scores " + res.status);
    const data = await res.json();
    const canvas = $("spark");
    const ctx = canvas.getContext("2d");
    const w = canvas.width, h = canvas.height, span = 600;
    ctx.clearRect(0, 0, w, h);
    const now = Date.now() / 1000;
    const values = data.points.filter((p) => p[1] !== null).map((p) => p[1]);
    // Square-root scale: quiet scores near 0 and a big change both stay readable.
    const top = Math.sqrt(Math.max(data.threshold * 2, ...values, 1e-6));
    const y = (v) => h - 2 - (h - 4) * Math.sqrt(Math.max(0, v)) / top;
    const x = (t) => w - (w * (now - t)) / span;
    ctx.strokeStyle = "#1565c0";
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    let drawing = false;
    for (const [t, v] of data.points) {
      if (v === null) { drawing = false; continue; }
      if (drawing) ctx.lineTo(x(t), y(v)); else ctx.moveTo(x(t), y(v));
      drawing = true;
    }
    ctx.stroke();
    ctx.strokeStyle = "#c62828";
    ctx.beginPath();
    ctx.moveTo(0, y(data.threshold));
    ctx.lineTo(w, y(data.threshold));
    ctx.stroke();
  }

  async function refresh(force) {
    try {
      const st = await loadState();
      await loadScores();
      if (force || st.events_stored !== lastStored) {
        lastStored = st.events_stored;
        await loadEvents();
      }
    } catch (err) {
      $("change").dataset.state = "unknown";
      $("change").textContent = "agent unreachable";
    }
  }

  $("btn-snapshot").addEventListener("click", () => action("/api/actions/snapshot"));
  $("btn-start").addEventListener("click", () => action("/api/actions/start"));
  $("btn-stop").addEventListener("click", () => action("/api/actions/stop"));
  $("btn-delete-all").addEventListener("click", () => {
    if (window.confirm("Delete every stored change image?")) action("/api/actions/delete", "all");
  });
  $("newer").addEventListener("click", () => { offset = Math.max(0, offset - PAGE); loadEvents(); });
  $("older").addEventListener("click", () => { offset += PAGE; loadEvents(); });
  refresh(true);
  setInterval(() => refresh(false), 1000);
})();

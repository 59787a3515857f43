// The page is a client of the service's public JSON API, nothing more: every number it shows
// comes from /models, /ready, /metrics, /recommend, /similar, /items, /predict and /events.
"use strict";

const state = { user: "196", genre: "", yearMin: "", yearMax: "" };
const $ = (id) => document.getElementById(id);

// The API key, when the service asks for one (RECSYS_API_KEY): held in this tab's memory only,
// never stored, so it is gone with the tab. One question at a time, whoever asks.
let apiKey = null;
let asking = null;

async function api(path, options = {}) {
  for (;;) {
    const headers = { "Content-Type": "application/json" };
    if (apiKey) headers["X-API-Key"] = apiKey;
    const answer = await fetch(path, { ...options, headers });
    if (answer.status === 401 && answer.headers.get("x-auth-required") === "api-key") {
      await askForKey(apiKey !== null);
      continue;  // the same request, with the key given
    }
    return read(answer);
  }
}

function askForKey(refused) {
  asking ??= new Promise((resolve) => {
    const form = $("key-form");
    $("key-note").textContent = refused
      ? "That key was refused. Enter another one."
      : "This service needs an API key. It stays in this tab only.";
    form.hidden = false;
    $("key").focus();
    form.onsubmit = (event) => {
      event.preventDefault();
      apiKey = $("key").value;
      $("key").value = "";
      form.hidden = true;
      asking = null;
      resolve();
    };
  });
  return asking;
}

async function read(answer) {
  const text = await answer.text();
  const body = text && answer.headers.get("content-type")?.includes("json") ? JSON.parse(text) : text;
  if (!answer.ok) {
    const error = new Error(typeof body === "object" ? JSON.stringify(body.detail) : body);
    error.status = answer.status;
    error.body = body;
    throw error;
  }
  return body;
}

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "onclick") node.addEventListener("click", value);
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

const stars = (rating) => (rating == null ? "" : `${rating} star${rating === 1 ? "" : "s"}`);

function filmLink(item) {
  return el("button", {
    type: "button", class: "link", text: item.title || item.item_id,
    onclick: () => openFilm(item.item_id),
  });
}

// --- Try it --------------------------------------------------------------------------------

async function recommend() {
  $("who-name").textContent = state.user;
  const query = new URLSearchParams({ n: "10", explain: "true" });
  if (state.genre) query.set("genres", state.genre);
  if (state.yearMin) query.set("year_min", state.yearMin);
  if (state.yearMax) query.set("year_max", state.yearMax);
  const list = $("recs");
  try {
    const body = await api(`/recommend/${encodeURIComponent(state.user)}?${query}`);
    const sources = {
      model: "from the user's trained vectors",
      fold_in: "folded in from the ratings given here",
      popular: "most-rated films: rate a few to personalise",
    };
    const trial = body.experiment
      ? `. Experiment ${body.experiment}: ${body.variant ? `variant ${body.variant}` : "interleaved"} (version ${body.version})`
      : "";
    $("recs-source").textContent = `Source: ${body.source} (${sources[body.source]})` +
      (body.fold_in === "pending" ? ", your ratings are still being folded in" : "") + trial +
      (body.warnings ? `. ${body.warnings.join(" ")}` : "");
    list.replaceChildren(...body.items.map((item) => el("li", { "data-item": item.item_id },
      filmLink(item),
      el("span", { class: "badge", text: body.source }),
      el("div", { class: "meta", text: item.genres.join(", ") }),
      el("div", { class: "reason", text: reason(item, body.source) }))));
  } catch (error) {
    list.replaceChildren(el("li", { text: `Could not recommend: ${error.message}` }));
  }
}

// Why an item is there, from its explanation (`because`, and the parts of its score).
function reason(item, source) {
  if (source === "popular") return "Popular: among the most-rated films";
  const named = (item.because || []).map((b) => `${b.title} (${stars(b.rating)})`);
  if (named.length) return `Because you rated ${named.join(", ")}`;
  const parts = item.parts || {};
  return (parts.item ?? 0) >= (parts.rated_items ?? 0)
    ? "Mostly because many people liked it"
    : "From your ratings as a whole";
}

async function search(text) {
  const list = $("results");
  if (!text) { list.replaceChildren(); return; }
  const body = await api(`/items?${new URLSearchParams({ q: text, n: "10" })}`);
  if (!body.items.length) {
    list.replaceChildren(el("li", { text: `No film's title contains "${text}".` }));
    return;
  }
  list.replaceChildren(...body.items.map((item) => {
    const buttons = [1, 2, 3, 4, 5].map((k) => el("button", {
      type: "button", text: "★".repeat(k), "aria-label": `Rate ${item.title} ${stars(k)}`,
      "data-rating": String(k), onclick: () => rate(item, k),
    }));
    return el("li", { "data-item": item.item_id },
      filmLink(item),
      el("div", { class: "meta", text: `${item.genres.join(", ")} · ${item.raters} raters` }),
      el("div", { class: "stars", role: "group", "aria-label": `Rate ${item.title}` }, ...buttons));
  }));
}

async function rate(item, rating) {
  const body = { events: [{ user_id: state.user, item_id: item.item_id, rating }] };
  try {
    await api("/events", { method: "POST", body: JSON.stringify(body) });
    await recommend();  // the note comes after, so it says the list already counts the rating
    $("rated-note").textContent = `Rated ${item.title} ${stars(rating)}.`;
  } catch (error) {
    if (error.status === 401) {
      showReadOnly();
    } else {
      $("rated-note").textContent = `Not stored: ${error.message}`;
    }
  }
}

function showReadOnly() {
  const note = $("readonly");
  note.hidden = false;
  note.textContent = "This service requires a write token for ratings (RECSYS_WRITE_TOKEN), " +
    "which the page never holds: it is read-only here. Ratings come through the API.";
}

async function openFilm(itemId) {
  const card = await api(`/items/${encodeURIComponent(itemId)}`);
  $("film").hidden = false;
  $("film-title").textContent = card.title || card.item_id;
  $("film-meta").textContent = [card.genres.join(", "), card.year, `${card.raters} raters`]
    .filter(Boolean).join(" · ");
  const predicted = $("film-predicted");
  try {
    const body = await api("/predict", {
      method: "POST",
      body: JSON.stringify({ instances: [{ user_id: state.user, item_id: itemId }], interval: 0.8 }),
    });
    const [low, high] = body.intervals ? body.intervals[0] : [null, null];
    predicted.textContent = `Predicted rating for ${state.user}: ${body.predictions[0].toFixed(2)}` +
      (low == null ? "" : ` (80% sure between ${low.toFixed(1)} and ${high.toFixed(1)})`);
  } catch (error) {
    predicted.textContent = error.status === 404
      ? `No predicted rating for ${state.user} yet: rate a film first.`
      : `No predicted rating: ${error.message}`;
  }
  const similar = await api(`/similar/${encodeURIComponent(itemId)}?n=6`);
  $("similar").replaceChildren(...similar.items.map((item) => el("li", { "data-item": item.item_id },
    filmLink(item), el("div", { class: "meta", text: item.genres.join(", ") }))));
  $("film-title").focus();
}

// --- Operate -------------------------------------------------------------------------------

const fixed = (value, digits = 4) => (typeof value === "number" ? value.toFixed(digits) : "-");

function facts(list, pairs) {
  list.replaceChildren(...pairs.flatMap(([key, value]) => [el("dt", { text: key }), el("dd", { text: String(value) })]));
}

async function operate() {
  const [model, ready, metrics] = await Promise.all([
    api("/models"), api("/ready").catch((error) => error.body), fetch("/metrics").then((r) => r.text()),
  ]);
  facts($("version"), [
    ["name", model.name], ["version", model.version], ["rating model", `${model.kind}, K ${model.factors}`],
    ["users x items", `${model.users} x ${model.items}`], ["trained", model.created],
    ["/recommend ranks with", model.recommend],
  ]);
  const m = model.metrics;
  const rows = [
    ["test RMSE (predicted ratings)", fixed(m.test?.rmse)],
    ["test NDCG@10, retrieval vectors", fixed(m.ranking_test?.ndcg)],
    ["test NDCG@10, item-item blend (served)", fixed(m.blend_test?.ndcg)],
    ["test NDCG@10, most-rated films (the floor)", fixed(m.ranking_popularity_test?.ndcg)],
  ];
  $("quality").tBodies[0].replaceChildren(...rows.map(([k, v]) => el("tr", {}, el("td", { text: k }), el("td", { text: v }))));
  $("curves").replaceChildren(...Object.entries(model.curves || {}).map(([name, series]) => curve(name, series)));
  $("on-disk").textContent = (model.versions_on_disk || []).map((v) =>
    v === model.version ? `${v} (served)` : String(v)).join(", ") || "-";
  const refused = Object.entries(ready?.refused || {});
  $("refused").replaceChildren(...(refused.length
    ? refused.map(([v, why]) => el("li", { text: `version ${v}: ${why}` }))
    : [el("li", { text: "none" })]));
  const store = ready?.store || {};
  facts($("store"), [["status", store.status], ["url", store.url], ["applied through event", store.applied_through]]);
  traffic(metrics);
  await online();
}

// The admin token, when the operate view needs one for the admin routes (online metrics,
// experiments): asked for on a 401, held in this tab's memory only, like the API key.
let adminToken = null;

async function adminApi(path) {
  for (;;) {
    const headers = {};
    if (apiKey) headers["X-API-Key"] = apiKey;
    if (adminToken) headers.Authorization = `Bearer ${adminToken}`;
    const answer = await fetch(path, { headers });
    if (answer.status === 401 && answer.headers.get("x-auth-required") === "api-key") {
      await askForKey(apiKey !== null);
      continue;
    }
    if (answer.status === 401) {
      await askForAdminToken(adminToken !== null);
      continue;
    }
    return read(answer);
  }
}

function askForAdminToken(refused) {
  return new Promise((resolve) => {
    const form = $("admin-form");
    $("online-note").textContent = refused
      ? "That admin token was refused. Enter another one."
      : "Online metrics and experiments are admin routes: enter the admin token (kept in this tab only).";
    form.hidden = false;
    form.onsubmit = (event) => {
      event.preventDefault();
      adminToken = $("admin-token").value;
      $("admin-token").value = "";
      form.hidden = true;
      resolve();
    };
  });
}

const interval = (r) => (r && r.value != null ? `${fixed(r.value, 3)} (${fixed(r.low, 3)}-${fixed(r.high, 3)})` : "-");

async function online() {
  let body, experiments;
  try {
    [body, experiments] = [await adminApi("/admin/online?window=24h&buckets=24"), await adminApi("/admin/experiments")];
  } catch (error) {
    $("online-note").textContent = error.status === 404
      ? "Online metrics and experiments are admin routes: set RECSYS_ADMIN_TOKEN on the service to see them here."
      : `Could not read the online metrics: ${error.message}`;
    return;
  }
  $("online-note").textContent = `The last 24 hours; a rating counts for an answer that showed its item within ` +
    `${(body.attribution_window / 3600).toFixed(0)} h (or one that names its recommendation id).`;
  $("online").tBodies[0].replaceChildren(...(body.groups.length ? body.groups.map((g) => el("tr", {},
    el("td", { text: String(g.version) }), el("td", { text: g.variant || "-" }),
    el("td", { text: String(g.impressions) }), el("td", { text: String(g.could_be_hit) }),
    el("td", { text: String(g.hit_impressions) }), el("td", { text: interval(g.hit_rate) }),
    el("td", { text: fixed(g.mean_rating_of_hits.value, 2) }),
    el("td", { text: g.coverage?.share != null ? `${(g.coverage.share * 100).toFixed(1)}%` : "-" }))) :
    [el("tr", {}, el("td", { colspan: "8", text: "no answers recorded in the window yet" }))]));
  $("online-chart").replaceChildren(hitRateChart(body.series));
  const reports = await Promise.all(experiments.experiments.slice(0, 5).map((e) =>
    adminApi(`/admin/experiments/${encodeURIComponent(e.name)}`)));
  $("experiments").replaceChildren(...(reports.length ? reports.map((r) => el("li", { "data-experiment": r.name },
    el("strong", { text: `${r.name} (${r.method}, ${r.status}): ` }),
    el("span", { text: Object.entries(r.variants).map(([v, g]) =>
      `${v} = version ${g.version}, hit rate ${interval(g.hit_rate)}`).join("; ") +
      `. Winner: ${r.winner || "none yet (the interval holds no difference)"}` }))) :
    [el("li", { text: "none: PUT /admin/experiments/{name} starts one" })]));
  $("rounds").replaceChildren(...(body.retrain.length ? body.retrain.slice(-5).reverse().map((r) =>
    el("li", { text: `${new Date(r.at * 1000).toISOString().slice(0, 16)} ${r.verdict}` +
      `${r.published_version ? ` (version ${r.published_version})` : ""} against version ${r.baseline_version}: ${r.reason || ""}` })) :
    [el("li", { text: "none yet (recsys retrain writes its rounds here)" })]));
}

// Hits per impression per version (and variant) over the window's slices, at each slice's
// time (slices without impressions left out): one line each.
function hitRateChart(series) {
  const lines = {};
  for (const b of series) {
    const key = `version ${b.version}${b.variant ? ` (${b.variant})` : ""}`;
    if (b.impressions) (lines[key] ||= []).push([b.start, b.hit_impressions / b.impressions]);
  }
  return Object.keys(lines).length
    ? curve("hit rate", lines, { caption: "Impressions hit per impression, per slice of the last 24 hours (one scale from 0)",
      unit: "slices", shared: true })
    : el("p", { class: "note", text: "no series yet" });
}

// Requests by route from /metrics: totals since start, mean latency, and the rate between this
// reading and the previous one (the operate view reads again every few seconds while shown).
let previous = null;
let refresher = null;

function traffic(metrics) {
  const counts = {}, sums = {}, totals = {}, events = {};
  for (const line of metrics.split("\n")) {
    const event = line.match(/^recsys_events_total\{outcome="(\w+)"\} ([\d.e+]+)/);
    if (event) events[event[1]] = Number(event[2]);
    let found = line.match(/^recsys_requests_total\{method="(\w+)",route="([^"]+)",status="(\d+)"\} ([\d.e+]+)/);
    if (found) counts[`${found[1]} ${found[2]}`] = (counts[`${found[1]} ${found[2]}`] || 0) + Number(found[4]);
    found = line.match(/^recsys_request_duration_seconds_(sum|count)\{method="(\w+)",route="([^"]+)"\} ([\d.e+]+)/);
    if (found) (found[1] === "sum" ? sums : totals)[`${found[2]} ${found[3]}`] = Number(found[4]);
  }
  const now = performance.now();
  const rate = (route) => {
    if (!previous || !(route in previous.counts)) return "-";
    const seconds = (now - previous.at) / 1000;
    return `${((counts[route] - previous.counts[route]) / seconds).toFixed(1)}/s`;
  };
  $("ingested").textContent = `Ratings posted since start: ${events.accepted || 0} accepted, ` +
    `${events.duplicate || 0} duplicates`;
  $("traffic").tBodies[0].replaceChildren(...Object.entries(counts).sort((a, b) => b[1] - a[1]).map(([route, n]) =>
    el("tr", {}, el("td", { text: route }), el("td", { text: String(n) }), el("td", { text: rate(route) }),
      el("td", { text: totals[route] ? `${((sums[route] / totals[route]) * 1000).toFixed(1)} ms` : "-" }))));
  previous = { at: now, counts };
}

// One figure per model: each recorded series (losses, validation metrics) against the epoch, each
// scaled to its own range, with its first and last values in the legend (the numbers, for
// screen readers too).
// Lines of `series` ({label: values}); values are numbers (x: their index) or [x, y] pairs.
// Each line has its own y scale unless `shared` (one scale from 0 for every line: lines to be
// compared with each other). Every point is drawn as a dot too, so one point still shows.
function curve(name, series, { caption = `${name} model (first fit, per epoch)`, unit = "epochs", shared = false } = {}) {
  const svgNS = "http://www.w3.org/2000/svg";
  const width = 360, height = 140, colours = ["#1565c0", "#c62828", "#2e7d32", "#6a1b9a"];
  const svg = document.createElementNS(svgNS, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("width", String(width));
  svg.setAttribute("role", "img");
  const legend = el("ul", { class: "legend" });
  const pairs = Object.fromEntries(Object.entries(series).map(([key, values]) =>
    [key, values.map((v, i) => (Array.isArray(v) ? v : [i, v]))]));
  const every = Object.values(pairs).flat();
  const xLow = Math.min(...every.map((p) => p[0])), xSpan = Math.max(...every.map((p) => p[0])) - xLow;
  const top = Math.max(...every.map((p) => p[1]));
  Object.entries(pairs).forEach(([key, points], index) => {
    if (!points.length) return;
    const ys = points.map((p) => p[1]);
    const low = shared ? 0 : Math.min(...ys), span = (shared ? top : Math.max(...ys)) - low || 1;
    const colour = colours[index % colours.length];
    const at = points.map(([x, y]) => [
      xSpan ? ((x - xLow) / xSpan) * (width - 10) + 5 : width / 2,
      height - 5 - ((y - low) / span) * (height - 10),
    ]);
    const line = document.createElementNS(svgNS, "polyline");
    line.setAttribute("points", at.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(" "));
    line.setAttribute("fill", "none");
    line.setAttribute("stroke", colour);
    line.setAttribute("stroke-width", "2");
    svg.append(line);
    for (const [x, y] of at) {
      const dot = document.createElementNS(svgNS, "circle");
      dot.setAttribute("cx", x.toFixed(1));
      dot.setAttribute("cy", y.toFixed(1));
      dot.setAttribute("r", "3");
      dot.setAttribute("fill", colour);
      svg.append(dot);
    }
    legend.append(el("li", { style: `color: ${colour}`,
      text: `${key}: ${ys[0].toFixed(4)} → ${ys[ys.length - 1].toFixed(4)} (${ys.length} ${unit})` }));
  });
  svg.setAttribute("aria-label", caption);
  return el("figure", {}, el("figcaption", { text: caption }), svg, legend);
}

// --- wiring --------------------------------------------------------------------------------

function show(view) {
  const trying = view === "try";
  $("try").hidden = !trying;
  $("operate").hidden = trying;
  $("tab-try").setAttribute("aria-pressed", String(trying));
  $("tab-operate").setAttribute("aria-pressed", String(!trying));
  clearInterval(refresher);
  if (!trying) {
    operate().then(() => $("operate-title").focus());
    refresher = setInterval(() => fetch("/metrics").then((r) => r.text()).then(traffic), 5000);
  }
}

async function start() {
  try {
    const model = await api("/models");
    $("served").textContent = `Serving ${model.name} version ${model.version} (${model.users} users, ${model.items} films)`;
  } catch (error) {
    $("served").textContent = `No model served yet: ${error.message}`;
  }
  const genres = await api("/genres").catch(() => ({ genres: [] }));
  $("genre").append(...genres.genres.map((g) => el("option", { value: g, text: g })));
  $("who").addEventListener("submit", (event) => {
    event.preventDefault();
    state.user = $("user").value.trim() || state.user;
    recommend();
  });
  $("new-user").addEventListener("click", () => {
    state.user = `web-${Math.random().toString(36).slice(2, 8)}`;
    $("user").value = state.user;
    $("rated-note").textContent = `You are ${state.user}, a new user: rate a few films.`;
    recommend();
  });
  $("search").addEventListener("submit", (event) => { event.preventDefault(); search($("query").value.trim()); });
  $("filters").addEventListener("submit", (event) => {
    event.preventDefault();
    state.genre = $("genre").value;
    state.yearMin = $("year-min").value;
    state.yearMax = $("year-max").value;
    recommend();
  });
  $("film-close").addEventListener("click", () => { $("film").hidden = true; $("recs-title").focus(); });
  $("tab-try").addEventListener("click", () => show("try"));
  $("tab-operate").addEventListener("click", () => show("operate"));
  await recommend();
}

start();

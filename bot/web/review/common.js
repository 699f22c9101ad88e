// Shared by the analyst pages (review, stats, versions): the analyst key, API calls, small DOM helpers, and
// the Model panel of the stats and versions pages. No build step.
"use strict";

const KEY_STORAGE = "bot.analystKey"; // sessionStorage: the key dies with the tab, never persisted to disk

function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "class") node.className = value;
    // through the CSSOM: the pages' CSP forbids style attributes, not styles set from script
    else if (name === "style") node.style.cssText = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function pct(value, digits = 0) {
  return value === null || value === undefined ? "–" : `${(value * 100).toFixed(digits)}%`;
}

function when(iso) {
  const date = new Date(iso);
  return date.toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}

let toastTimer = null;
function toast(message, isError = false) {
  const node = document.getElementById("toast");
  node.textContent = message;
  node.classList.toggle("error", isError);
  node.classList.add("show");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => node.classList.remove("show"), isError ? 6000 : 2500);
}

class ApiError extends Error {
  constructor(status, message, field) {
    super(message);
    this.status = status;
    this.field = field;
  }
}

// Every call carries the key; a 401/403 opens the key dialog and retries once a key is given.
async function api(path, options = {}) {
  for (;;) {
    const headers = { Accept: "application/json", ...(options.headers || {}) };
    const key = sessionStorage.getItem(KEY_STORAGE);
    if (key) headers.Authorization = `Bearer ${key}`;
    if (options.body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, {
      method: options.method || "GET",
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      signal: options.signal,
    });
    const data = await response.json().catch(() => ({}));
    if (response.ok) return data;
    const error = (data && data.error) || {};
    if (response.status === 401 || response.status === 403) {
      const message = error.message || "This page needs an analyst key.";
      if (await askForKey(message)) continue;
      throw new ApiError(response.status, `${message} (no key given: use "Change analyst key")`, error.field);
    }
    throw new ApiError(response.status, error.message || `HTTP ${response.status}`, error.field);
  }
}

// Resolves true once a key is submitted (it replaces the stored one), false when the dialog is
// dismissed (Escape): the stored key, and what the page shows, stay as they were.
let keyPrompt = null;
function askForKey(reason) {
  if (keyPrompt) return keyPrompt; // several calls failing at once share one dialog
  const dialog = document.getElementById("key-dialog");
  const input = dialog.querySelector("input");
  dialog.querySelector(".error").textContent = sessionStorage.getItem(KEY_STORAGE) ? reason : "";
  input.value = "";
  keyPrompt = new Promise((resolve) => {
    let given = false;
    dialog.querySelector("form").onsubmit = (event) => {
      event.preventDefault();
      if (!input.value.trim()) return;
      sessionStorage.setItem(KEY_STORAGE, input.value.trim());
      given = true;
      dialog.close();
    };
    dialog.addEventListener(
      "close",
      () => {
        keyPrompt = null;
        resolve(given);
      },
      { once: true },
    );
  });
  dialog.showModal();
  input.focus();
  return keyPrompt;
}

function setUpKeyButton() {
  const button = document.getElementById("key-button");
  if (!button) return;
  button.addEventListener("click", async () => {
    // the old key stays until a new one is submitted; Escape keeps it and the page as it is
    if (await askForKey("")) location.reload();
  });
}

const ROUTES = ["answer", "clarify", "retrieve", "handoff"];
const ROUTE_COLORS = { answer: "#2f9e44", clarify: "#e67700", retrieve: "#1c7ed6", handoff: "#d6336c" };

// -- the Model panel (stats and versions pages): which model routes now, and the background training ----
// It reads GET /readyz (no key: a probe's answer, 503 while the process loads) of the process that
// answered, every few seconds while a training runs or the process loads, every half minute otherwise.

const MODEL_POLL_BUSY_MS = 3000;
const MODEL_POLL_IDLE_MS = 30000;
const MODEL_KINDS = {
  "self-trained": "Self-trained on this folder",
  interim: "Interim: stock model until trained",
  configured: "Configured model",
};

// 42 s, 3 min 05 s, 1 h 12 min
function duration(seconds) {
  const total = Math.max(0, Math.round(seconds));
  if (total < 60) return `${total} s`;
  const minutes = Math.floor(total / 60);
  if (minutes < 60) return `${minutes} min ${String(total % 60).padStart(2, "0")} s`;
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")} min`;
}

// The panel's parts, built once: polling only changes texts, so screen readers hear a change once.
function modelPanelParts(body) {
  const item = (label, id) =>
    h("div", { class: "op-item" }, h("div", { class: "label" }, label), h("div", { class: "value model-value", id }));
  const parts = {
    kind: item("Kind", "model-kind"),
    id: item("Id", "model-id"),
    point: item("Operating point", "model-point"),
    note: h("p", { class: "model-note", id: "model-note" }),
    training: h("div", { class: "model-training", id: "model-training", hidden: true }),
    progress: h("progress", { id: "training-progress", max: "1", value: "0" }),
    phase: h("label", { for: "training-progress", id: "training-phase" }),
    percent: h("span", { class: "num", id: "training-percent" }),
    times: h("p", { class: "training-times", id: "training-times" }),
    outcome: h("p", { class: "training-outcome", id: "training-outcome", hidden: true }),
  };
  parts.kind.querySelector(".value").setAttribute("aria-live", "polite");
  parts.training.append(parts.phase, h("div", { class: "training-bar" }, parts.progress, parts.percent), parts.times);
  parts.outcome.setAttribute("aria-live", "polite");
  body.replaceChildren(h("div", { class: "op-row" }, parts.kind, parts.id, parts.point), parts.note, parts.training, parts.outcome);
  return parts;
}

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

// What /readyz says, in words. Every value goes in as text, never as markup.
function showModel(panel, parts, ready) {
  const training = ready.training || { state: "idle" };
  panel.dataset.kind = ready.model_kind || "loading";
  panel.dataset.training = training.state;
  const loading = ready.error ? "Not routing: loading failed" : "Loading: not routing yet";
  setText(parts.kind.querySelector(".value"), ready.model_kind ? MODEL_KINDS[ready.model_kind] : loading);
  setText(parts.id.querySelector(".value"), ready.model || "–");
  setText(parts.point.querySelector(".value"), ready.operating_point || "–");
  // the version by its stored id, as the versions page, the API and `bot versions list` name it
  const version = ready.version_id ? ` Version ${ready.version_id} (${ready.intents} intents).` : ready.intents ? ` ${ready.intents} intents.` : "";
  setText(parts.note, ready.error ? `Why: ${ready.error}` : `${ready.model_note ? `${ready.model_note[0].toUpperCase()}${ready.model_note.slice(1)}.` : ""}${version}`);
  const running = training.state === "running";
  parts.training.hidden = !running;
  if (running) {
    setText(parts.phase, `Training this folder's model: ${training.phase || "starting"}`);
    parts.progress.value = training.progress;
    setText(parts.percent, pct(training.progress));
    const left = training.eta_seconds === null || training.eta_seconds === undefined
      ? "time left not known yet"
      : `about ${duration(training.eta_seconds)} left`;
    setText(parts.times, `${duration(training.seconds)} so far · ${left}`);
  }
  const outcomes = {
    ready: `The folder's model was trained in ${duration(training.seconds)}${ready.version_id && training.intents_version === ready.intents_version ? ` (version ${ready.version_id})` : ""}.`,
    failed: `Training failed after ${duration(training.seconds)}: ${training.error || "no reason given"}. The stock model keeps routing.`,
    cancelled: "The last training was cancelled: a newer folder version replaced it.",
  };
  parts.outcome.hidden = !(training.state in outcomes);
  parts.outcome.classList.toggle("error", training.state === "failed");
  setText(parts.outcome, outcomes[training.state] || "");
  return running || !ready.ready;
}

// Fills the page's #model-panel and keeps it current; a switch of model (a training done) is said in a toast.
function watchModel() {
  const panel = document.getElementById("model-panel");
  if (!panel) return;
  const parts = modelPanelParts(panel.querySelector(".model-body"));
  let model = null;
  const poll = async () => {
    let busy = true;
    try {
      // /readyz needs no key; with the page's key the polls count against the key's rate limit, not the
      // analyst's address (shared with customers behind the same office address)
      const key = sessionStorage.getItem(KEY_STORAGE);
      const headers = key ? { Accept: "application/json", Authorization: `Bearer ${key}` } : { Accept: "application/json" };
      const response = await fetch("/readyz", { headers, cache: "no-store" });
      const ready = await response.json();
      busy = showModel(panel, parts, ready);
      if (model !== null && ready.model && ready.model !== model) toast(`Now routing with ${ready.model} (${MODEL_KINDS[ready.model_kind]}).`);
      model = ready.model || model;
      panel.dataset.loaded = "true"; // page tests wait for this
    } catch (error) {
      setText(parts.note, `The server did not answer (${error.message}); asking again shortly.`);
    }
    setTimeout(later, busy ? MODEL_POLL_BUSY_MS : MODEL_POLL_IDLE_MS);
  };
  // a tab in the background asks again once it is shown
  const later = () => (document.hidden ? document.addEventListener("visibilitychange", later, { once: true }) : poll());
  poll();
}

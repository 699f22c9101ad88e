// Shared by the review and stats pages: the analyst key, API calls, small DOM helpers. No build step.
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

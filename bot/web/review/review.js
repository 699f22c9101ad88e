// The review queue: filter decisions, read each in its conversation, confirm / reassign / propose an intent.
"use strict";

const PAGE = 50;
// `loading` is the request in flight (with its AbortController): a new filter aborts it, so the latest
// filters always win and a stale answer can never overwrite a fresher one.
const state = { items: [], total: 0, selected: -1, intents: [], mode: null, loading: null };
const $ = (id) => document.getElementById(id);

function filterParams() {
  const form = new FormData($("filters"));
  const params = new URLSearchParams();
  for (const name of ["route", "intent", "min_confidence", "max_confidence", "reviewed", "q"]) {
    const value = String(form.get(name) || "").trim();
    if (value) params.set(name, value);
  }
  // dates are whole UTC days; "To" includes its day, the API's `until` is exclusive
  const since = form.get("since");
  const until = form.get("until");
  if (since) params.set("since", `${since}T00:00:00Z`);
  if (until) {
    const next = new Date(`${until}T00:00:00Z`);
    next.setUTCDate(next.getUTCDate() + 1);
    params.set("until", next.toISOString());
  }
  return params;
}

async function loadQueue(reset) {
  if (!reset && state.loading) return state.loading.done; // "load more" waits for the load running
  if (state.loading) state.loading.controller.abort(); // new filters: the running load is stale
  const controller = new AbortController();
  const load = { controller, done: null };
  state.loading = load;
  showLoading(true, reset);
  const params = filterParams();
  params.set("limit", PAGE);
  params.set("offset", reset ? 0 : state.items.length);
  load.done = (async () => {
    try {
      const page = await api(`/v1/logs?${params}`, { signal: controller.signal });
      if (state.loading !== load) return; // superseded while the answer was on its way
      state.items = reset ? page.items : state.items.concat(page.items);
      state.total = page.total;
      renderQueue();
      if (reset) select(state.items.length ? 0 : -1, false);
    } catch (error) {
      if (error.name !== "AbortError" && state.loading === load) toast(error.message, true);
    } finally {
      if (state.loading === load) {
        state.loading = null;
        showLoading(false);
      }
    }
  })();
  return load.done;
}

// While decisions load, the list says so: new filters grey out the list they replace (it no longer
// matches them) and the count reads "Loading…"; the list is marked busy for screen readers.
function showLoading(busy, reset = false) {
  $("queue-panel").classList.toggle("loading", busy && reset);
  $("queue").setAttribute("aria-busy", busy ? "true" : "false");
  $("queue-status").hidden = !busy;
  if (busy && reset) $("count").textContent = "Loading…";
  else if (!busy) $("count").textContent = `${state.total} decision${state.total === 1 ? "" : "s"}`; // a failed load too
}

function renderQueue() {
  const list = $("queue");
  list.replaceChildren();
  $("count").textContent = `${state.total} decision${state.total === 1 ? "" : "s"}`;
  if (!state.items.length) {
    list.append(h("li", { class: "empty" }, "Nothing matches these filters."));
    return;
  }
  state.items.forEach((item, index) => {
    list.append(
      h(
        "li",
        {
          class: `row${item.reviewed ? " done" : ""}`,
          role: "option",
          id: `row-${item.id}`,
          "data-id": item.id,
          "aria-selected": index === state.selected ? "true" : "false",
          onclick: () => select(index, true),
        },
        h("span", { class: `badge ${item.route}` }, item.route),
        h("span", { class: "text", title: item.text }, item.text),
        h("span", { class: "when" }, when(item.created_at)),
        h(
          "span",
          { class: "meta" },
          h("span", {}, item.intent || "no intent"),
          h("span", {}, `confidence ${item.confidence.toFixed(2)}`),
          item.reviewed ? h("span", { class: "pill good" }, "reviewed") : null,
        ),
      ),
    );
  });
  if (state.items.length < state.total) {
    list.append(
      h("li", {}, h("button", { type: "button", class: "btn more", onclick: () => loadQueue(false) }, "Load more")),
    );
  }
}

function current() {
  return state.items[state.selected] || null;
}

function select(index, focusRow) {
  state.selected = index;
  state.mode = null;
  for (const row of $("queue").querySelectorAll(".row")) {
    row.setAttribute("aria-selected", row.dataset.id === String(current()?.id) ? "true" : "false");
  }
  const item = current();
  if (!item) {
    $("detail").replaceChildren(h("p", { class: "empty" }, "No decision selected."));
    return;
  }
  const row = $(`row-${item.id}`);
  $("queue").setAttribute("aria-activedescendant", row.id);
  row.scrollIntoView({ block: "nearest" });
  if (focusRow) $("queue").focus({ preventScroll: true });
  renderDetail(item);
}

function move(step) {
  const next = Math.min(Math.max(state.selected + step, 0), state.items.length - 1);
  if (next !== state.selected) select(next, true);
  else if (step > 0 && state.items.length < state.total) loadQueue(false).then(() => select(next + 1, true));
}

function candidateRows(item) {
  const top = item.candidates.slice(0, 5);
  return h(
    "div",
    { class: "candidates", role: "table", "aria-label": "Top candidates" },
    top.map((c, i) => [
      h("span", { class: "name", role: "cell", title: c.intent }, c.intent),
      h(
        "span",
        { class: `bar${i === 0 ? " top" : ""}`, role: "cell", "aria-label": `confidence ${c.confidence.toFixed(2)}` },
        h("span", { style: `width:${(c.confidence * 100).toFixed(1)}%` }),
        i === 0 ? h("span", { class: "mark", style: `left:${(item.threshold * 100).toFixed(1)}%`, title: `threshold ${item.threshold}` }) : null,
      ),
      h("span", { class: "num", role: "cell", title: `raw score ${c.score.toFixed(3)}` }, c.confidence.toFixed(2)),
    ]),
  );
}

function renderDetail(item) {
  const confirmLabel = item.intent ? `Confirm ${item.intent}` : "Confirm (no intent to confirm)";
  $("detail").replaceChildren(
    h("p", { class: "message" }, `“${item.text}”`),
    h(
      "div",
      { class: "facts" },
      h("span", { class: `badge ${item.route}` }, item.route),
      h("span", {}, "Intent ", h("strong", {}, item.intent || "none")),
      h("span", {}, "Confidence ", h("strong", {}, item.confidence.toFixed(2))),
      h("span", {}, when(item.created_at)),
      item.escalation ? h("span", { class: "pill bad" }, `escalation: ${item.escalation}`) : null,
      item.context_used ? h("span", { class: "pill" }, "used previous message") : null,
      item.reviewed ? h("span", { class: "pill good" }, "reviewed") : null,
      versionFact(item),
    ),
    h(
      "div",
      { class: "actions", role: "group", "aria-label": "Review actions" },
      h("button", { type: "button", class: "btn ok", id: "act-confirm", disabled: !item.intent, title: confirmLabel, onclick: confirmDecision }, "Confirm ", h("kbd", {}, "c")),
      h("button", { type: "button", class: "btn", id: "act-reassign", onclick: openReassign }, "Reassign… ", h("kbd", {}, "r")),
      h("button", { type: "button", class: "btn", id: "act-new", onclick: openNewIntent }, "New intent needed… ", h("kbd", {}, "n")),
    ),
    h("div", { id: "picker-slot" }),
    h("h2", {}, "Why"),
    h("p", { class: "reason" }, item.reason),
    h("h2", {}, "Top candidates"),
    item.candidates.length ? candidateRows(item) : h("p", { class: "muted" }, "No candidates were scored."),
    h("h2", {}, "Conversation"),
    h("div", { class: "thread", id: "thread" }, h("span", { class: "muted" }, "Loading…")),
    h("p", { class: "hint" }, "Keys: ", h("kbd", {}, "j"), " / ", h("kbd", {}, "k"), " next / previous · ", h("kbd", {}, "c"), " confirm · ", h("kbd", {}, "r"), " reassign · ", h("kbd", {}, "n"), " new intent · ", h("kbd", {}, "Esc"), " cancel"),
  );
  loadThread(item);
}

// The intents version a decision was made by: the newest activation before it (GET /v1/versions). The
// decision's own hash names the intents with their learned examples, so it can differ from the folder's.
function versionFact(item) {
  const at = new Date(item.created_at).getTime();
  const made = (state.activations || []).find((a) => new Date(a.at).getTime() <= at);
  const label = made ? `version ${made.version_id}` : `intents ${item.intents_version}`;
  return h(
    "a",
    { class: "pill", id: "decision-version", href: made ? `/review/versions#v-${made.version_id}` : "/review/versions", title: `intents ${item.intents_version} · model ${item.model_id}` },
    label,
  );
}

async function loadThread(item) {
  try {
    const data = await api(`/v1/conversations/${encodeURIComponent(item.conversation_id)}/messages?limit=500`);
    if (current() !== item) return;
    const at = Math.max(data.messages.findIndex((m) => m.id === item.message_id), 0);
    const shown = data.messages.slice(Math.max(at - 4, 0), at + 5); // the exchange around this message
    $("thread").replaceChildren(
      ...shown.map((m) =>
        h(
          "div",
          { class: `bubble ${m.role}${m.id === item.message_id ? " current" : ""}` },
          h("span", { class: "who" }, m.role === "agent" ? `agent ${m.author || ""}` : m.role),
          m.text,
        ),
      ),
    );
  } catch (error) {
    $("thread").replaceChildren(h("span", { class: "muted" }, `Conversation unavailable: ${error.message}`));
  }
}

async function submitReview(body, done) {
  const item = current();
  if (!item) return;
  try {
    await api(`/v1/logs/${item.id}/review`, { method: "POST", body });
    item.reviewed = true;
    toast(done);
    renderQueue();
    move(1);
    if (state.selected === state.items.indexOf(item)) renderDetail(item);
  } catch (error) {
    toast(error.message, true);
  }
}

function confirmDecision() {
  const item = current();
  if (!item) return;
  if (!item.intent) {
    toast("This decision chose no intent: reassign it to the right one instead.", true);
    return;
  }
  submitReview({ verdict: "correct" }, `Confirmed ${item.intent}`);
}

function reassign(name) {
  const item = current();
  if (!item) return;
  const body = name === item.intent ? { verdict: "correct" } : { verdict: "wrong", intent: name };
  submitReview(body, `Reassigned to ${name}: the router now answers this message with it`);
}

// How well an intent matches the typed words: 0 = not at all. Whole words in the name or label beat
// word starts, which beat substrings, which beat the description; a name or label that starts with the
// whole query gets a bonus. Enter takes the best match, not merely the first row that matches.
function matchScore(intent, words) {
  if (!words.length) return 1;
  const name = intent.name.toLowerCase();
  const label = (intent.label || "").toLowerCase();
  const description = (intent.description || "").toLowerCase();
  const tokens = `${name} ${label}`.split(/[\s_]+/).filter(Boolean);
  let score = 0;
  for (const word of words) {
    if (tokens.includes(word)) score += 4;
    else if (tokens.some((token) => token.startsWith(word))) score += 3;
    else if (name.includes(word) || label.includes(word)) score += 2;
    else if (description.includes(word)) score += 1;
    else return 0;
  }
  const query = words.join(" ");
  if (name === words.join("_") || label === query) score += 10;
  else if (name.startsWith(words.join("_")) || label.startsWith(query)) score += 5;
  return score;
}

function openReassign() {
  const item = current();
  if (!item) return;
  state.mode = "reassign";
  const ranked = item.candidates.map((c) => c.intent);
  const ordered = [
    ...ranked.map((name) => state.intents.find((i) => i.name === name)).filter(Boolean),
    ...state.intents.filter((i) => !ranked.includes(i.name)).sort((a, b) => a.name.localeCompare(b.name)),
  ];
  let shown = ordered;
  let active = 0;
  const input = h("input", {
    id: "reassign-search",
    type: "search",
    role: "combobox",
    "aria-expanded": "true",
    "aria-controls": "reassign-list",
    "aria-autocomplete": "list",
    autocomplete: "off",
    placeholder: "Type to search intents",
  });
  const list = h("ul", { id: "reassign-list", role: "listbox", "aria-label": "Intents" });
  const draw = () => {
    list.replaceChildren(
      ...shown.slice(0, 80).map((intent, index) =>
        h(
          "li",
          {
            role: "option",
            id: `opt-${intent.name}`,
            "data-intent": intent.name,
            "aria-selected": index === active ? "true" : "false",
            onmousedown: (event) => event.preventDefault(),
            onclick: () => reassign(intent.name),
          },
          h("span", {}, intent.name),
          h("small", {}, intent.label),
        ),
      ),
    );
    const chosen = shown[active];
    if (chosen) {
      input.setAttribute("aria-activedescendant", `opt-${chosen.name}`);
      document.getElementById(`opt-${chosen.name}`)?.scrollIntoView({ block: "nearest" });
    }
  };
  input.addEventListener("input", () => {
    const words = input.value.trim().toLowerCase().split(/[\s_]+/).filter(Boolean);
    // best match first; equal scores keep the bot's candidates first (sort is stable)
    shown = ordered
      .map((intent) => ({ intent, score: matchScore(intent, words) }))
      .filter((m) => m.score > 0)
      .sort((a, b) => b.score - a.score)
      .map((m) => m.intent);
    active = 0;
    draw();
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown") active = Math.min(active + 1, shown.length - 1);
    else if (event.key === "ArrowUp") active = Math.max(active - 1, 0);
    else if (event.key === "Enter") {
      event.preventDefault();
      if (shown[active]) reassign(shown[active].name);
      return;
    } else if (event.key === "Escape") {
      // close the picker and nothing else: no native clearing of the search, no page shortcut
      event.preventDefault();
      event.stopPropagation();
      closePicker();
      return;
    } else return;
    event.preventDefault();
    draw();
  });
  $("picker-slot").replaceChildren(
    h(
      "div",
      { class: "picker" },
      h("label", { for: "reassign-search" }, `Reassign “${item.text}” to:`),
      input,
      list,
    ),
  );
  draw();
  input.focus();
}

function openNewIntent() {
  const item = current();
  if (!item) return;
  state.mode = "new";
  const input = h("input", {
    id: "new-intent-name",
    required: true,
    pattern: "[a-z0-9_]+",
    maxlength: 100,
    placeholder: "e.g. crypto_trading",
    "aria-describedby": "new-intent-help",
  });
  const form = h(
    "form",
    {
      class: "picker",
      onsubmit: (event) => {
        event.preventDefault();
        const name = input.value.trim();
        if (!/^[a-z0-9_]+$/.test(name)) return toast("Use lowercase letters, digits and underscores.", true);
        if (state.intents.some((i) => i.name === name)) return reassign(name);
        submitReview({ verdict: "wrong", new_intent: name }, `Marked for a new intent: ${name}`);
      },
    },
    h("label", { for: "new-intent-name" }, "Name of the intent this message needs"),
    input,
    h("p", { class: "hint", id: "new-intent-help" }, "Lowercase letters, digits and underscores. Stats › discovery drafts the YAML."),
    h(
      "div",
      { class: "row-actions" },
      h("button", { type: "submit", class: "btn primary" }, "Mark as new intent"),
      h("button", { type: "button", class: "btn", onclick: closePicker }, "Cancel"),
    ),
  );
  form.addEventListener("keydown", (event) => event.key === "Escape" && closePicker());
  $("picker-slot").replaceChildren(form);
  input.focus();
}

function closePicker() {
  state.mode = null;
  $("picker-slot").replaceChildren();
  $("queue").focus({ preventScroll: true });
}

function onKey(event) {
  if (event.ctrlKey || event.metaKey || event.altKey || document.querySelector("dialog[open]")) return;
  const typing = event.target.closest("input, select, textarea");
  if (typing) return;
  const actions = {
    j: () => move(1),
    ArrowDown: () => move(1),
    k: () => move(-1),
    ArrowUp: () => move(-1),
    c: confirmDecision,
    r: openReassign,
    n: openNewIntent,
    Escape: closePicker,
  };
  const action = actions[event.key];
  if (action) {
    event.preventDefault();
    action();
  }
}

async function start() {
  setUpKeyButton();
  const intents = await api("/v1/intents");
  state.activations = (await api("/v1/versions?limit=1")).activations; // newest first
  state.intents = intents.intents.map((i) => ({ name: i.name, label: i.label, description: i.description }));
  $("intent-names").replaceChildren(...state.intents.map((i) => h("option", { value: i.name })));
  let typingTimer = null;
  $("filters").addEventListener("submit", (event) => event.preventDefault());
  $("filters").addEventListener("change", () => loadQueue(true));
  $("f-q").addEventListener("input", () => {
    clearTimeout(typingTimer);
    typingTimer = setTimeout(() => loadQueue(true), 300);
  });
  document.addEventListener("keydown", onKey);
  await loadQueue(true);
  document.body.dataset.ready = "true"; // page tests wait for this
}

start().catch((error) => toast(error.message, true));

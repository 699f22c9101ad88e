/*
 * Agent console: the queue of handoff tickets, a ticket's conversation with the bot's decision
 * trail, and claim / reply / resolve. Plain JavaScript against the same origin's API.
 *
 * The agent key lives in sessionStorage (this tab only); the agent's name in localStorage.
 * Every text from the API is inserted with textContent, never parsed as HTML.
 */
(() => {
  "use strict";

  const KEY_STORE = "intent-router-agent-key";
  const NAME_STORE = "intent-router-agent-name";
  const QUEUE_POLL_MS = 4000;
  const DETAIL_POLL_MS = 2500;

  const $ = (id) => document.getElementById(id);
  const ui = {
    name: $("agent-name"),
    connection: $("connection"),
    signOut: $("sign-out"),
    login: $("login"),
    loginForm: $("login-form"),
    key: $("api-key"),
    loginError: $("login-error"),
    app: $("app"),
    openList: $("open-list"),
    openCount: $("open-count"),
    claimedList: $("claimed-list"),
    claimedCount: $("claimed-count"),
    empty: $("empty"),
    ticket: $("ticket"),
    title: $("ticket-title"),
    meta: $("ticket-meta"),
    claim: $("claim"),
    error: $("ticket-error"),
    transcript: $("transcript"),
    replyForm: $("reply-form"),
    replyText: $("reply-text"),
    resolveForm: $("resolve-form"),
    search: $("intent-search"),
    intentList: $("intent-list"),
    learnBox: $("learn-box"),
    learnList: $("learn-list"),
    learnHint: $("learn-hint"),
    botReading: $("bot-reading"),
    note: $("note"),
    resolved: $("resolved"),
    resolvedText: $("resolved-text"),
  };

  let selectedId = null;
  let detail = null; // the last GET /v1/handoffs/{id} answer for the selected ticket
  let transcriptSignature = "";
  let learnSignature = "";
  let learnChoices = new Map(); // message id -> checked, for boxes the agent changed on this ticket
  let intents = []; // [{name, label, handoff}] from GET /v1/intents
  let timers = [];

  /* ---------- helpers ---------- */

  // Attributes via setAttribute, text via textContent, string children as text nodes: no HTML path.
  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(props)) {
      if (value === undefined || value === null || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : value);
    }
    node.append(...children);
    return node;
  }

  async function api(path, body) {
    const headers = { Accept: "application/json" };
    const key = sessionStorage.getItem(KEY_STORE);
    if (key) headers.Authorization = `Bearer ${key}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, {
      method: body === undefined ? "GET" : "POST",
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try {
      data = await response.json();
    } catch {
      /* not JSON: report the status below */
    }
    if (!response.ok) {
      const error = new Error((data && data.error && data.error.message) || `HTTP ${response.status}`);
      error.status = response.status;
      throw error;
    }
    return data;
  }

  const time = (iso) => new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });

  function ago(iso) {
    const minutes = Math.round((Date.now() - new Date(iso).getTime()) / 60000);
    if (minutes < 1) return "just now";
    if (minutes < 60) return `${minutes} min ago`;
    const hours = Math.round(minutes / 60);
    return hours < 48 ? `${hours} h ago` : new Date(iso).toLocaleDateString();
  }

  function intentLabel(name) {
    if (!name) return "No intent";
    const found = intents.find((i) => i.name === name);
    return found ? found.label : name;
  }

  const agentName = () => ui.name.value.trim();

  function needName() {
    if (agentName()) return false;
    showError("Type your name at the top first: customers see it next to your replies.");
    ui.name.focus();
    return true;
  }

  function showError(text) {
    ui.error.textContent = text || "";
  }

  /* ---------- sign-in ---------- */

  function showLogin(message) {
    stopPolling();
    ui.app.hidden = true;
    ui.login.hidden = false;
    ui.signOut.hidden = true;
    ui.connection.textContent = "";
    ui.loginError.textContent = message || "";
    ui.key.value = "";
    ui.key.focus();
  }

  async function boot() {
    try {
      await refreshQueue();
    } catch (error) {
      if (error.status === 401) return showLogin(sessionStorage.getItem(KEY_STORE) ? error.message : "");
      if (error.status === 403) return showLogin(`This key cannot open the queue: ${error.message}`);
      ui.connection.textContent = `Cannot reach the server: ${error.message}`;
      return;
    }
    const keyed = Boolean(sessionStorage.getItem(KEY_STORE));
    ui.login.hidden = true;
    ui.app.hidden = false;
    ui.signOut.hidden = !keyed;
    ui.connection.textContent = keyed ? "Signed in" : "Open server (no keys configured)";
    loadIntents();
    startPolling();
    await useKeyOwner();
    if (!agentName()) ui.name.focus();
  }

  // A key of one's own (agent@NAME:KEY) acts only as NAME: show it and do not offer another.
  async function useKeyOwner() {
    let owner = null;
    try {
      owner = (await api("/v1/handoffs/me")).agent;
    } catch {
      /* an older server: keep the typed name */
    }
    ui.name.readOnly = Boolean(owner);
    ui.name.title = owner ? "Your API key is yours: you act as this agent." : "";
    if (owner) ui.name.value = owner;
  }

  ui.loginForm.addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY_STORE, ui.key.value.trim());
    boot();
  });
  ui.signOut.addEventListener("click", () => {
    sessionStorage.removeItem(KEY_STORE);
    showLogin("");
  });
  ui.name.value = localStorage.getItem(NAME_STORE) || "";
  ui.name.addEventListener("change", () => {
    localStorage.setItem(NAME_STORE, agentName());
    if (detail) renderDetail(detail, true);
  });

  /* ---------- the queue ---------- */

  async function refreshQueue() {
    const [open, claimed] = await Promise.all([
      api("/v1/handoffs?status=open&limit=200"),
      api("/v1/handoffs?status=claimed&limit=200"),
    ]);
    renderQueue(ui.openList, ui.openCount, open);
    renderQueue(ui.claimedList, ui.claimedCount, claimed);
  }

  function renderQueue(list, count, page) {
    count.textContent = String(page.total);
    // rebuilding the list must not steal focus from a keyboard user moving through it
    const focused = list.contains(document.activeElement) ? document.activeElement.dataset.id : null;
    const items = page.items.map((ticket) => {
      const mine = ticket.claimed_by && ticket.claimed_by === agentName();
      // the customer's own words first: that is what an agent triages by; the bot's reading is secondary
      const words = Array.isArray(ticket.customer_messages) ? ticket.customer_messages : [];
      const said = words.length ? words[words.length - 1] : ticket.reason;
      const before = words.length > 1 ? words[words.length - 2] : null;
      const button = el(
        "button",
        {
          type: "button",
          class: "ticket-item",
          "data-id": String(ticket.id),
          "aria-current": ticket.id === selectedId ? "true" : undefined,
          onclick: () => select(ticket.id),
        },
        el(
          "span",
          { class: "row" },
          el("strong", { class: "said", text: said }),
          el("span", { class: "when", text: ago(ticket.created_at) }),
        ),
        before ? el("span", { class: "before", text: `before: ${before}` }) : "",
        el(
          "span",
          { class: "tags" },
          el("span", { class: "chip id", text: `#${ticket.id}` }),
          ticket.intent ? el("span", { class: "chip intent", text: intentLabel(ticket.intent) }) : "",
          ticket.claimed_by
            ? el("span", { class: mine ? "chip mine" : "chip", text: mine ? "You" : ticket.claimed_by })
            : "",
        ),
      );
      return el("li", {}, button);
    });
    if (!items.length) items.push(el("li", { class: "none", text: "Nothing here." }));
    list.replaceChildren(...items);
    if (focused) list.querySelector(`[data-id="${CSS.escape(focused)}"]`)?.focus();
  }

  /* ---------- one ticket ---------- */

  async function select(id) {
    selectedId = id;
    detail = null;
    transcriptSignature = "";
    learnSignature = "";
    learnChoices = new Map();
    showError("");
    for (const button of document.querySelectorAll(".ticket-item")) {
      button.toggleAttribute("aria-current", Number(button.dataset.id) === id);
    }
    await refreshDetail(true);
    ui.title.focus();
  }

  async function refreshDetail(fresh = false) {
    if (selectedId === null) return;
    const id = selectedId;
    const data = await api(`/v1/handoffs/${id}`);
    if (id !== selectedId) return; // the agent picked another ticket meanwhile
    detail = data;
    renderDetail(data, fresh);
  }

  function renderDetail(data, fresh) {
    const { ticket } = data;
    ui.empty.hidden = true;
    ui.ticket.hidden = false;
    ui.title.textContent = ticket.intent ? `Ticket #${ticket.id} · ${intentLabel(ticket.intent)}` : `Ticket #${ticket.id}`;
    ui.title.tabIndex = -1;
    const who = ticket.claimed_by ? ` by ${ticket.claimed_by}` : "";
    ui.meta.textContent = `Opened ${time(ticket.created_at)} · ${ticket.status}${who} · ${ticket.reason}`;
    renderResolved(ticket);

    const mine = ticket.status === "claimed" && ticket.claimed_by === agentName();
    ui.claim.hidden = ticket.status !== "open";
    ui.replyForm.hidden = !mine;
    ui.resolveForm.hidden = !(mine || ticket.status === "open");
    if (fresh) {
      // No intent is chosen for the agent, not even the bot's reading: after "let me speak to a human"
      // that reading is Human agent, and resolving with it would teach the customer's question as a
      // request for a person. The agent picks what the question was about, or nothing is learned.
      ui.search.value = "";
      ui.intentList.value = "";
      fillIntents();
      ui.botReading.textContent = ticket.intent
        ? `The bot read “${intentLabel(ticket.intent)}”. Pick what the customer really meant.`
        : "Pick what the customer really meant.";
    }

    renderLearnable(data.learnable);

    const signature = `${data.messages.map((m) => m.id).join(",")}|${data.decisions.length}`;
    if (signature !== transcriptSignature) {
      transcriptSignature = signature;
      renderTranscript(data, fresh);
    }
  }

  // A resolved ticket says so plainly: who closed it, with which intent, and that the customer was told.
  function renderResolved(ticket) {
    ui.resolved.hidden = ticket.status !== "resolved";
    if (ui.resolved.hidden) return;
    const meant = ticket.resolved_intent ? ` as “${intentLabel(ticket.resolved_intent)}”` : "";
    const by = ticket.claimed_by ? ` by ${ticket.claimed_by}` : "";
    ui.resolvedText.textContent =
      `Resolved${by}${meant} at ${time(ticket.resolved_at)}. ` +
      "The customer was told, and the bot answers this conversation again.";
  }

  function renderTranscript({ messages, decisions }, fresh) {
    const box = ui.transcript;
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 60;
    const byMessage = new Map(decisions.map((d) => [d.message_id, d]));
    const items = messages.map((message) => {
      if (message.role === "system") {
        return el(
          "li",
          { class: "line system", "data-id": String(message.id) },
          el("p", { class: "text", text: `${message.text} · ${time(message.created_at)}` }),
        );
      }
      const speaker =
        message.role === "user" ? "Customer" : message.role === "agent" ? `${message.author} (agent)` : "Bot";
      const item = el(
        "li",
        { class: `line ${message.role}`, "data-id": String(message.id) },
        el("span", { class: "speaker", text: `${speaker} · ${time(message.created_at)}` }),
        el("p", { class: "text", text: message.text }),
      );
      const decision = byMessage.get(message.id);
      if (decision) item.append(renderDecision(decision));
      return item;
    });
    if (!items.length) items.push(el("li", { class: "none", text: "No messages." }));
    box.replaceChildren(...items);
    if (atBottom || fresh) box.scrollTop = box.scrollHeight; // follow new lines unless reading back
  }

  // The customer messages resolving may teach: the default pick checked, the others with why not.
  // The list is rebuilt only when it changes, and keeps the boxes the agent ticked or cleared.
  function renderLearnable(learnable) {
    if (!Array.isArray(learnable)) {
      ui.learnBox.hidden = true; // an older server: it picks the message itself
      return;
    }
    const signature = learnable.map((m) => `${m.message_id}:${m.default}`).join(",");
    if (signature === learnSignature) return;
    learnSignature = signature;
    ui.learnBox.hidden = false;
    const items = learnable.map((m) => {
      const checked = learnChoices.has(m.message_id) ? learnChoices.get(m.message_id) : m.default;
      const box = el("input", {
        type: "checkbox",
        class: "learn-check",
        "data-id": String(m.message_id),
        checked,
        onchange: (event) => learnChoices.set(m.message_id, event.target.checked),
      });
      return el(
        "li",
        { class: m.default ? "learn-item default" : "learn-item" },
        el(
          "label",
          {},
          box,
          el("span", { class: "learn-text", text: m.text }),
          el("span", { class: "learn-why", text: m.reason }),
        ),
      );
    });
    if (!items.length) items.push(el("li", { class: "none", text: "No customer messages to learn from." }));
    ui.learnList.replaceChildren(...items);
    showLearnHint();
  }

  // What resolving will teach with the intent picked now: nothing without one, nothing into an intent
  // that always hands off (the server refuses it too), else the checked messages.
  function showLearnHint() {
    const chosen = intents.find((i) => i.name === ui.intentList.value);
    const blocked = !chosen || chosen.handoff;
    for (const box of ui.learnList.querySelectorAll("input.learn-check")) box.disabled = Boolean(chosen && chosen.handoff);
    ui.learnBox.classList.toggle("off", blocked);
    if (!chosen) {
      ui.learnHint.textContent =
        "Pick an intent above to teach the bot: the checked messages become its examples. With no intent, nothing is learned.";
    } else if (chosen.handoff) {
      ui.learnHint.textContent = `“${chosen.label}” always hands off to a person, so nothing is learned into it.`;
    } else {
      ui.learnHint.textContent =
        `The checked messages become examples of “${chosen.label}”. Checked for you: the customer's question, ` +
        "never a request for a person or an angry message.";
    }
  }

  function checkedLearnIds() {
    return [...ui.learnList.querySelectorAll("input.learn-check")]
      .filter((box) => box.checked)
      .map((box) => Number(box.dataset.id));
  }

  // The bot's decision under the customer's message: route, intent, confidence, and on demand why.
  function renderDecision(d) {
    const confidence = `${Math.round(d.confidence * 100)}%`;
    const summary = el(
      "summary",
      {},
      el("span", { class: `route ${d.route}`, text: d.route }),
      el("span", { text: ` ${d.intent ? intentLabel(d.intent) : "no intent"} · ${confidence}` }),
      d.escalation ? el("span", { class: "escalation", text: ` · ${d.escalation.replace("_", " ")}` }) : "",
      d.chosen ? el("span", { text: " · picked from options" }) : "",
    );
    const candidates = el(
      "table",
      { class: "candidates" },
      el("caption", { class: "sr-only", text: "Candidate intents" }),
      el("thead", {}, el("tr", {}, el("th", { text: "Candidate" }), el("th", { text: "Confidence" }))),
      el(
        "tbody",
        {},
        ...d.candidates.slice(0, 5).map((c) =>
          el("tr", {}, el("td", { text: c.intent }), el("td", { text: c.confidence.toFixed(2) })),
        ),
      ),
    );
    const facts = [
      `threshold ${d.threshold.toFixed(2)}`,
      `margin ${d.margin.toFixed(3)}`,
      d.context_used ? "used the previous message" : "",
      d.source ? `source ${d.source}` : "",
    ].filter(Boolean);
    return el(
      "details",
      { class: "decision" },
      summary,
      el("p", { class: "why", text: d.reason }),
      candidates,
      el("p", { class: "facts", text: facts.join(" · ") }),
    );
  }

  /* ---------- claim, reply, resolve ---------- */

  async function act(work) {
    showError("");
    try {
      await work();
    } catch (error) {
      showError(error.message);
    }
    await Promise.allSettled([refreshDetail(), refreshQueue()]);
  }

  ui.claim.addEventListener("click", () => {
    if (needName()) return;
    act(async () => {
      await api(`/v1/handoffs/${selectedId}/claim`, { agent: agentName() });
      localStorage.setItem(NAME_STORE, agentName());
    }).then(() => {
      if (!ui.replyForm.hidden) ui.replyText.focus();
    });
  });

  ui.replyForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = ui.replyText.value.trim();
    if (!text || needName()) return;
    act(async () => {
      await api(`/v1/handoffs/${selectedId}/reply`, { agent: agentName(), text });
      ui.replyText.value = "";
    });
  });
  ui.replyText.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      ui.replyForm.requestSubmit();
    }
  });

  ui.resolveForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const body = {};
    if (agentName()) body.agent = agentName();
    if (ui.intentList.value) body.intent = ui.intentList.value;
    // the messages to teach, only with an intent to teach them for (an empty list teaches nothing)
    const handsOff = intents.some((i) => i.name === body.intent && i.handoff);
    if (body.intent && handsOff) body.learn = []; // an intent that hands off learns nothing
    else if (body.intent && !ui.learnBox.hidden) body.learn = checkedLearnIds();
    if (ui.note.value.trim()) body.note = ui.note.value.trim();
    act(async () => {
      await api(`/v1/handoffs/${selectedId}/resolve`, body);
      ui.note.value = "";
    });
  });

  /* ---------- the searchable intent list ---------- */

  async function loadIntents() {
    try {
      const data = await api("/v1/intents");
      intents = data.intents.map((i) => ({ name: i.name, label: i.label, handoff: Boolean(i.handoff) }));
      intents.sort((a, b) => a.label.localeCompare(b.label));
      fillIntents();
    } catch (error) {
      showError(`Could not load intents: ${error.message}`);
    }
  }

  function fillIntents() {
    const words = ui.search.value.toLowerCase().split(/\s+/).filter(Boolean);
    const current = ui.intentList.value || "";
    const matches = intents.filter((i) => {
      const haystack = `${i.label} ${i.name}`.toLowerCase();
      return words.every((w) => haystack.includes(w));
    });
    const options = [el("option", { value: "", text: "No intent · nothing is learned" })];
    for (const i of matches) {
      const text = `${i.label} (${i.name})${i.handoff ? " · hands off, learns nothing" : ""}`;
      options.push(el("option", { value: i.name, text }));
    }
    ui.intentList.replaceChildren(...options);
    // keep the agent's pick if it still matches; else the first match, so Enter resolves with it
    const keep = matches.some((i) => i.name === current) ? current : words.length && matches[0] ? matches[0].name : "";
    ui.intentList.value = keep;
    showLearnHint();
  }

  ui.search.addEventListener("input", () => fillIntents());
  ui.intentList.addEventListener("change", showLearnHint);
  ui.search.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown") {
      event.preventDefault();
      ui.intentList.focus();
    }
  });

  /* ---------- polling ---------- */

  function startPolling() {
    stopPolling();
    const every = (ms, work) =>
      setInterval(() => {
        if (document.visibilityState === "visible") work().catch(() => {});
      }, ms);
    timers = [every(QUEUE_POLL_MS, refreshQueue), every(DETAIL_POLL_MS, () => refreshDetail())];
  }

  function stopPolling() {
    timers.forEach(clearInterval);
    timers = [];
  }

  boot();
})();

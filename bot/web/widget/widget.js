/*
 * Intent router chat widget. Plain JavaScript, no build step, no third-party requests.
 *
 *   <script src="https://bot.example/widget.js" data-key="WIDGET_KEY"></script>
 *
 * Optional attributes: data-title (panel heading), data-greeting (first bot line, not stored),
 * data-accent (a CSS colour). The API is the origin this script was loaded from, so the widget
 * works on any site listed in the server's BOT_CORS_ORIGINS.
 *
 * Safety: every text from the API (answers, agent replies, the customer's own words) is put into
 * the page with textContent / text nodes, never parsed as HTML.
 */
(() => {
  "use strict";

  const script = document.currentScript;
  if (!script || window.__intentRouterWidget) return; // a second copy on the page would poll twice
  window.__intentRouterWidget = true;

  const API = new URL(script.src, location.href).origin;
  const KEY = script.dataset.key || "";
  const TITLE = script.dataset.title || "Chat with us";
  const GREETING = script.dataset.greeting || "Hi! Ask me anything, or ask for a person at any time.";
  const STORE = `intent-router-widget:${API}`; // localStorage: the conversation survives reloads
  const OPEN_STORE = `${STORE}:open`; // sessionStorage: an open panel stays open on reload
  const POLL_WITH_PERSON_MS = 2500;
  const POLL_OPEN_MS = 6000;
  const POLL_CLOSED_MS = 20000;
  const PAGE_SIZE = 500;

  /* ---------- persisted state ---------- */

  // conversationId: the API's id; ticketId: set while a person has been asked for; agent: who joined;
  // options / optionsAfter: an unanswered clarify question and the last message id it follows.
  let state = load();
  // Whether this browser keeps the conversation (localStorage works): the banner only promises that a
  // reply will be waiting after the page is closed when it will.
  let kept = true;

  function load() {
    try {
      return JSON.parse(localStorage.getItem(STORE) || "{}") || {};
    } catch {
      return {}; // storage disabled or corrupted: start a fresh conversation
    }
  }

  function save() {
    try {
      localStorage.setItem(STORE, JSON.stringify(state));
      kept = true;
    } catch {
      kept = false; // private mode or storage off: the conversation won't survive a reload
    }
  }

  /* ---------- API ---------- */

  async function api(path, body) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (KEY) headers.Authorization = `Bearer ${KEY}`;
    const response = await fetch(API + path, {
      method: body === undefined ? "GET" : "POST",
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
    });
    let data = null;
    try {
      data = await response.json();
    } catch {
      /* a proxy's HTML error page: fall through to the status */
    }
    if (!response.ok) {
      const error = new Error((data && data.error && data.error.message) || `HTTP ${response.status}`);
      error.status = response.status;
      throw error;
    }
    return data;
  }

  /* ---------- DOM helpers ---------- */

  // el("p", {class: "x", text: "hi"}, child...): attributes via setAttribute, text via textContent,
  // string children become text nodes. There is deliberately no way to pass HTML.
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

  function icon(paths) {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    for (const d of paths) {
      const path = document.createElementNS(ns, "path");
      path.setAttribute("d", d);
      svg.append(path);
    }
    return svg;
  }

  const CHAT_ICON = ["M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z"];
  const CLOSE_ICON = ["M6 6l12 12", "M18 6L6 18"];
  const SEND_ICON = ["M4 12l16-8-6 16-2-7-8-1z"];

  // What a customer reads when something fails: never the API's technical message (that goes to the
  // console for whoever embeds the widget), and something they can do.
  function friendly(error) {
    console.error("[intent-router widget]", error.status || "", error.message); // for the site's developers
    if (error.status === 401 || error.status === 403)
      return "Sorry, chat isn't available right now. Please try again later or contact us another way.";
    if (error.status === 429) return "You're sending messages very quickly. Please wait a moment and try again.";
    if (error.status === 422) return "Sorry, that message couldn't be sent. Please shorten or rephrase it.";
    if (!error.status) return "We couldn't reach our assistant. Check your connection and try again.";
    return "Sorry, something went wrong on our side. Please try again in a moment.";
  }

  function timeOf(iso) {
    const date = iso ? new Date(iso) : new Date();
    return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  /* ---------- styles (in a shadow root, so host pages and the widget cannot restyle each other) ---------- */

  const STYLES = `
    :host { all: initial; }
    * { box-sizing: border-box; }
    [hidden] { display: none !important; }
    .root {
      --accent: #4f46e5; --accent-ink: #fff; --ink: #1f2330; --muted: #5d6373; --line: #e3e5ec;
      --bot: #f2f3f7; --agent: #e8f5ee; --agent-ink: #135c38;
      font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
      color: var(--ink); position: fixed; right: 20px; bottom: 20px; z-index: 2147483000;
    }
    button { font: inherit; cursor: pointer; }
    .sr-only { position: absolute; width: 1px; height: 1px; margin: -1px; overflow: hidden;
      clip: rect(0 0 0 0); white-space: nowrap; border: 0; }
    :focus-visible { outline: 3px solid #f59e0b; outline-offset: 2px; }
    .launcher {
      display: flex; align-items: center; gap: 8px; margin-left: auto; padding: 12px 18px;
      border: 0; border-radius: 999px; background: var(--accent); color: var(--accent-ink);
      font-weight: 600; box-shadow: 0 8px 24px rgba(20, 20, 50, .25); position: relative;
    }
    .launcher svg { width: 22px; height: 22px; fill: none; stroke: currentColor; stroke-width: 2; }
    .badge { position: absolute; top: -4px; right: -4px; min-width: 20px; height: 20px; padding: 0 6px;
      border-radius: 10px; background: #dc2626; color: #fff; font-size: 12px; line-height: 20px; }
    .panel {
      width: min(380px, calc(100vw - 24px)); height: min(580px, calc(100vh - 110px));
      display: flex; flex-direction: column; margin-bottom: 14px; background: #fff;
      border-radius: 16px; overflow: hidden; box-shadow: 0 16px 48px rgba(20, 20, 50, .28);
      border: 1px solid var(--line);
    }
    .panel[hidden] { display: none; }
    header { display: flex; align-items: center; gap: 12px; padding: 14px 14px 14px 18px;
      background: var(--accent); color: var(--accent-ink); }
    .avatar { width: 36px; height: 36px; border-radius: 50%; background: rgba(255,255,255,.2);
      display: grid; place-items: center; flex: none; }
    .avatar svg { width: 20px; height: 20px; fill: none; stroke: currentColor; stroke-width: 2; }
    h2 { margin: 0; font-size: 16px; font-weight: 700; }
    .sub { margin: 0; font-size: 12.5px; opacity: .85; }
    .close { margin-left: auto; width: 36px; height: 36px; border: 0; border-radius: 50%;
      background: transparent; color: inherit; display: grid; place-items: center; }
    .close:hover { background: rgba(255,255,255,.18); }
    .close svg { width: 20px; height: 20px; stroke: currentColor; stroke-width: 2.2; fill: none; }
    .status { padding: 9px 16px; font-size: 13px; background: #fff7e6; color: #7a4b00;
      border-bottom: 1px solid #f6e3b8; }
    .status.with-agent { background: var(--agent); color: var(--agent-ink); border-color: #cfe9da; }
    .status.error { background: #fdecec; color: #8a1c1c; border-color: #f5c9c9; }
    .status[hidden] { display: none; }
    .log { flex: 1; overflow-y: auto; margin: 0; padding: 16px; list-style: none;
      display: flex; flex-direction: column; gap: 10px; background: #fbfbfd; }
    .msg { max-width: 85%; display: flex; flex-direction: column; gap: 3px; }
    .bubble { padding: 9px 13px; border-radius: 14px; white-space: pre-wrap; overflow-wrap: anywhere; }
    .meta { font-size: 11.5px; color: var(--muted); padding: 0 4px; }
    .msg.user { align-self: flex-end; align-items: flex-end; }
    .msg.user .bubble { background: var(--accent); color: var(--accent-ink); border-bottom-right-radius: 4px; }
    .msg.bot .bubble { background: var(--bot); border-bottom-left-radius: 4px; }
    .msg.agent .bubble { background: var(--agent); color: #10301f; border-bottom-left-radius: 4px;
      border: 1px solid #cfe9da; }
    .msg.agent .meta:first-child { color: var(--agent-ink); font-weight: 600; }
    .msg.pending .bubble { opacity: .65; }
    .notice { align-self: center; max-width: 92%; display: flex; flex-direction: column; align-items: center;
      gap: 3px; text-align: center; }
    .notice .bubble { padding: 6px 12px; font-size: 13px; color: var(--muted); background: #eef0f5;
      border-radius: 999px; }
    .msg.failed .bubble { background: #fdecec; color: #8a1c1c; }
    .source { font-size: 12.5px; padding: 0 4px; }
    .source a { color: var(--accent); }
    .choices { display: flex; flex-wrap: wrap; gap: 8px; margin: 2px 0 4px; }
    .choices button { padding: 7px 13px; border-radius: 999px; border: 1.5px solid var(--accent);
      background: #fff; color: var(--accent); font-weight: 600; font-size: 14px; }
    .choices button:hover:not(:disabled) { background: var(--accent); color: var(--accent-ink); }
    .choices button:disabled { cursor: default; opacity: .55; }
    .choices button.other { border-color: #cfd3de; color: var(--muted); font-weight: 500; }
    .choices button[aria-pressed="true"] { background: var(--accent); color: var(--accent-ink); opacity: 1; }
    .typing { align-self: flex-start; display: flex; gap: 4px; padding: 12px 14px; border-radius: 14px;
      background: var(--bot); }
    .typing span { width: 7px; height: 7px; border-radius: 50%; background: #9aa0ae;
      animation: blink 1.2s infinite ease-in-out; }
    .typing span:nth-child(2) { animation-delay: .15s; } .typing span:nth-child(3) { animation-delay: .3s; }
    @keyframes blink { 0%, 80%, 100% { opacity: .3; } 40% { opacity: 1; } }
    @media (prefers-reduced-motion: reduce) { .typing span { animation: none; } }
    form { display: flex; gap: 8px; padding: 12px; border-top: 1px solid var(--line); background: #fff; }
    textarea { flex: 1; resize: none; min-height: 42px; max-height: 120px; padding: 10px 12px;
      font: inherit; color: var(--ink); border: 1px solid #cfd3de; border-radius: 12px; }
    textarea:focus { outline: 2px solid var(--accent); outline-offset: 0; border-color: transparent; }
    .send { width: 44px; height: 44px; flex: none; border: 0; border-radius: 12px;
      background: var(--accent); color: var(--accent-ink); display: grid; place-items: center; }
    .send:disabled { opacity: .5; cursor: default; }
    .send svg { width: 20px; height: 20px; fill: currentColor; }
    .foot { margin: 0; padding: 0 12px 9px; font-size: 11px; color: var(--muted); text-align: center;
      background: #fff; }
    /* a phone: the open panel is the whole screen (as chat apps are), the launcher a corner button */
    @media (max-width: 480px) {
      .root { right: 12px; bottom: 12px; }
      .panel { position: fixed; inset: 0; width: 100%; height: 100%; margin: 0; border: 0; border-radius: 0;
        box-shadow: none; }
      header { padding-top: max(14px, env(safe-area-inset-top)); }
      form { padding-bottom: max(12px, env(safe-area-inset-bottom)); }
      textarea { font-size: 16px; } /* below 16px iOS zooms the page on focus */
    }
  `;

  /* ---------- build the widget ---------- */

  const host = el("div", { "data-intent-router-widget": "" });
  const shadow = host.attachShadow({ mode: "open" });
  // A constructed stylesheet is not an inline <style>, so a host page's strict CSP does not block it.
  if ("adoptedStyleSheets" in shadow && "replaceSync" in CSSStyleSheet.prototype) {
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(STYLES);
    shadow.adoptedStyleSheets = [sheet];
  } else {
    shadow.append(el("style", { text: STYLES }));
  }

  const root = el("div", { class: "root" });
  const accent = script.dataset.accent;
  if (accent && CSS.supports("color", accent)) root.style.setProperty("--accent", accent);

  const badge = el("span", { class: "badge", hidden: true, "aria-hidden": "true" });
  const launcherLabel = el("span", { text: "Chat" });
  const launcher = el(
    "button",
    { type: "button", class: "launcher", "aria-expanded": "false", "aria-controls": "ir-panel" },
    icon(CHAT_ICON),
    launcherLabel,
    el("span", { class: "sr-only", text: ` with ${TITLE}` }),
    badge,
  );
  const closeButton = el("button", { type: "button", class: "close", "aria-label": "Close chat" }, icon(CLOSE_ICON));
  const status = el("div", { class: "status", role: "status", hidden: true });
  const log = el("ol", { class: "log", role: "log", "aria-live": "polite", "aria-label": "Conversation" });
  const typing = el("li", { class: "typing", "aria-label": "The assistant is typing" }, el("span"), el("span"), el("span"));
  const input = el("textarea", {
    id: "ir-input",
    rows: "1",
    maxlength: "2000",
    placeholder: "Type your message…",
    autocomplete: "off",
  });
  const sendButton = el("button", { type: "submit", class: "send", "aria-label": "Send message" }, icon(SEND_ICON));
  const form = el(
    "form",
    { novalidate: true },
    el("label", { for: "ir-input", class: "sr-only", text: "Your message" }),
    input,
    sendButton,
  );
  const panel = el(
    "section",
    { id: "ir-panel", class: "panel", role: "dialog", "aria-labelledby": "ir-title", hidden: true },
    el(
      "header",
      {},
      el("div", { class: "avatar" }, icon(CHAT_ICON)),
      el("div", {}, el("h2", { id: "ir-title", text: TITLE }), el("p", { class: "sub", text: "Virtual assistant · a person can join" })),
      closeButton,
    ),
    status,
    log,
    form,
    el("p", { class: "foot", text: "Please don't share card numbers or passwords in chat." }),
  );
  root.append(panel, launcher);
  shadow.append(root);

  /* ---------- rendering ---------- */

  const rendered = new Set(); // message ids already on screen
  let lastId = null; // the largest message id seen: polls ask for messages after it
  let unread = 0;

  const WHO = { user: "You", bot: "Assistant", agent: "Support agent" };

  function addToLog(node) {
    const nearBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 80;
    log.insertBefore(node, typing.isConnected ? typing : null);
    if (nearBottom || node.classList.contains("user")) log.scrollTop = log.scrollHeight;
  }

  function renderMessage(message) {
    if (message.role === "system") return renderNotice(message);
    const role = WHO[message.role] ? message.role : "bot";
    const who = role === "agent" ? `${message.author || "Support agent"} · our team` : WHO[role];
    const item = el(
      "li",
      { class: `msg ${role}`, "data-id": message.id ?? undefined, "data-at": message.created_at ?? undefined },
      // the speaker is read out before every line; the visible name only where it adds something
      el("span", { class: role === "agent" ? "meta" : "sr-only", text: role === "agent" ? who : `${who}:` }),
      el("div", { class: "bubble", text: message.text }),
      el("span", { class: "meta", "aria-hidden": "true", text: timeOf(message.created_at) }),
    );
    addToLog(item);
    return item;
  }

  // A line from the server about the conversation itself (today: a person closed it, the bot is back).
  function renderNotice(message) {
    const item = el(
      "li",
      { class: "notice", "data-id": message.id ?? undefined, "data-at": message.created_at ?? undefined },
      el("span", { class: "bubble", text: message.text }),
      el("span", { class: "meta", "aria-hidden": "true", text: timeOf(message.created_at) }),
    );
    addToLog(item);
    return item;
  }

  function ingest(message) {
    lastId = Math.max(lastId ?? 0, message.id);
    if (rendered.has(message.id)) return;
    rendered.add(message.id);
    renderMessage(message);
    if (message.role === "system") {
      // the ticket was resolved: no one from the team is on the chat any more, the bot answers again
      state.ticketId = null;
      state.agent = null;
      save();
      showPersonStatus();
    }
    if (message.role === "agent" || message.role === "system") {
      if (message.role === "agent") {
        state.agent = message.author || "our team";
        save();
        showPersonStatus();
      }
      if (panel.hidden) {
        unread += 1;
        badge.textContent = String(unread);
        badge.hidden = false;
        launcherLabel.textContent = "New reply";
      }
    }
  }

  // The options, then "Something else": the API takes it as the choice `none_of_these` and asks the
  // customer to say it in other words (a second miss in a row hands the chat to a person).
  const SOMETHING_ELSE = { intent: "none_of_these", label: "Something else" };

  function renderChoices(options) {
    const group = el("li", { class: "choices", role: "group", "aria-label": "Did you mean" });
    for (const option of [...options, SOMETHING_ELSE]) {
      group.append(
        el("button", {
          type: "button",
          class: option === SOMETHING_ELSE ? "other" : undefined,
          text: option.label,
          "aria-pressed": "false",
          onclick: (event) => {
            for (const button of group.querySelectorAll("button")) button.disabled = true;
            event.currentTarget.setAttribute("aria-pressed", "true");
            input.focus(); // the disabled button would otherwise drop focus to <body>
            send({ choice: option });
          },
        }),
      );
    }
    addToLog(group);
  }

  // The link goes under the bot's reply to the customer's message `afterId`, and nowhere else: once a
  // person holds the chat the bot writes nothing, and an older bubble must not look like it cited it.
  function addSource(url, afterId) {
    let safe;
    try {
      safe = new URL(url);
    } catch {
      return;
    }
    if (safe.protocol !== "https:" && safe.protocol !== "http:") return; // no javascript: links
    const reply = [...log.querySelectorAll(".msg.bot[data-id]")].find((node) => Number(node.dataset.id) > afterId);
    if (!reply || reply.querySelector(".source")) return;
    reply.append(
      el(
        "span",
        { class: "source" },
        "Source: ",
        el("a", { href: safe.href, target: "_blank", rel: "noopener noreferrer", text: safe.hostname + safe.pathname }),
      ),
    );
  }

  function setStatus(text, kind) {
    status.textContent = text;
    status.className = `status ${kind || ""}`;
    status.hidden = !text;
  }

  // The banner says whether a person has been asked for, or has joined; otherwise there is none. What
  // it promises is what happens: the conversation is kept in this browser and restored from the API when
  // the page opens again, so a reply sent meanwhile is there (unless the browser keeps nothing).
  function showPersonStatus() {
    if (state.agent) setStatus(`You're chatting with ${state.agent} from our team.`, "with-agent");
    else if (state.ticketId) {
      const later = kept
        ? "Their reply will appear here, even if you close this page and come back later."
        : "Keep this window open: this browser isn't keeping the conversation.";
      setStatus(`A member of our team has been asked to join (ticket #${state.ticketId}). ${later}`, "");
    } else setStatus("");
  }

  /* ---------- talking to the API ---------- */

  // Fetches run one after another, so a poll and a send never render the same message twice.
  let chain = Promise.resolve();
  function sync() {
    const run = chain.then(fetchNew);
    chain = run.catch(() => {});
    return run;
  }

  async function fetchNew() {
    if (!state.conversationId) return;
    for (;;) {
      const after = lastId === null ? "" : `&after=${lastId}`;
      const page = await api(
        `/v1/conversations/${encodeURIComponent(state.conversationId)}/messages?limit=${PAGE_SIZE}${after}`,
      );
      page.messages.forEach(ingest);
      if (page.messages.length < PAGE_SIZE) return;
    }
  }

  async function send({ text, choice }) {
    const pending = renderMessage({ role: "user", text: choice ? choice.label : text });
    pending.classList.add("pending");
    addToLog(typing);
    sendButton.disabled = true;
    const body = choice ? { choice: choice.intent } : { message: text };
    if (state.conversationId) body.conversation_id = state.conversationId;
    body.channel = "web";
    try {
      const reply = await api("/v1/chat", body);
      state.conversationId = reply.conversation_id;
      rendered.add(reply.message_id); // this bubble is that message: the feed must not repeat it
      pending.dataset.id = String(reply.message_id);
      pending.classList.remove("pending");
      await sync();
      state.options = null;
      if (reply.route === "clarify" && reply.options && reply.options.length) {
        renderChoices(reply.options);
        state.options = reply.options;
        state.optionsAfter = lastId;
      }
      if (reply.ticket_id) {
        // a handoff, or the bot answering while a person is on the way: the ticket is still open
        if (state.ticketId !== reply.ticket_id) state.agent = null;
        state.ticketId = reply.ticket_id;
        save();
        showPersonStatus();
      } else if (reply.route !== "handoff") {
        // the bot answered with no ticket named, so the ticket was resolved
        state.ticketId = null;
        state.agent = null;
        showPersonStatus();
      }
      if (reply.source && reply.route !== "handoff") addSource(reply.source, reply.message_id);
      save();
    } catch (error) {
      pending.classList.remove("pending");
      pending.classList.add("failed");
      pending.querySelector(".meta:last-child").textContent = "Not sent";
      setStatus(friendly(error), "error");
      if (error.status === 404) {
        // the conversation is gone (e.g. the server's database was reset): the next message starts anew
        resetConversation();
      }
    } finally {
      typing.remove();
      sendButton.disabled = false;
      schedulePoll();
    }
  }

  function resetConversation() {
    state = {};
    save();
    lastId = null;
    rendered.clear();
  }

  let pollTimer = null;
  function schedulePoll() {
    clearTimeout(pollTimer);
    if (!state.conversationId) return;
    const delay = state.ticketId ? POLL_WITH_PERSON_MS : panel.hidden ? POLL_CLOSED_MS : POLL_OPEN_MS;
    pollTimer = setTimeout(async () => {
      try {
        await sync();
        if (status.classList.contains("error")) showPersonStatus(); // reachable again
      } catch (error) {
        if (error.status === 404) resetConversation();
      }
      schedulePoll();
    }, delay);
  }

  /* ---------- opening, closing, keyboard ---------- */

  function open() {
    panel.hidden = false;
    launcher.setAttribute("aria-expanded", "true");
    launcherLabel.textContent = "Chat";
    launcher.hidden = true; // the panel's close button takes over; saves space on small screens
    unread = 0;
    badge.hidden = true;
    sessionStorage.setItem(OPEN_STORE, "1");
    log.scrollTop = log.scrollHeight;
    input.focus();
    schedulePoll();
  }

  function close() {
    panel.hidden = true;
    launcher.hidden = false;
    launcher.setAttribute("aria-expanded", "false");
    sessionStorage.removeItem(OPEN_STORE);
    launcher.focus();
    schedulePoll();
  }

  launcher.addEventListener("click", open);
  closeButton.addEventListener("click", close);
  panel.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.stopPropagation();
      close();
    }
  });
  input.addEventListener("keydown", (event) => {
    // Enter sends, Shift+Enter adds a line (as in every chat app)
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text || sendButton.disabled) return;
    input.value = "";
    send({ text });
  });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && state.conversationId) sync().catch(() => {});
  });

  /* ---------- start: restore the conversation from the API ---------- */

  // The greeting is not stored, so it keeps the time it was first shown; it opens the conversation, so it
  // is never later than the first stored message (a conversation from before greetedAt existed).
  function greetingTime() {
    const first = log.querySelector(".msg[data-id]");
    const firstAt = first ? first.dataset.at : null;
    if (firstAt && (!state.greetedAt || new Date(firstAt) < new Date(state.greetedAt))) state.greetedAt = firstAt;
    if (!state.greetedAt) state.greetedAt = new Date().toISOString();
    return state.greetedAt;
  }

  async function restore() {
    log.setAttribute("aria-busy", "true"); // history is not news: don't read it all out
    const greeting = renderMessage({ role: "bot", text: GREETING, created_at: state.greetedAt });
    if (state.conversationId) {
      try {
        await sync();
        if (state.options && state.optionsAfter === lastId) renderChoices(state.options);
        showPersonStatus();
      } catch (error) {
        if (error.status === 404) resetConversation();
        else setStatus(friendly(error), "error");
      }
    }
    greeting.querySelector(".meta:last-child").textContent = timeOf(greetingTime());
    save();
    log.removeAttribute("aria-busy");
    log.scrollTop = log.scrollHeight;
    schedulePoll();
  }

  function start() {
    document.body.append(host);
    if (sessionStorage.getItem(OPEN_STORE)) {
      panel.hidden = false;
      launcher.hidden = true;
      launcher.setAttribute("aria-expanded", "true");
    }
    restore();
  }

  if (document.body) start();
  else document.addEventListener("DOMContentLoaded", start);
})();

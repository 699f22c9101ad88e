// The webhooks page: the subscriptions events go to, and the deliveries that exhausted their retries, each
// re-sent on request and followed until it is delivered or fails again. No build step; helpers (h, api,
// toast, when) come from common.js. Every endpoint it calls needs an admin key.
"use strict";

const $ = (id) => document.getElementById(id);

const FAILED_LIMIT = 100; // the API's page; more are re-sent a page at a time
const FOLLOW_MS = 1500; // how often a re-sent delivery's state is asked for
const FOLLOW_FOR_MS = 10 * 60 * 1000; // retries back off for hours: after this the page stops asking
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;

let subscriptions = new Map(); // id -> URL
const rows = new Map(); // delivery id -> {delivery, tr, state, resent}
let failedTotal = 0; // failed deliveries on the server when the list was read
let shown = 0; // of them in the table

async function loadSubscriptions() {
  const data = await api("/v1/admin/webhooks");
  subscriptions = new Map(data.items.map((s) => [s.id, s.url]));
  const body = $("subscriptions").tBodies[0];
  if (!data.items.length) {
    body.replaceChildren(
      h("tr", { class: "empty-row" }, h("td", { colspan: 4 }, "No subscriptions: no event is sent anywhere. Add one with POST /v1/admin/webhooks (an admin key) or BOT_WEBHOOKS in the server's settings; docs/webhooks.md shows both.")),
    );
    return;
  }
  // the secret is not shown, not even masked: this page never needs it
  body.replaceChildren(
    ...data.items.map((s) =>
      h(
        "tr",
        { id: `s-${s.id}` },
        h("td", { class: "url" }, s.url),
        h("td", { "data-label": "Events" }, s.events.length ? s.events.join(", ") : "all events"),
        h("td", { "data-label": "From" }, s.source === "settings" ? "BOT_WEBHOOKS" : "admin API"),
        h("td", { "data-label": "Created", title: s.created_at }, when(s.created_at)),
      ),
    ),
  );
}

function subscriptionName(id) {
  return subscriptions.get(id) || `deleted subscription #${id}`;
}

async function loadFailed() {
  const data = await api(`/v1/admin/webhooks/failed?limit=${FAILED_LIMIT}`);
  rows.clear();
  failedTotal = data.total;
  shown = data.items.length;
  const body = $("failed").tBodies[0];
  if (!data.items.length) {
    body.replaceChildren(
      h("tr", { class: "empty-row", id: "no-failed" }, h("td", { colspan: 7 }, "No failed deliveries: every event reached its endpoint or is still being retried. A delivery that fails all its tries (BOT_WEBHOOK_MAX_ATTEMPTS) is listed here, to re-send once its endpoint is fixed.")),
    );
  } else {
    body.replaceChildren(...data.items.map(failedRow));
  }
  const more = data.total > data.items.length ? ` Showing the newest ${data.items.length} of ${data.total}: re-send these, then Refresh for the rest.` : "";
  $("failed-more").textContent = more;
  summarise();
}

function failedRow(delivery) {
  const state = h("td", { class: "state-cell", "data-label": "State" });
  const tr = h(
    "tr",
    { id: `d-${delivery.id}` },
    h("td", { class: "type" }, delivery.event_type),
    h("td", { "data-label": "Event id", class: "event-id" }, h("code", {}, delivery.event_id)),
    h("td", { "data-label": "To", class: "url" }, subscriptionName(delivery.subscription_id)),
    h("td", { "data-label": "Tries", class: "tries" }),
    h("td", { "data-label": "Last error", class: "error-cell" }),
    h("td", { "data-label": "Written", class: "written", title: delivery.created_at }, when(delivery.created_at)),
    state,
  );
  const row = { delivery, tr, state, resent: false };
  rows.set(delivery.id, row);
  show(row, delivery);
  return tr;
}

// A row as the server last described its delivery, with an optional note (why a re-send did not happen).
function show(row, delivery, note) {
  row.delivery = delivery;
  row.tr.dataset.state = delivery.status;
  row.tr.querySelector(".tries").textContent = String(delivery.attempts);
  row.tr.querySelector(".error-cell").textContent = delivery.last_error || "–";
  let label;
  if (delivery.status === "delivered") {
    label = h("span", { class: "pill good" }, `Delivered ${when(delivery.delivered_at)}`);
  } else if (delivery.status === "pending") {
    const text = delivery.attempts ? `Retrying: ${plural(delivery.attempts, "try", "tries")} failed` : "Queued: sending…";
    label = h("span", { class: "pill busy" }, text);
  } else {
    label = h("span", { class: "pill bad" }, row.resent ? "Failed again" : "Failed");
  }
  const button =
    delivery.status === "failed"
      ? h("button", { type: "button", class: "btn", "data-resend": delivery.id, onclick: () => resendOne(row) }, "Resend")
      : null;
  // replaceChildren would write a null as the text "null": only the parts there are
  row.state.replaceChildren(...[label, button, note ? h("p", { class: "row-note" }, note) : null].filter(Boolean));
  summarise();
}

function summarise() {
  const failing = [...rows.values()].filter((r) => r.delivery.status === "failed").length;
  const delivered = [...rows.values()].filter((r) => r.delivery.status === "delivered").length;
  const still = failedTotal - shown + failing;
  const parts = [plural(subscriptions.size, "subscription", "subscriptions"), `${plural(still, "failed delivery", "failed deliveries")}`];
  if (delivered) parts.push(`${delivered} delivered after a re-send`);
  $("summary-line").textContent = parts.join(" · ");
  const all = $("resend-all");
  all.disabled = failing === 0;
  all.textContent = failing ? `Resend all shown (${failing})` : "Resend all shown";
}

// Queues a row's delivery again and follows it; false (and the reason on the row) if the server refused.
async function resend(row) {
  row.resent = true;
  row.state.querySelector("button")?.setAttribute("disabled", "");
  try {
    show(row, await api(`/v1/admin/webhooks/events/${row.delivery.id}/resend`, { method: "POST" }));
  } catch (error) {
    // e.g. its subscription was deleted: nothing to send it to. The row shows the server's state now.
    const now = await api(`/v1/admin/webhooks/events/${row.delivery.id}`).catch(() => row.delivery);
    show(row, now, `Not re-sent: ${error.message}`);
    if (now.status === "pending") follow(row);
    return error;
  }
  follow(row);
  return null;
}

async function resendOne(row) {
  const error = await resend(row);
  if (error) toast(error.message, true);
}

// Asks for a re-sent delivery's state until it is delivered or failed again (or the row was replaced).
async function follow(row) {
  const until = Date.now() + FOLLOW_FOR_MS;
  while (row.delivery.status === "pending" && rows.get(row.delivery.id) === row) {
    if (Date.now() > until) {
      show(row, row.delivery, "Still queued: Refresh later to see how it went.");
      return;
    }
    await sleep(FOLLOW_MS);
    try {
      show(row, await api(`/v1/admin/webhooks/events/${row.delivery.id}`));
    } catch (error) {
      show(row, row.delivery, `The server did not say how it went (${error.message}); asking again.`);
    }
  }
}

$("resend-all").addEventListener("click", async () => {
  const targets = [...rows.values()].filter((r) => r.delivery.status === "failed");
  if (!targets.length) return;
  if (!confirm(`Resend ${plural(targets.length, "failed delivery", "failed deliveries")}? Each is queued again with fresh retries and its own event id.`)) return;
  let refused = 0;
  for (const row of targets) if (await resend(row)) refused += 1; // one at a time: the writer is shared with chat
  const queued = targets.length - refused;
  toast(refused ? `${queued} of ${targets.length} queued again; the rows say why the others were not.` : `${plural(queued, "delivery", "deliveries")} queued again.`, refused > 0);
});

async function load() {
  await loadSubscriptions(); // first: the failed rows name their subscription's URL
  await loadFailed();
}

$("refresh").addEventListener("click", () => load().catch((error) => toast(error.message, true)));
setUpKeyButton();
load()
  .then(() => (document.body.dataset.ready = "true")) // page tests wait for this
  .catch((error) => toast(error.message, true));

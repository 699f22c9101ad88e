// The versions page: stored intents versions, a routing diff of one (or a server folder) against live,
// and making one live (rollback). No build step; helpers (h, api, toast, when) come from common.js.
"use strict";

const $ = (id) => document.getElementById(id);

// A version is named one way everywhere on the page, as the API, `bot versions list` and /readyz name it:
// its stored id. (The intents hash a decision records is not one: versions differing only in knowledge
// files or the model share it.)
const versionName = (id) => `version ${id}`;
const capital = (text) => text.charAt(0).toUpperCase() + text.slice(1); // a toast's first word

async function loadVersions() {
  const data = await api("/v1/versions?limit=200");
  const live = data.items.find((v) => v.live);
  $("live-line").textContent = live ? `Live: ${versionName(live.id)}` : "No version recorded yet";
  const target = location.hash.startsWith("#v-") ? Number(location.hash.slice(3)) : null;
  $("versions").tBodies[0].replaceChildren(
    ...data.items.map((v) =>
      h(
        "tr",
        { id: `v-${v.id}`, class: [v.live ? "live" : "", v.id === target ? "target" : ""].join(" ").trim() || null },
        h("td", { class: "version-cell" }, versionName(v.id), v.live ? h("span", { class: "pill good" }, "live") : null),
        h("td", { title: v.created_at, "data-label": "Loaded" }, when(v.created_at)),
        h("td", { "data-label": "By" }, v.loaded_by),
        h("td", { class: "summary" }, v.summary),
        h("td", { "data-label": "Intents" }, String(v.intents)),
        h(
          "td",
          { class: "actions-cell" },
          h("button", { type: "button", class: "btn", "data-diff": v.id, disabled: v.live, onclick: () => diffVersion(v) }, "Diff"),
          h("button", { type: "button", class: "btn", "data-shadow": v.id, disabled: v.live, onclick: () => startShadow({ version_id: v.id }, versionName(v.id)) }, "Shadow"),
          h("button", { type: "button", class: "btn", "data-activate": v.id, disabled: v.live, onclick: () => activate(v) }, "Make live"),
        ),
      ),
    ),
  );
  showHistory(data.activations);
  if (target) $(`v-${target}`)?.scrollIntoView({ block: "center" });
}

// -- activation history: which version went live when, from the stored activations ------------------

const HISTORY_SHOWN = 8;
let historyAll = false;

// How a version went live, in words. An activation from this page or the API is a rollback when the
// version is older (a lower id) than the one live before it.
function howLive(activation, before) {
  if (activation.action === "start") return "server start";
  if (activation.action === "reload") return "reload of the folder";
  if (activation.action === "promote") return "shadow promoted";
  if (activation.action === "activate") return before && activation.version_id < before.version_id ? "rollback" : "made live";
  return activation.action;
}

function showHistory(activations) {
  const shown = historyAll ? activations : activations.slice(0, HISTORY_SHOWN);
  $("history-table").tBodies[0].replaceChildren(
    ...shown.map((a, i) =>
      h(
        "tr",
        { class: i === 0 ? "live" : null, "data-version": a.version_id, "data-action": a.action },
        h("td", { title: a.at }, when(a.at), i === 0 ? h("span", { class: "pill good" }, "live now") : null),
        h("td", { "data-label": "Version" }, h("a", { href: `#v-${a.version_id}` }, versionName(a.version_id))),
        h("td", { "data-label": "How", class: "how" }, howLive(a, activations[i + 1])),
        h("td", { "data-label": "By" }, a.activated_by),
      ),
    ),
  );
  if (!activations.length) {
    $("history-table").tBodies[0].replaceChildren(h("tr", {}, h("td", { colspan: 4, class: "muted" }, "No version went live yet.")));
  }
  $("history-more").hidden = historyAll || activations.length <= HISTORY_SHOWN;
  $("history-more").textContent = `Show all ${activations.length}`;
}

function sinceValue() {
  const day = $("since").value;
  return day ? `${day}T00:00:00Z` : undefined;
}

async function runDiff(body, label) {
  $("diff").hidden = false;
  $("diff-caption").textContent = `Replaying logged messages under live and ${label}…`;
  $("diff-figures").replaceChildren();
  $("diff-groups").replaceChildren();
  try {
    const report = await api("/v1/admin/diff", { method: "POST", body: { ...body, since: sinceValue(), limit: Number($("limit").value) || 10000 } });
    showDiff(report);
  } catch (error) {
    $("diff-caption").textContent = `The diff failed: ${error.message}`;
    toast(error.message, true);
  }
}

function figure(value, label, tone) {
  return h("div", { class: `figure ${tone || ""}` }, h("div", { class: "value" }, String(value)), h("div", { class: "label" }, label));
}

function candidateName(report) {
  return report.candidate_id ? report.candidate : `the folder ${report.candidate} (not stored as a version)`;
}

function showDiff(report) {
  const live = report.live_id ? `Live ${versionName(report.live_id)}` : "Live";
  $("diff-caption").textContent = `${live} against ${candidateName(report)}: ${report.summary}. ${report.seconds.toFixed(1)} s.`;
  // "reviewed" counts every replayed message an analyst reviewed, so it follows the messages it counts
  $("diff-figures").replaceChildren(
    figure(report.messages, "messages replayed"),
    figure(report.reviewed, "of them reviewed"),
    figure(report.changed, "decided differently"),
    figure(report.fixes, "reviewed errors fixed", "good"),
    figure(report.breaks, "reviewed-correct broken", "bad"),
  );
  if (!report.groups.length) {
    $("diff-groups").replaceChildren(h("p", { class: "muted", id: "no-change" }, "No logged message would be decided differently."));
    return;
  }
  $("diff-groups").replaceChildren(
    ...report.groups.map((g) =>
      h(
        "div",
        { class: "group" },
        h(
          "h3",
          {},
          h("span", { class: "move" }, `${g.before} → ${g.after}`),
          h("span", { class: "pill" }, `${g.count} message${g.count === 1 ? "" : "s"}`),
          g.fixes ? h("span", { class: "pill good" }, `fixes ${g.fixes}`) : null,
          g.breaks ? h("span", { class: "pill bad" }, `breaks ${g.breaks}`) : null,
        ),
        h(
          "ul",
          {},
          g.examples.map((e) =>
            h("li", {}, `“${e.text}”`, e.effect ? h("span", { class: `pill ${e.effect === "fixes" ? "good" : "bad"}` }, e.effect) : null),
          ),
        ),
      ),
    ),
  );
}

function diffVersion(v) {
  runDiff({ version_id: v.id }, versionName(v.id));
}

async function activate(v) {
  if (!confirm(`Make version ${v.id} live on every replica?\n${v.summary}`)) return;
  try {
    const done = await api(`/v1/admin/versions/${v.id}/activate`, { method: "POST" });
    toast(`${capital(versionName(done.version.id))} is live (${done.intents} intents); other replicas follow within seconds.`);
    await loadVersions();
  } catch (error) {
    toast(error.message, true);
  }
}

// -- shadow run: live against the candidate on the same messages -----------------------------------

async function loadShadow() {
  showShadow(await api("/v1/shadow"));
}

function showShadow(data) {
  const run = data.run;
  const found = data.comparison;
  $("shadow-actions").hidden = !run;
  $("shadow-caption").textContent = run
    ? `Shadowing ${run.candidate} since ${when(run.started_at)}: ${run.decided} decided, ${run.pending} queued, ${run.dropped} dropped (queue full), ${run.failed} failed.`
    : "No shadow run. Start one with Shadow on a version, or on a folder on the server below: it routes every live message too, off the request path; customers only ever see live.";
  if (!found || !found.messages) {
    $("shadow-figures").replaceChildren();
    $("shadow-disagreements").replaceChildren(run ? h("p", { class: "muted" }, "No message shadowed yet.") : "");
    return;
  }
  $("shadow-figures").replaceChildren(
    figure(found.messages, "messages both decided"),
    figure(pct(found.agreement, 1), "agreement", "good"),
    figure(found.reviewed, "of them reviewed"),
    figure(pct(found.live_accuracy), "live correct (reviewed)"),
    figure(pct(found.shadow_accuracy), "shadow correct (reviewed)"),
  );
  $("shadow-disagreements").replaceChildren(
    ...found.disagreements.map((d) =>
      h(
        "div",
        { class: "group" },
        h("h3", {}, h("span", { class: "move" }, `live ${d.live} · shadow ${d.shadow}`), h("span", { class: "pill" }, `${d.count}`)),
        h("ul", {}, d.examples.map((text) => h("li", {}, `“${text}”`))),
      ),
    ),
  );
}

// `candidate` is {version_id} or {intents_dir}; the API's refusal (a folder outside BOT_CANDIDATE_ROOTS,
// an invalid intents file with path:line) is shown under the folder form as well as in a toast.
async function startShadow(candidate, label) {
  $("shadow-error").textContent = "";
  try {
    const data = await api("/v1/admin/shadow", { method: "POST", body: candidate });
    showShadow(data);
    toast(`${capital(data.run ? data.run.candidate : label)} shadows live traffic now.`);
    if (candidate.intents_dir) await loadVersions(); // the folder was stored as a version
    return true;
  } catch (error) {
    if (candidate.intents_dir) $("shadow-error").textContent = `Could not start the shadow run: ${error.message}`;
    toast(error.message, true);
    return false;
  }
}

$("shadow-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const folder = $("shadow-folder").value.trim();
  if (!folder) return;
  $("shadow-start").disabled = true;
  try {
    if (await startShadow({ intents_dir: folder }, folder)) $("shadow-folder").value = "";
  } finally {
    $("shadow-start").disabled = false;
  }
});
$("history-more").addEventListener("click", () => {
  historyAll = true;
  loadVersions().catch((error) => toast(error.message, true));
});
$("shadow-refresh").addEventListener("click", () => loadShadow().catch((error) => toast(error.message, true)));
$("shadow-stop").addEventListener("click", async () => {
  try {
    showShadow({ ...(await api("/v1/admin/shadow", { method: "DELETE" })), run: null });
  } catch (error) {
    toast(error.message, true);
  }
});
$("shadow-promote").addEventListener("click", async () => {
  if (!confirm("Make the shadow's version live on every replica?")) return;
  try {
    const done = await api("/v1/admin/shadow/promote", { method: "POST" });
    toast(`${capital(versionName(done.version.id))} is live; the shadow run stopped.`);
    await Promise.all([loadVersions(), loadShadow()]);
  } catch (error) {
    toast(error.message, true);
  }
});

$("folder-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const folder = $("folder").value.trim();
  if (folder) runDiff({ intents_dir: folder }, folder);
});
setUpKeyButton();
watchModel();
Promise.all([loadVersions(), loadShadow()])
  .then(() => (document.body.dataset.ready = "true")) // page tests wait for this
  .catch((error) => toast(error.message, true));

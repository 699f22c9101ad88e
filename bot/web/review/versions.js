// The versions page: stored intents versions, a routing diff of one (or a server folder) against live,
// and making one live (rollback). No build step; helpers (h, api, toast, when) come from common.js.
"use strict";

const $ = (id) => document.getElementById(id);

async function loadVersions() {
  const data = await api("/v1/versions?limit=200");
  const live = data.items.find((v) => v.live);
  $("live-line").textContent = live ? `Live: version ${live.id} (intents ${live.intents_version})` : "No version recorded yet";
  const target = location.hash.startsWith("#v-") ? Number(location.hash.slice(3)) : null;
  $("versions").tBodies[0].replaceChildren(
    ...data.items.map((v) =>
      h(
        "tr",
        { id: `v-${v.id}`, class: [v.live ? "live" : "", v.id === target ? "target" : ""].join(" ").trim() || null },
        h("td", {}, String(v.id), v.live ? h("span", { class: "pill good" }, "live") : null),
        h("td", { title: v.created_at }, when(v.created_at)),
        h("td", {}, v.loaded_by),
        h("td", { class: "summary" }, v.summary),
        h("td", {}, String(v.intents)),
        h(
          "td",
          { class: "actions-cell" },
          h("button", { type: "button", class: "btn", "data-diff": v.id, disabled: v.live, onclick: () => diffVersion(v) }, "Diff"),
          h("button", { type: "button", class: "btn", "data-activate": v.id, disabled: v.live, onclick: () => activate(v) }, "Make live"),
        ),
      ),
    ),
  );
  if (target) $(`v-${target}`)?.scrollIntoView({ block: "center" });
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

function showDiff(report) {
  $("diff-caption").textContent = `Live (intents ${report.live_version}) against ${report.candidate} (intents ${report.candidate_version}): ${report.summary}. ${report.seconds.toFixed(1)} s.`;
  $("diff-figures").replaceChildren(
    figure(report.messages, "messages replayed"),
    figure(report.changed, "decided differently"),
    figure(report.reviewed, "of them reviewed"),
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
  runDiff({ version_id: v.id }, `version ${v.id}`);
}

async function activate(v) {
  if (!confirm(`Make version ${v.id} live on every replica?\n${v.summary}`)) return;
  try {
    const done = await api(`/v1/admin/versions/${v.id}/activate`, { method: "POST" });
    toast(`Version ${done.version.id} is live (${done.intents} intents); other replicas follow within seconds.`);
    await loadVersions();
  } catch (error) {
    toast(error.message, true);
  }
}

$("folder-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const folder = $("folder").value.trim();
  if (folder) runDiff({ intents_dir: folder }, folder);
});
setUpKeyButton();
loadVersions().catch((error) => toast(error.message, true));

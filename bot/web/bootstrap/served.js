// /review/bootstrap on `bot serve`: the drafts of BOT_BOOTSTRAP_DIR, read with an admin key (api() from
// common.js), reviewed with review.js, and the reviewed drafts.yaml saved back into that folder. The server
// validates it and writes it there only: nothing goes live until a person serves that folder.
"use strict";
(async () => {
  const explain = document.getElementById("explain");
  let found;
  try {
    found = await api("/v1/admin/bootstrap");
  } catch (error) {
    explain.className = "explain problem";
    explain.textContent = error.message;
    return;
  }
  const summary = found.summary;
  const messages = summary.messages || 0;
  const covered = messages ? 1 - summary.unassigned / messages : 0;
  document.getElementById("summary-line").textContent =
    `${summary.drafts.length} drafts covering ${Math.round(covered * 100)}% of ` +
    `${messages.toLocaleString("en")} questions; ${summary.knowledge_entries} knowledge entries; ` +
    `${summary.skipped} records skipped`;
  explain.textContent =
    `Drafted by bot bootstrap from ${summary.source} into ${found.folder}. Nothing here is live. Decide each ` +
    "draft: accept it (rename it if the name is wrong), merge it into another draft (its examples join that " +
    `one), or drop it. Then make the reviewed file and save it: it replaces ${found.saved_to}; run ` +
    `bot check --intents ${found.folder} before serving that folder.`;
  if (found.saved_at) {
    explain.textContent += ` A reviewed file was saved there ${when(new Date(found.saved_at * 1000).toISOString())}.`;
  }
  startDraftsReview(summary, async (text) => {
    const saved = await api("/v1/admin/bootstrap/reviewed", { method: "PUT", body: { yaml: text } });
    return `Saved ${saved.intents} intents to ${saved.saved_to}. Next: ${saved.next}.`;
  });
})();

// /review/bootstrap on `bot serve`: the drafts of BOT_BOOTSTRAP_DIR, read with an admin key (api() from
// common.js), reviewed with review.js. Only the decisions are sent: the server makes the reviewed drafts.yaml
// from drafts.json, checks it loads and writes it into that folder only: nothing goes live until a person
// serves that folder.
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
  // only the decisions leave the page; the server makes drafts.yaml from drafts.json of this version
  const send = async (method, path, decisions) => {
    try {
      return await api(path, { method, body: { version: found.version, decisions } });
    } catch (error) {
      if (error.status === 413) {
        error.message += "; use Download and save the file yourself, or raise BOT_MAX_BODY_BYTES";
      }
      throw error;
    }
  };
  startDraftsReview(summary, {
    make: async (decisions) => {
      const made = await send("POST", "/v1/admin/bootstrap/made", decisions);
      return { text: made.yaml, count: made.intents };
    },
    save: async (decisions) => {
      const saved = await send("PUT", "/v1/admin/bootstrap/reviewed", decisions);
      return `Saved ${saved.intents} intents to ${saved.saved_to}. Next: ${saved.next}.`;
    },
  });
})();

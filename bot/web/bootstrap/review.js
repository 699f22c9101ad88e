// The drafted-intents review page: a decision per draft (accept, merge, drop), a rename, and the reviewed
// drafts.yaml made from them. Customer text is only ever set as textContent. Two hosts start it:
// - review.html, the file `bot bootstrap` writes: the drafts are embedded (#drafts-data) and no request
//   leaves the page (its CSP says so); the reviewed file is made here (yaml() below) as a download;
// - /review/bootstrap on `bot serve` (served.js): the drafts come from the server, and `server.make` /
//   `server.save` send only the decisions; the server makes the file with bot bootstrap's own writer and
//   saves it into the drafts folder (never loaded live).
// Any change to a decision or a name takes the made file away (text, Download, Save): nothing made from
// earlier decisions can be downloaded or saved.
"use strict";
function startDraftsReview(data, server) {
  const drafts = data.drafts;
  const NAME = /^[a-z0-9_]+$/;
  const state = drafts.map((d) => ({ decision: "", name: d.name, into: "" }));
  const rows = document.getElementById("rows");
  const saveButton = document.getElementById("save");
  let made = 0; // bumped by every change: a file made (or being made) for an older count is not shown

  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    Object.assign(node, props);
    for (const child of children) node.append(child);
    return node;
  }

  function percent(share) {
    return `${Math.round(share * 1000) / 10}%`;
  }

  function decisionCell(index) {
    const choice = el("select", { className: "decision", ariaLabel: `Decision for ${drafts[index].name}` });
    for (const [value, label] of [["", "Decide…"], ["accept", "Accept"], ["merge", "Merge into…"], ["drop", "Drop"]]) {
      choice.append(el("option", { value, textContent: label }));
    }
    const into = el("select", { className: "merge-into", hidden: true, ariaLabel: `Merge ${drafts[index].name} into` });
    into.append(el("option", { value: "", textContent: "which draft?" }));
    drafts.forEach((other, at) => {
      if (at !== index) into.append(el("option", { value: String(at), textContent: other.name }));
    });
    choice.addEventListener("change", () => {
      state[index].decision = choice.value;
      into.hidden = choice.value !== "merge";
      update(index);
      stale();
    });
    into.addEventListener("change", () => {
      state[index].into = into.value;
      update(index);
      stale();
    });
    return el("td", {}, choice, into);
  }

  function nameCell(index) {
    const input = el("input", { className: "name", value: state[index].name, ariaLabel: "Intent name" });
    const problem = el("span", { className: "problem", hidden: true });
    input.addEventListener("input", () => {
      state[index].name = input.value.trim();
      const ok = NAME.test(state[index].name);
      input.classList.toggle("bad", !ok);
      problem.hidden = ok;
      problem.textContent = ok ? "" : "lower-case letters, digits and _ only";
      stale();
    });
    return el("td", {}, input, problem);
  }

  function row(draft, index) {
    const purity = el("td", { className: "num" });
    purity.append(el("span", {
      className: draft.mean_similarity < 0.75 ? "low" : "",
      textContent: `${draft.mean_similarity.toFixed(2)} mean`,
    }));
    purity.append(el("br"), `${percent(draft.tight_share)} within ${data.tight}`);
    const asks = el("td", { className: "asks" }, el("div", { textContent: draft.description }));
    asks.append(el("ul", {}, ...draft.examples.map((text) => el("li", { textContent: text }))));
    const answer = el("td", { className: "answer", textContent: draft.answer || "none: hands off to a person" });
    const tr = el("tr", {},
      decisionCell(index),
      nameCell(index),
      el("td", { className: "num", textContent: `${draft.size.toLocaleString("en")} (${percent(draft.share)})` }),
      purity, asks, answer);
    tr.dataset.index = String(index);
    return tr;
  }

  function update(index) {
    rows.children[index].dataset.decision = state[index].decision;
    const count = (what) => state.filter((s) => s.decision === what).length;
    document.getElementById("counts").textContent =
      `${count("accept")} accepted · ${count("merge")} merged · ${count("drop")} dropped · ` +
      `${count("")} undecided of ${drafts.length}`;
  }

  // where a draft's examples end up: the accepted draft at the end of its merges, or an error
  function target(index) {
    const seen = new Set();
    let at = index;
    while (state[at].decision === "merge") {
      if (seen.has(at) || state[at].into === "") {
        return { error: `'${drafts[index].name}' is merged, but into no accepted draft` };
      }
      seen.add(at);
      at = Number(state[at].into);
    }
    if (state[at].decision !== "accept") {
      return { error: `'${drafts[index].name}' is merged into '${drafts[at].name}', which is not accepted` };
    }
    return { at };
  }

  function reviewed() {
    const examples = new Map();
    const merged = new Map();
    const problems = [];
    state.forEach((s, index) => {
      if (s.decision === "accept") examples.set(index, [...drafts[index].examples]);
    });
    state.forEach((s, index) => {
      if (s.decision !== "merge") return;
      const found = target(index);
      if (found.error) return problems.push(found.error);
      examples.get(found.at).push(...drafts[index].examples);
      merged.set(found.at, [...(merged.get(found.at) || []), index]);
    });
    const names = new Map();
    for (const index of examples.keys()) {
      const name = state[index].name;
      if (!NAME.test(name)) problems.push(`'${name}' is not a valid name (lower-case letters, digits and _)`);
      if (names.has(name)) problems.push(`two accepted drafts are named '${name}'; rename or merge one`);
      names.set(name, index);
    }
    if (!examples.size && !problems.length) problems.push("no draft is accepted yet");
    return { examples, merged, problems };
  }

  // a JSON string, which YAML reads as a double-quoted scalar, with what Python's str.isprintable refuses
  // (controls, format and separator characters but the space: DEL and C1 among them, which YAML refuses
  // raw) escaped, as bootstrap_folder._quote writes it
  function quote(text) {
    return JSON.stringify(text).replace(/[\p{C}\p{Z}]/gu, (ch) => {
      if (ch === " ") return ch;
      const code = ch.codePointAt(0);
      return code > 0xffff ? `\\U${code.toString(16).padStart(8, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
    });
  }

  function yaml(found) {
    const lines = [`# Intents reviewed on the drafted-intents page (${data.source}).`];
    // the history's messages in no kept draft (never drafted, dropped or undecided) stand for the traffic the
    // folder does not cover; its self-calibration plans for that share (as bot bootstrap's drafts.yaml does)
    if (data.messages) {
      let covered = 0;
      for (const [index] of found.examples) {
        covered += drafts[index].size + (found.merged.get(index) || []).reduce((sum, at) => sum + drafts[at].size, 0);
      }
      const uncovered = Math.max(0, data.messages - covered);
      const share = Math.min(0.5, Math.round((uncovered / data.messages) * 100) / 100);
      lines.push(
        `# ${uncovered} of the ${data.messages} messages in the history are in no kept draft: as much of the traffic is likely not covered`,
        `off_topic_share: ${share}`,
      );
    }
    lines.push("intents:");
    for (const [index, examples] of found.examples) {
      const draft = drafts[index];
      const joined = (found.merged.get(index) || []).map((at) => drafts[at]);
      const size = draft.size + joined.reduce((sum, d) => sum + d.size, 0);
      const also = joined.length ? `; merged: ${joined.map((d) => d.name).join(", ")}` : "";
      lines.push(`  # ${size} messages; purity estimate of the draft: mean similarity ${draft.mean_similarity.toFixed(2)}${also}`);
      lines.push(`  - name: ${state[index].name}`, `    description: ${quote(draft.description)}`, "    examples:");
      for (const text of [...new Set(examples)].slice(0, 200)) lines.push(`      - ${quote(text)}`);
      if (draft.answer_template) lines.push(`    answer: ${quote(draft.answer_template)}`);
      lines.push("    tags: [drafted]", "");
    }
    return lines.join("\n");
  }

  // the decisions as the server takes them: decided drafts only, by their drafted names
  function decisions() {
    const sent = [];
    state.forEach((s, index) => {
      if (!s.decision) return;
      const one = { draft: drafts[index].name, decision: s.decision };
      if (s.decision === "accept" && s.name !== drafts[index].name) one.name = s.name;
      if (s.decision === "merge" && s.into !== "") one.into = drafts[Number(s.into)].name;
      sent.push(one);
    });
    return sent;
  }

  function show(text, className) {
    const note = document.getElementById("result-note");
    note.textContent = text;
    note.className = className;
  }

  function stale() {
    made += 1;
    document.getElementById("result").hidden = true;
    document.getElementById("download").hidden = true;
    if (saveButton) saveButton.hidden = true;
    show("", "");
  }

  async function make() {
    stale();
    const mine = made;
    const found = reviewed();
    if (found.problems.length) return show(`Not made: ${found.problems.join("; ")}.`, "problem");
    let text;
    let count;
    if (server) {
      show("Making…", "");
      try {
        ({ text, count } = await server.make(decisions()));
      } catch (error) {
        if (mine === made) show(`Not made: ${error.message}`, "problem");
        return;
      }
      if (mine !== made) return; // a decision changed while the server made it
    } else {
      text = yaml(found);
      count = found.examples.size;
    }
    const result = document.getElementById("result");
    const download = document.getElementById("download");
    result.value = text;
    result.hidden = false;
    const undecided = state.filter((s) => s.decision === "").length;
    show(`${count} intents` +
      (undecided ? `; ${undecided} undecided drafts are left out` : "") +
      (server ? ". Save it into the drafts folder, then run bot check." : ". Save it as drafts.yaml in the folder, then run bot check."), "");
    download.href = URL.createObjectURL(new Blob([text], { type: "text/yaml" }));
    download.hidden = false;
    if (server && saveButton) saveButton.hidden = false;
  }

  // sends the decisions of now, not the text shown: the server makes the file again from them (and any
  // change since Make hid this button)
  async function saveMade() {
    saveButton.disabled = true;
    try {
      show(await server.save(decisions()), "");
    } catch (error) {
      show(`Not saved: ${error.message}`, "problem");
    } finally {
      saveButton.disabled = false;
    }
  }

  drafts.forEach((draft, index) => rows.append(row(draft, index)));
  drafts.forEach((_, index) => update(index));
  document.getElementById("accept-rest").addEventListener("click", () => {
    rows.querySelectorAll("select.decision").forEach((choice, index) => {
      if (state[index].decision === "") {
        choice.value = "accept";
        choice.dispatchEvent(new Event("change"));
      }
    });
  });
  document.getElementById("make").addEventListener("click", make);
  if (server && saveButton) saveButton.addEventListener("click", saveMade);
}

const embeddedDrafts = document.getElementById("drafts-data");
if (embeddedDrafts) startDraftsReview(JSON.parse(embeddedDrafts.textContent));

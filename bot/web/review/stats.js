// The stats page: KPIs, hand-drawn SVG charts (no chart library), confused pairs and discovered clusters.
"use strict";

const NS = "http://www.w3.org/2000/svg";

function s(tag, attrs, ...children) {
  const node = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// A whole-number gridline step of 1, 2 or 5 x 10^n giving at most five gridlines, and the axis top.
function countScale(value) {
  const rough = Math.max(value / 5, 1);
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * power).find((m) => m >= rough);
  const ticks = Math.max(Math.ceil(value / step), 1);
  return { max: step * ticks, ticks };
}

// Each chart is drawn at the width its card gives it (one SVG unit = one CSS pixel), so its 11-12 px labels
// stay 11-12 px on a phone: a fixed 1200-unit drawing scaled down to 360 px made them about 5 px.
function chart(width, height, label) {
  return s("svg", { viewBox: `0 0 ${width} ${height}`, width, height, class: "chart", role: "img", "aria-label": label });
}

const NARROW = 480; // below this width a chart stacks its labels instead of setting them beside the bars

// How many of `count` labels fit in `span` pixels at about `each` pixels a label: show every n-th.
function labelStep(count, span, each) {
  return Math.max(Math.ceil(count / Math.max(Math.floor(span / each), 1)), 1);
}

function yGrid(svg, { left, right, top, bottom, max, format, ticks = 4 }) {
  for (let i = 0; i <= ticks; i++) {
    const value = (max * i) / ticks;
    const y = bottom - ((bottom - top) * i) / ticks;
    svg.append(
      s("line", { x1: left, x2: right, y1: y, y2: y, class: "axis", "stroke-dasharray": i ? "3 3" : "" }),
      s("text", { x: left - 6, y: y + 4, "text-anchor": "end" }, format(value)),
    );
  }
}

function dailyChart(days, width) {
  const height = width < NARROW ? 200 : 240, left = 40, right = width - 8, top = 10, bottom = height - 26;
  const svg = chart(width, height, "Messages per day by route");
  const totals = days.map((d) => ROUTES.reduce((sum, r) => sum + d[r], 0));
  const { max, ticks } = countScale(Math.max(...totals, 1));
  yGrid(svg, { left, right, top, bottom, max, ticks, format: (v) => Math.round(v) });
  const band = (right - left) / days.length;
  const barWidth = Math.max(Math.min(band * 0.7, 40), 2);
  const labelEvery = labelStep(days.length, right - left, 64); // "Nov 23" is about 40 px
  days.forEach((day, i) => {
    const x = left + band * i + (band - barWidth) / 2;
    let y = bottom;
    for (const route of ROUTES) {
      const barHeight = ((bottom - top) * day[route]) / max;
      if (barHeight > 0) {
        y -= barHeight;
        svg.append(
          s("rect", { x, y, width: barWidth, height: barHeight, fill: ROUTE_COLORS[route] },
            s("title", {}, `${day.day}: ${day[route]} ${route}`)),
        );
      }
    }
    if (i % labelEvery === 0) {
      const date = new Date(`${day.day}T00:00:00Z`);
      const text = date.toLocaleDateString(undefined, { month: "short", day: "numeric", timeZone: "UTC" });
      svg.append(s("text", { x: x + barWidth / 2, y: height - 8, "text-anchor": "middle" }, text));
    }
  });
  const legend = h("div", { class: "legend" },
    ROUTES.map((r) => h("span", {}, h("i", { style: `background:${ROUTE_COLORS[r]}` }), r)));
  return [svg, legend];
}

function barList(rows, { label, color, width, format = (v) => v }) {
  if (!rows.length) return h("p", { class: "muted" }, "No data in this period.");
  if (width < NARROW) return stackedBarList(rows, { label, color, width, format });
  const rowHeight = 26, left = 190, right = width - 48;
  const height = rows.length * rowHeight + 4;
  const svg = chart(width, height, label);
  const max = Math.max(...rows.map((r) => r.value), 1);
  rows.forEach((row, i) => {
    const y = i * rowHeight + 4;
    const barWidth = ((right - left) * row.value) / max;
    svg.append(
      s("text", { x: left - 10, y: y + 14, "text-anchor": "end" }, row.name.length > 28 ? `${row.name.slice(0, 27)}…` : row.name),
      s("rect", { x: left, y: y + 3, width: Math.max(barWidth, 1), height: rowHeight - 10, rx: 3, fill: color },
        s("title", {}, `${row.name}: ${format(row.value)}`)),
      s("text", { x: left + barWidth + 6, y: y + 14 }, format(row.value)),
    );
  });
  return svg;
}

// A phone: each name on a line of its own above its bar, whole (beside the bar it was cut to a few letters).
function stackedBarList(rows, { label, color, width, format }) {
  const rowHeight = 36, left = 4, right = width - 44;
  const svg = chart(width, rows.length * rowHeight + 4, label);
  const max = Math.max(...rows.map((r) => r.value), 1);
  rows.forEach((row, i) => {
    const y = i * rowHeight + 4;
    const barWidth = ((right - left) * row.value) / max;
    svg.append(
      s("text", { x: left, y: y + 12 }, row.name),
      s("rect", { x: left, y: y + 17, width: Math.max(barWidth, 1), height: 12, rx: 3, fill: color },
        s("title", {}, `${row.name}: ${format(row.value)}`)),
      s("text", { x: left + barWidth + 6, y: y + 28 }, format(row.value)),
    );
  });
  return svg;
}

function histogram(bins, width) {
  const height = 220, left = 36, right = width - 8, top = 10, bottom = height - 26;
  const svg = chart(width, height, "Confidence histogram");
  const { max, ticks } = countScale(Math.max(...bins.map((b) => b.count), 1));
  yGrid(svg, { left, right, top, bottom, max, ticks, format: (v) => Math.round(v) });
  const band = (right - left) / bins.length;
  const labelEvery = labelStep(bins.length, right - left, 26);
  bins.forEach((bin, i) => {
    const barHeight = ((bottom - top) * bin.count) / max;
    // low confidence in the handoff colour, high in the answer colour: where the threshold bites shows
    const color = bin.high <= 0.5 ? ROUTE_COLORS.handoff : bin.high <= 0.75 ? ROUTE_COLORS.clarify : ROUTE_COLORS.answer;
    svg.append(
      s("rect", { x: left + band * i + 2, y: bottom - barHeight, width: band - 4, height: barHeight, rx: 2, fill: color, opacity: 0.85 },
        s("title", {}, `${bin.low.toFixed(1)}–${bin.high.toFixed(1)}: ${bin.count}`)),
      i % labelEvery ? null : s("text", { x: left + band * i, y: height - 8, "text-anchor": "middle" }, bin.low.toFixed(1)),
    );
  });
  svg.append(s("text", { x: right, y: height - 8, "text-anchor": "end" }, "1.0"));
  return svg;
}

function accuracyChart(weeks, width) {
  if (!weeks.length) return h("p", { class: "muted" }, "No reviewed decisions in this period yet.");
  const height = 220, left = 40, right = width - 8, top = 16, bottom = height - 26;
  const svg = chart(width, height, "Accuracy of reviewed decisions by week");
  yGrid(svg, { left, right, top, bottom, max: 1, format: (v) => `${Math.round(v * 100)}%` });
  const inset = 48; // room for the first and last week's labels
  const span = right - left - 2 * inset;
  const step = weeks.length > 1 ? span / (weeks.length - 1) : 0;
  const point = (w, i) => [left + inset + (weeks.length > 1 ? step * i : span / 2), bottom - (bottom - top) * w.accuracy];
  const path = weeks.map((w, i) => `${i ? "L" : "M"}${point(w, i).join(",")}`).join(" ");
  svg.append(s("path", { d: path, fill: "none", stroke: "#3b5bdb", "stroke-width": 2.5 }));
  const labelEvery = labelStep(weeks.length, span + 2 * inset, 84); // "Nov 23 (12)" is about 65 px
  weeks.forEach((week, i) => {
    const [x, y] = point(week, i);
    const label = new Date(`${week.week}T00:00:00Z`).toLocaleDateString(undefined, { month: "short", day: "numeric", timeZone: "UTC" });
    const labelled = (weeks.length - 1 - i) % labelEvery === 0; // the latest week always
    svg.append(
      s("circle", { cx: x, cy: y, r: 4.5, fill: "#fff", stroke: "#3b5bdb", "stroke-width": 2.5 },
        s("title", {}, `week of ${week.week}: ${week.correct}/${week.reviewed} correct`)),
      labelled ? s("text", { x, y: y - 10, "text-anchor": "middle" }, `${Math.round(week.accuracy * 100)}%`) : null,
      labelled ? s("text", { x, y: height - 8, "text-anchor": "middle" }, `${label} (${week.reviewed})`) : null,
    );
  });
  return svg;
}

function pairsTable(pairs) {
  if (!pairs.length) return h("p", { class: "muted" }, "No corrections yet: review some decisions.");
  const max = Math.max(...pairs.map((p) => p.count));
  return h("table", { class: "pairs" },
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Bot chose"), h("th", { scope: "col" }, "Analyst meant"), h("th", { scope: "col" }, "Reviews"))),
    h("tbody", {}, pairs.map((p) =>
      h("tr", {},
        h("td", {}, p.predicted || h("span", { class: "muted" }, "no intent")),
        h("td", {}, h("span", { class: "arrow", "aria-hidden": "true" }, "→"), p.meant, p.new_intent ? h("span", { class: "pill" }, " new") : null),
        // the bar is a share of its cell, never a fixed width: it stays inside the card at any size
        h("td", { class: "count-cell" }, h("span", { class: "pair-count" },
          h("span", { class: "bar pair-bar", "aria-hidden": "true" },
            h("span", { style: `width:${Math.max((p.count / max) * 100, 6).toFixed(1)}%` })),
          h("span", { class: "num" }, p.count))),
      ))),
  );
}

// Every message of a cluster is listed (a long list scrolls inside the card), a repeated text once with
// "×N", so the messages listed always add up to the size on the card.
function clusterMessages(c) {
  return h("ul", { class: "cluster-messages", style: "max-height:9.5em;overflow-y:auto", tabindex: "0", "aria-label": `Messages of ${c.name}` },
    c.messages.map((m, i) => h("li", {}, m, c.counts[i] > 1 ? h("span", { class: "muted" }, ` ×${c.counts[i]}`) : null)));
}

function clusterCards(data) {
  $("disc-caption").textContent =
    `${data.messages} message${data.messages === 1 ? "" : "s"} went to a person with no intent or knowledge passage to answer ${data.messages === 1 ? "it" : "them"} in this period; ` +
    `${data.clusters.length} group${data.clusters.length === 1 ? "" : "s"} of similar ones. Paste a draft under "intents:" in a YAML file, then review it.`;
  if (!data.clusters.length) return [h("p", { class: "muted" }, "No groups of similar unrouted messages yet.")];
  return data.clusters.map((c) =>
    h("article", { class: "cluster", "aria-label": `Cluster ${c.name}` },
      h("header", {}, h("h3", {}, c.name), h("span", { class: "pill bad" }, `${c.size} message${c.size === 1 ? "" : "s"}`)),
      h("p", { class: "muted" }, "Nearest intent: ",
        c.nearest_intent ? [h("strong", {}, c.nearest_intent), ` (confidence ${c.nearest_score.toFixed(2)})`] : "none"),
      clusterMessages(c),
      h("details", {},
        h("summary", {}, "Draft intent (YAML)"),
        h("pre", {}, c.yaml),
        h("button", { type: "button", class: "btn", onclick: () => navigator.clipboard.writeText(c.yaml).then(() => toast("Copied")) }, "Copy YAML")),
    ));
}

const $ = (id) => document.getElementById(id);

// Sentiment by topic (#32 item 3): the surges the server recorded (topic, day, share against the topic's
// own baseline, the most negative messages), then each topic's negative share day by day as small bars
// (a day without messages of the topic is left empty, not drawn as 0%; a surge's day is red).
function sparkline(topic, surgeDays) {
  const days = topic.per_day, width = 300, height = 28;
  const top = Math.max(0.2, ...days.map((d) => (d.messages ? d.negative / d.messages : 0)));
  const band = width / days.length;
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none", class: "spark", role: "img", "aria-label": `Negative share of ${topic.intent} by day` });
  days.forEach((d, i) => {
    if (!d.messages) return;
    const share = d.negative / d.messages;
    const barHeight = Math.max((height - 2) * (share / top), 1);
    svg.append(s("rect", { x: band * i + band * 0.15, y: height - barHeight, width: band * 0.7, height: barHeight, fill: surgeDays.has(d.day) ? "#e03131" : "#f08c00" },
      s("title", {}, `${d.day}: ${d.negative} of ${d.messages} negative (${pct(share)})`)));
  });
  return svg;
}

function surgeCards(surges, baselineDays) {
  return surges.map((surge) =>
    h("article", { class: "surge", "data-intent": surge.intent, "aria-label": `Surge in ${surge.intent}` },
      h("h3", {}, `${surge.intent}: ${pct(surge.share)} negative, found on ${surge.day} `, h("span", { class: "pill bad" }, surge.active ? "today" : "earlier")),
      h("p", { class: "muted" }, `${surge.negative} of ${surge.messages} messages up to ${surge.found_at.slice(11, 16)} UTC, against ${pct(surge.baseline_share)} over the ${baselineDays} days before.`),
      h("ul", { "aria-label": `Most negative messages of ${surge.intent}` }, surge.samples.map((text) => h("li", {}, text)))));
}

function topicsTable(topics, surges) {
  if (!topics.length) return h("p", { class: "muted" }, "No message with a topic and a tone score in this period.");
  return h("table", { class: "pairs" },
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Intent"), h("th", { scope: "col" }, "Negative"), h("th", { scope: "col" }, "By day"))),
    h("tbody", {}, topics.map((t) =>
      h("tr", { "data-intent": t.intent },
        h("td", {}, t.intent),
        h("td", { class: "num" }, `${pct(t.share, 1)} (${t.negative} of ${t.messages})`),
        h("td", { class: "spark-cell" }, sparkline(t, new Set(surges.filter((x) => x.intent === t.intent).map((x) => x.day))))))));
}

function showSentiment(sentiment) {
  $("sentiment-caption").textContent =
    `A message counts as negative when its anger score is above ${decimal(sentiment.threshold)}: ` +
    `${sentiment.negative} of ${sentiment.scored} messages with a topic in this period. ` +
    `A surge is a topic's last ${sentiment.windows.join(" or ")} hours well above the topic's own share over the ${sentiment.baseline_days} days before.`;
  $("sentiment-surges").replaceChildren(...surgeCards(sentiment.surges, sentiment.baseline_days));
  $("sentiment-topics").replaceChildren(topicsTable(sentiment.topics, sentiment.surges));
}

// A threshold or margin with two decimals, three when it has them (0.62, 0.025).
function decimal(value) {
  return Math.round(value * 1000) % 10 ? value.toFixed(3) : value.toFixed(2);
}

function sourceWords(point) {
  if (point.source === "self") return "Self-calibration from the intents folder";
  if (point.source === "labelled") return point.data ? `Labelled file ${point.data}` : "Labelled file";
  if (point.source === "reviews") return "Analysts' reviews";
  return "Defaults";
}

function expectedWords(point) {
  if (point.source === "defaults") return "No promise for these intents: the settings' defaults were fitted on BANKING77.";
  if (point.expected_precision === null) return "This calibration recorded no expected figures.";
  // the lower bound is the promise; a folder with few examples cannot vouch for its point estimate (#27)
  const low = point.expected_precision_low;
  let text = low != null
    ? `Precision at least ${low.toFixed(2)} (${point.expected_precision.toFixed(2)} expected)`
    : `Expected ${point.expected_precision.toFixed(2)} precision`;
  if (point.expected_coverage !== null) text += ` at ${pct(point.expected_coverage)} coverage`;
  if (point.oos_rate !== null) text += `, planning for ${pct(point.oos_rate)} out-of-scope traffic`;
  if (point.target_precision !== null) text += ` (target ${point.target_precision.toFixed(2)})`;
  if (point.expected_clarify) text += `; asks which intent is meant on ${pct(point.expected_clarify)} of messages`;
  return `${text}.`;
}

function measuredWords(point) {
  if (point.reviewed_accuracy === null) return "No reviewed decisions in this period yet.";
  const n = point.reviewed;
  return `${pct(point.reviewed_accuracy)} of ${n} reviewed decision${n === 1 ? "" : "s"} judged correct in this period (all routes).`;
}

// Every value goes in as text (textContent), never as markup.
function showOperatingPoint(point) {
  $("operating-point").dataset.source = point.source;
  $("op-source").textContent = sourceWords(point);
  $("op-threshold").textContent = decimal(point.threshold);
  $("op-margin").textContent = decimal(point.margin);
  $("op-expected").textContent = expectedWords(point);
  $("op-measured").textContent = measuredWords(point);
  const ids = [`calibration ${point.calibration_id}`, `intents ${point.intents_version}`, `model ${point.model_id}`];
  if (point.data) ids.push(`data ${point.data}`);
  $("op-ids").textContent = ids.join(" · ");
}

// The off-topic share the traffic shows against the one the operating point assumes (#31 item 3), and
// a button (admin key) that writes the estimate into the folder and reloads it.
function offTopicDetail(found) {
  const parts = [];
  if (found.enough) {
    const how = { general: "against the folder's own examples and the shipped off-topic messages", sibling: "against the folder's own examples" }[found.reference] || "free two-part mixture";
    parts.push(`${found.messages.toLocaleString()} messages, ${how}`);
  }
  if (found.small_talk_share) parts.push(`small talk ${pct(found.small_talk_share)} (counted in scope)`);
  if (found.reviewed_share !== null) {
    parts.push(`reviewed: ${found.reviewed_off_topic} of ${found.reviewed} off-topic (${pct(found.reviewed_share)}, ${pct(found.reviewed_low)}–${pct(found.reviewed_high)})`);
  }
  parts.push(`assumed share from ${found.configured_by === "folder" ? "the folder's off_topic_share" : "BOT_OOS_RATE"}`);
  return parts.join(" · ");
}

function showOffTopic(found) {
  const card = $("off-topic");
  card.dataset.off = String(found.off);
  const advice = found.advice.charAt(0).toUpperCase() + found.advice.slice(1);
  $("off-topic-advice").textContent = `${advice}.`;
  $("off-topic-detail").textContent = offTopicDetail(found);
  const actions = $("off-topic-actions");
  actions.hidden = !(found.off && found.suggested !== null);
  if (actions.hidden) return;
  $("off-topic-command").textContent = found.command;
  const button = $("off-topic-set");
  // a calibration.yaml decides the operating point: the folder key would not change it, so no button
  button.hidden = found.refit !== "folder";
  button.textContent = `Refit at ${pct(found.suggested)} off-topic`;
  button.onclick = async () => {
    if (!confirm(`Write off_topic_share: ${found.suggested} into the intents folder and reload it? This needs an admin key.`)) return;
    button.disabled = true;
    try {
      const done = await api("/v1/off-topic-share", { method: "POST", body: { share: found.suggested } });
      toast(`Wrote off_topic_share: ${done.share} into ${done.file}; version ${done.version} is live.`);
      await load();
    } catch (error) {
      toast(error.message, true);
    } finally {
      button.disabled = false;
    }
  };
}

function kpi(label, value, sub) {
  return h("div", { class: "kpi" }, h("div", { class: "label" }, label), h("div", { class: "value" }, value), h("div", { class: "sub" }, sub));
}

// The shadow run's comparison on the same messages; starting, stopping and promoting live on the
// versions page (they change what customers get, so they sit next to the versions they act on).
function showShadow(data) {
  const run = data.run;
  const found = data.comparison;
  const link = h("a", { href: "/review/versions#shadow" }, "Versions");
  $("shadow-caption").replaceChildren(
    run
      ? `Shadowing ${run.candidate}: ${run.decided} messages decided by both, ${run.dropped} skipped (queue full). Promote or stop it on `
      : "No shadow run. Start one on ",
    link,
    run ? "." : ": a candidate version routes every live message too, and customers only ever see live.",
  );
  if (!found || !found.messages) {
    $("shadow-kpis").replaceChildren();
    $("shadow-disagreements").replaceChildren();
    return;
  }
  $("shadow-kpis").replaceChildren(
    kpi("Agreement", pct(found.agreement, 1), `${found.messages.toLocaleString()} messages both decided`),
    kpi("Live correct", pct(found.live_accuracy), `of ${found.reviewed} reviewed`),
    kpi("Shadow correct", pct(found.shadow_accuracy), `of ${found.reviewed} reviewed`),
  );
  $("shadow-disagreements").replaceChildren(
    h("h3", { class: "label" }, "Most frequent disagreements"),
    h(
      "ul",
      { class: "shadow-moves" },
      found.disagreements.map((d) => h("li", {}, h("span", {}, `live ${d.live} → shadow ${d.shadow}`), h("span", { class: "pill" }, `${d.count}`))),
    ),
  );
}

async function load() {
  const days = $("days").value;
  const stats = await api(`/v1/stats?days=${days}`);
  const fmt = (iso) => new Date(iso).toLocaleDateString(undefined, { month: "short", day: "numeric", year: "numeric", timeZone: "UTC" });
  $("range").textContent = `${fmt(stats.since)} – ${fmt(new Date(Date.parse(stats.until) - 1).toISOString())} (UTC)`;
  showOperatingPoint(stats.operating_point);
  showOffTopic(stats.off_topic);
  $("kpis").replaceChildren(
    kpi("Messages", stats.total.toLocaleString(), `${(stats.total / stats.days).toFixed(1)} a day`),
    kpi("Answered", pct(stats.answer_rate), `${stats.routes.answer} by an intent · clarify ${pct(stats.clarify_rate)}`),
    kpi("Fallback (retrieve)", pct(stats.fallback_rate), `${stats.routes.retrieve} answered from the knowledge base`),
    kpi("Handoff", pct(stats.handoff_rate), `${stats.routes.handoff} sent to a person`),
    kpi("Review accuracy", pct(stats.review_accuracy), `${stats.reviewed} decision${stats.reviewed === 1 ? "" : "s"} reviewed`),
  );
  drawCharts(stats);
  $("pairs").replaceChildren(pairsTable(stats.confused_pairs));
  showSentiment(stats.sentiment);
  showShadow(await api("/v1/shadow"));
  $("clusters").replaceChildren(h("p", { class: "muted" }, "Clustering…"));
  const found = await api(`/v1/discovery?days=${days}`);
  $("clusters").replaceChildren(...clusterCards(found));
  document.body.dataset.ready = "true"; // page tests wait for this
}

// The charts, each at its card's width; drawn again when a resize changes that width.
let drawn = null;
function drawCharts(stats) {
  const width = (id) => Math.max(Math.floor($(id).clientWidth), 200);
  drawn = { stats, width: width("chart-daily") };
  $("chart-daily").replaceChildren(...dailyChart(stats.per_day, width("chart-daily")));
  $("chart-intents").replaceChildren(
    barList(stats.top_intents.map((i) => ({ name: i.intent, value: i.count })), { label: "Top intents", color: "#5c7cfa", width: width("chart-intents") }),
  );
  $("chart-confidence").replaceChildren(histogram(stats.confidence_histogram, width("chart-confidence")));
  $("chart-accuracy").replaceChildren(accuracyChart(stats.weekly_accuracy, width("chart-accuracy")));
}

let resizeTimer = null;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => {
    if (drawn && Math.floor($("chart-daily").clientWidth) !== drawn.width) drawCharts(drawn.stats);
  }, 150);
});

setUpKeyButton();
watchModel();
$("days").addEventListener("change", () => {
  delete document.body.dataset.ready;
  load().catch((error) => toast(error.message, true));
});
load().catch((error) => toast(error.message, true));

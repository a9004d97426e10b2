// The panels beside the list: a message's checks, the release form and the chaos switch. Each calls its own
// routes and says so plainly when the gateway does not offer them.

import { announce, bytes, el, exactTime, linksChecked, messageUrl, plural, relativeTime, request, urls } from "./api.js";

function unavailable(error, what) {
  return el("p", { className: "notice" }, error.status === 404 ? `${what} are not available on this gateway.`
    : `${what} could not be loaded: ${error.message}`);
}

function platformDetails(issue) {
  const platforms = issue.platforms || [];
  if (!platforms.length && !issue.note) return null;
  const items = platforms.map((p) => el("li", {}, `${p.family}, ${p.platform}: ${p.support}`,
    ...(p.notes || []).map((note) => el("span", { className: "note" }, ` (${note})`))));
  return el("details", { className: "platforms" },
    el("summary", {}, plural(platforms.length, "platform")),
    issue.note ? el("p", { className: "note" }, issue.note) : null, el("ul", {}, ...items));
}

function featureCell(issue) {
  const name = issue.url ? el("a", { href: issue.url, rel: "noreferrer", target: "_blank" }, issue.feature)
    : el("code", {}, issue.feature);
  const lines = (issue.lines || []).length
    ? el("div", { className: "lines" }, `${issue.lines.length === 1 ? "line" : "lines"} ${issue.lines.join(", ")}`)
    : null;
  return el("td", {}, name, lines, platformDetails(issue));
}

function issuesTable(issues) {
  const rows = issues.map((issue) => el("tr", {}, featureCell(issue), el("td", {}, issue.kind),
    el("td", {}, (issue.unsupported_in || []).join(", ")), el("td", {}, (issue.partial_in || []).join(", "))));
  return el("table", { className: "grid", id: "compat-issues" },
    el("thead", {}, el("tr", {}, ...["Feature", "Kind", "Unsupported in", "Partly in"].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, ...rows));
}

function linkResults(results) {
  const rows = results.map((link) => el("tr", {},
    el("td", {}, el("code", {}, link.url)),
    el("td", { className: link.error || (link.status && link.status >= 400) ? "bad" : "good" },
      link.error ? `error: ${link.error}` : String(link.status)),
    el("td", {}, (link.redirects || []).join(" → ")),
    el("td", {}, link.elapsed_ms === undefined ? "" : `${link.elapsed_ms} ms`)));
  return el("table", { className: "grid", id: "link-results" },
    el("thead", {}, el("tr", {}, ...["Link", "Status", "Redirects", "Time"].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, ...rows));
}

function checksView(id, checks) {
  const compat = checks.html_compatibility || { issues: [] };
  const size = checks.size || {};
  const dataset = compat.dataset;
  const warnings = el("ul", { id: "check-warnings" }, ...(checks.warnings || []).map((w) =>
    el("li", {}, el("code", {}, w.code), ` ${w.message}`)));
  const results = el("div", { id: "link-check" });
  // The checks list the first few hundred links and count them all in link_count. A link check refuses a message
  // of more links than it fetches at once unless they are named, so the button names the first that many and
  // says how many it left.
  const count = checks.link_count ?? (checks.links || []).length;
  const batch = (checks.links || []).slice(0, linksChecked).map((link) => link.url);
  const button = el("button", { type: "button", id: "check-links" },
    batch.length < count ? `Check the first ${batch.length} of ${count} links` : `Check ${plural(count, "link")}`);
  const unchecked = count > batch.length ? el("p", { id: "links-unchecked", className: "meta" },
    `${count - batch.length} more not checked: one check fetches ${linksChecked} links.`) : null;
  button.addEventListener("click", async () => {
    button.disabled = true;
    results.replaceChildren(el("p", {}, "Checking…"));
    try {
      const answer = await request(messageUrl(id, "/links/check"), { method: "POST", json: { urls: batch } });
      results.replaceChildren(linkResults(answer.body.links || []), unchecked);
    } catch (error) {
      results.replaceChildren(unavailable(error, "Link checks"));
    }
    button.disabled = false;
  });
  return el("div", { className: "checks" },
    el("p", { className: "score" }, "Score ", el("strong", { id: "check-score" }, String(checks.score)), " / 100"),
    el("h3", {}, "Size"),
    el("p", { id: "check-size" }, `Message ${bytes(size.message_bytes || 0)}, HTML ${bytes(size.html_bytes || 0)}`,
      ` of Gmail's ${bytes(size.gmail_clip_bytes || 102400)} clipping limit: `,
      el("strong", {}, size.clipped ? "Gmail clips it" : "not clipped")),
    el("h3", {}, "Warnings"), (checks.warnings || []).length ? warnings : el("p", {}, "None."),
    el("h3", {}, "HTML compatibility"),
    dataset ? el("p", { className: "meta" }, "From ", el("a", { href: dataset.url, rel: "noreferrer" },
      `${dataset.name} ${dataset.version || ""}`), ` (${dataset.licence})`) : null,
    compat.issues.length ? issuesTable(compat.issues) : el("p", {}, "No unsupported feature found."),
    el("h3", {}, "Links"), button, results);
}

export function renderChecks(id) {
  const box = el("div", { id: "checks" }, el("p", {}, "Checking…"));
  request(messageUrl(id, "/checks"))
    .then((answer) => box.replaceChildren(checksView(id, answer.body)))
    .catch((error) => box.replaceChildren(unavailable(error, "Checks")));
  return box;
}

let releasing = null;

export function openRelease(id) {
  releasing = id;
  document.getElementById("release-result").textContent = "";
  document.getElementById("release-dialog").showModal();
}

async function release(event) {
  event.preventDefault();
  const form = event.target;
  const result = document.getElementById("release-result");
  const json = { to: form.elements.to.value };
  if (form.elements.host.value) json.host = form.elements.host.value;
  if (form.elements.port.value) json.port = Number(form.elements.port.value);
  if (form.elements.starttls.checked) json.starttls = true;
  result.textContent = "Sending…";
  try {
    const answer = await request(messageUrl(releasing, "/release"), { method: "POST", json });
    result.textContent = `Released: ${answer.body.reply || "accepted"}`;
  } catch (error) {
    result.textContent = error.status === 404 && !error.message.includes("release")
      ? "Release is not available on this gateway." : `Not released: ${error.message}`;
  }
}

function chaosBanner(chaos) {
  const banner = document.getElementById("chaos-on");
  banner.hidden = !chaos.enabled;
  const failure = chaos.reply ? `fail with ${chaos.reply}` : "are delayed";
  banner.textContent = chaos.enabled ? `Chaos is on: ${chaos.percent}% of sends${chaos.recipients
    ? ` to ${chaos.recipients}` : ""} ${failure}${chaos.delay_ms ? ` after ${chaos.delay_ms} ms` : ""}.` : "";
  document.getElementById("chaos-button").classList.toggle("alarm", Boolean(chaos.enabled));
}

// The chaos form's fields and Save button wait while the switch's state is on its way: filled in when it
// arrives, they would otherwise overwrite what was typed meanwhile (and Save would send the defaults).
const CHAOS_FIELDS = ["enabled", "reply", "percent", "recipients", "delay_ms"];
let chaosLoads = 0;
let chaosAvailable = true;

function chaosFormWaits() {
  const form = document.getElementById("chaos-form");
  const waiting = chaosLoads > 0;
  for (const name of CHAOS_FIELDS) form.elements[name].disabled = waiting;
  form.setAttribute("aria-busy", String(waiting));
  document.getElementById("chaos-save").disabled = waiting || !chaosAvailable;
}

function showChaos(chaos) {
  const form = document.getElementById("chaos-form");
  form.elements.enabled.checked = Boolean(chaos.enabled);
  form.elements.reply.value = chaos.reply || "";
  const error = document.getElementById("chaos-error");
  error.textContent = chaos.available === false ? `The switch cannot be turned on here: it makes only the `
    + `development backends fail, outside production (this gateway sends with ${chaos.backend}).` : "";
  chaosAvailable = chaos.available !== false;
  chaosFormWaits();
  form.elements.percent.value = chaos.percent ?? 100;
  form.elements.recipients.value = chaos.recipients || "";
  form.elements.delay_ms.value = chaos.delay_ms || 0;
  const recent = chaos.recent || [];
  document.getElementById("chaos-recent-empty").hidden = recent.length > 0;
  document.getElementById("chaos-recent").replaceChildren(...recent.map((failure) =>
    el("li", {}, el("time", { datetime: failure.at, title: exactTime(failure.at) }, relativeTime(failure.at)), " ",
      el("code", {}, failure.reply), ` to ${[].concat(failure.recipients || []).join(", ")}`)));
  chaosBanner(chaos);
}

export async function loadChaos() {
  chaosLoads += 1;
  chaosFormWaits();
  try {
    const chaos = (await request(urls.chaos)).body;
    chaosLoads -= 1;
    showChaos(chaos);
    return true;
  } catch (error) {
    chaosLoads -= 1;
    chaosFormWaits();
    document.getElementById("chaos-error").textContent = error.status === 404
      ? "Chaos is not available on this gateway." : error.message;
    return false;
  }
}

async function saveChaos(event) {
  event.preventDefault();
  const form = event.target;
  const json = {
    enabled: form.elements.enabled.checked, reply: form.elements.reply.value || null,
    percent: Number(form.elements.percent.value), recipients: form.elements.recipients.value || null,
    delay_ms: Number(form.elements.delay_ms.value),
  };
  const error = document.getElementById("chaos-error");
  try {
    const answer = await request(urls.chaos, { method: "PUT", json });
    error.textContent = "";
    if (answer && answer.body) showChaos(answer.body);
    else await loadChaos();
    announce(json.enabled ? "Chaos is on." : "Chaos is off.");
  } catch (failure) {
    error.textContent = failure.message;
  }
}

export function wirePanels() {
  document.getElementById("release-form").addEventListener("submit", release);
  document.getElementById("chaos-form").addEventListener("submit", saveChaos);
  document.getElementById("chaos-button").addEventListener("click", async () => {
    document.getElementById("chaos-dialog").showModal();
    await loadChaos();
  });
  for (const button of document.querySelectorAll("dialog .close-dialog")) {
    button.addEventListener("click", () => button.closest("dialog").close());
  }
}

// The message list: one page of summaries at a time (the DOM never holds more than a page, however many
// messages are kept), search as you type with at most one request in flight, selection and paging.

import { announce, el, exactTime, plural, relativeTime, request, RequestFailed, urls } from "./api.js";

export const PAGE_SIZE = 50;
const SEARCH_DELAY_MS = 100;  // a pause in typing, not each keystroke; one request runs at a time anyway

export const state = {
  query: "", start: 0, owner: "", listing: null, current: null, openId: null, selected: new Set(), etag: null,
};
const listeners = { open: () => {} };

export function onOpen(callback) {
  listeners.open = callback;
}

function listUrl() {
  const params = new URLSearchParams({ limit: String(PAGE_SIZE), start: String(state.start) });
  if (state.query) params.set("query", state.query);
  if (state.owner) params.set("owner", state.owner);
  return `${urls.messages}?${params}`;
}

export function ownerParameter() {
  return state.owner ? `owner=${encodeURIComponent(state.owner)}` : "";
}

// The display name of "Name <address>", else the whole of it. Read by hand: a regular expression tried each
// space of a name against the rest, and a sender's name of 30 KB of spaces froze the page for seconds a redraw.
function senderName(address) {
  const text = (address || "").trim();
  const open = text.indexOf("<");
  if (open === -1 || text.indexOf(">") !== text.length - 1) return address || "(no sender)";
  let name = text.slice(0, open).trim();
  if (name.startsWith('"')) name = name.slice(1);
  if (name.endsWith('"')) name = name.slice(0, -1);
  return name && !name.includes('"') ? name : address;
}

const SVG = "http://www.w3.org/2000/svg";

// Drawn, not an emoji: a machine without an emoji font would show a box.
function paperclip() {
  const icon = document.createElementNS(SVG, "svg");
  icon.setAttribute("viewBox", "0 0 16 16");
  icon.setAttribute("aria-hidden", "true");
  const path = document.createElementNS(SVG, "path");
  path.setAttribute("d", "M10.5 4.5v6a2.5 2.5 0 0 1-5 0V3.8a1.6 1.6 0 0 1 3.2 0v6.4a.7.7 0 0 1-1.4 0V5");
  icon.append(path);
  return icon;
}

function row(message) {
  const unread = message.read === false;
  const subject = message.subject || "(no subject)";
  const recipients = [...(message.to || []), ...(message.cc || [])].join(", ");
  const time = el("time", { datetime: message.date || "", title: message.date ? exactTime(message.date) : "" },
    message.date ? relativeTime(message.date) : "");
  const marks = el("span", { className: "marks" });
  if (message.attachment_count > 0) {
    marks.append(el("span", { className: "attachment-mark", title: plural(message.attachment_count, "attachment"),
      "aria-label": plural(message.attachment_count, "attachment"), role: "img" }, paperclip()));
  }
  for (const tag of message.tags || []) marks.append(el("span", { className: "tag" }, tag));
  const link = el("a", { href: `${urls.page}?id=${encodeURIComponent(message.id)}`, className: "open",
                         "data-id": message.id },
    el("span", { className: "from", title: message.from }, unread ? el("span", { className: "visually-hidden" },
      "Unread: ") : null, senderName(message.from)),
    time,
    el("span", { className: "to", title: recipients }, recipients ? `to ${recipients}` : ""),
    el("span", { className: "subject" }, subject),
    el("span", { className: "snippet" }, message.snippet || ""),
    marks);
  const box = el("input", { type: "checkbox", className: "pick", "aria-label": `Select “${subject}”`,
                            checked: state.selected.has(message.id) });
  const item = el("li", { className: unread ? "row unread" : "row", "data-id": message.id }, box, link);
  if (message.id === state.openId) link.setAttribute("aria-current", "true");
  if (message.id === state.current) item.classList.add("current");
  return item;
}

function retentionNotice(retention) {
  const notice = document.getElementById("retention");
  if (!retention || (!retention.dropped && !retention.dropped_note)) {
    notice.hidden = true;
    return;
  }
  const rules = [];
  if (retention.keep) rules.push(`the newest ${retention.keep}`);
  if (retention.max_age_seconds) rules.push(`messages younger than ${Math.round(retention.max_age_seconds / 60)} minutes`);
  notice.textContent = retention.dropped_note ||
    `${plural(retention.dropped, "older message")} dropped: this outbox keeps ${rules.join(" and ") || "a bounded number"}.`;
  notice.hidden = false;
}

function render(listing) {
  state.listing = listing;
  const rows = listing.messages.map(row);
  document.getElementById("messages").replaceChildren(...rows);
  const empty = document.getElementById("empty");
  empty.hidden = listing.messages.length > 0;
  empty.textContent = state.query ? "No message matches the search." : "No messages yet. This list updates by itself.";
  document.getElementById("count").textContent = plural(listing.total, "message");
  const first = listing.total === 0 ? 0 : listing.start + 1;
  document.getElementById("range").textContent =
    `${first}–${listing.start + listing.messages.length} of ${listing.total}`;
  document.getElementById("newer").disabled = listing.start === 0;
  document.getElementById("older").disabled = listing.start + listing.messages.length >= listing.total;
  retentionNotice(listing.retention);
  syncBulk();
}

function showSearchError(message) {
  const input = document.getElementById("search");
  document.getElementById("search-error").textContent = message;
  if (message) input.setAttribute("aria-invalid", "true");
  else input.removeAttribute("aria-invalid");
}

let inFlight = null;
let again = false;

// Fetches the list again; while one request is running, later calls make one more run after it, so typing
// fast costs one request at a time and the last text typed is always the one shown.
export function refresh() {
  if (inFlight) {
    again = true;
    return inFlight;
  }
  inFlight = (async () => {
    try {
      do {
        again = false;
        await fetchOnce();
      } while (again);
    } finally {
      inFlight = null;
    }
  })();
  return inFlight;
}

// Changes (read marks, deletions, bulk actions, clearing) go to the gateway one at a time, in the order the user
// made them, so the last one made is the last one the gateway applies. A list answer is asked for only once those
// sent have landed, and one that was on its way while a change was made is dropped for a fresh one: it may have
// been made before the change reached the gateway, and would put the old mark back on screen.
let changes = Promise.resolve();
let changesMade = 0;

export function change(send) {
  changesMade += 1;
  const done = changes.then(send);
  changes = done.catch(() => {});  // a refused change does not hold up the next one
  return done;
}

let shownUrl = null;

async function fetchOnce() {
  await changes;
  const made = changesMade;
  const url = listUrl();
  const headers = url === shownUrl && state.etag ? { "If-None-Match": state.etag } : {};
  try {
    const answer = await request(url, { headers });
    if (made !== changesMade) {
      again = true;
      return;
    }
    showSearchError("");
    if (answer.notModified) return;
    shownUrl = url;
    state.etag = answer.etag;
    render(answer.body);
  } catch (error) {
    if (error instanceof RequestFailed && error.status === 400) showSearchError(error.message);
    else if (error instanceof RequestFailed) announce(`The list could not be loaded: ${error.message}`);
    // a network error: the gateway restarting is normal in development; the next event or keystroke retries
  }
}

// Relative times age while the page stays open: "just now" becomes "5 minutes ago" without a request.
export function refreshTimes() {
  for (const time of document.querySelectorAll("#messages time[datetime]")) {
    if (time.dateTime) time.textContent = relativeTime(time.dateTime);
  }
}

export function rows() {
  return [...document.querySelectorAll("#messages > li")];
}

export function setCurrent(id, { focus = true } = {}) {
  state.current = id;
  for (const item of rows()) {
    const isCurrent = item.dataset.id === id;
    item.classList.toggle("current", isCurrent);
    if (isCurrent && focus) item.querySelector("a").focus();
  }
}

export function markOpen(id) {
  state.openId = id;
  for (const link of document.querySelectorAll("#messages a.open")) {
    if (link.dataset.id === id) link.setAttribute("aria-current", "true");
    else link.removeAttribute("aria-current");
  }
}

export function markRead(id, read) {
  const item = rows().find((candidate) => candidate.dataset.id === id);
  if (item) item.classList.toggle("unread", !read);
  const message = state.listing && state.listing.messages.find((m) => m.id === id);
  if (message) message.read = read;
}

export function summaryOf(id) {
  return state.listing ? state.listing.messages.find((m) => m.id === id) : undefined;
}

function syncBulk() {
  const visible = new Set(rows().map((item) => item.dataset.id));
  for (const id of [...state.selected]) if (!visible.has(id)) state.selected.delete(id);
  const none = state.selected.size === 0;
  for (const id of ["bulk-read", "bulk-unread", "bulk-delete"]) document.getElementById(id).disabled = none;
  const all = document.getElementById("select-all");
  all.checked = !none && state.selected.size === visible.size;
  all.indeterminate = !none && state.selected.size < visible.size;
}

async function bulk(action) {
  const ids = [...state.selected];
  try {
    await change(() => request(`${urls.messages}/bulk`, { method: "POST", json: { action, ids } }));
    if (action === "delete") state.selected.clear();
    announce(`${plural(ids.length, "message")} ${action === "delete" ? "deleted" : `marked ${action}`}.`);
  } catch (error) {
    announce(`Not done: ${error.message}`);
  }
  await refresh();
}

export function wireList() {
  const list = document.getElementById("messages");
  list.addEventListener("click", (event) => {
    const box = event.target.closest("input.pick");
    if (box) {
      const id = box.closest("li").dataset.id;
      if (box.checked) state.selected.add(id);
      else state.selected.delete(id);
      syncBulk();
      return;
    }
    const item = event.target.closest("li.row");
    if (!item || event.ctrlKey || event.metaKey || event.button !== 0) return;  // a new tab opens the link itself
    event.preventDefault();
    setCurrent(item.dataset.id, { focus: false });
    listeners.open(item.dataset.id);
  });
  list.addEventListener("focusin", (event) => {  // Tab onto a row: the keys act on it
    const item = event.target.closest("li.row");
    if (item && item.dataset.id !== state.current) setCurrent(item.dataset.id, { focus: false });
  });
  document.getElementById("select-all").addEventListener("change", (event) => {
    for (const item of rows()) {
      if (event.target.checked) state.selected.add(item.dataset.id);
      else state.selected.delete(item.dataset.id);
      item.querySelector("input.pick").checked = event.target.checked;
    }
    syncBulk();
  });
  document.getElementById("bulk-read").addEventListener("click", () => bulk("read"));
  document.getElementById("bulk-unread").addEventListener("click", () => bulk("unread"));
  document.getElementById("bulk-delete").addEventListener("click", () => bulk("delete"));
  document.getElementById("newer").addEventListener("click", () => page(-1));
  document.getElementById("older").addEventListener("click", () => page(1));
  wireSearch();
}

function page(direction) {
  state.start = Math.max(0, state.start + direction * PAGE_SIZE);
  refresh();
}

function wireSearch() {
  const input = document.getElementById("search");
  let timer = null;
  input.addEventListener("input", () => {
    window.clearTimeout(timer);
    timer = window.setTimeout(() => {
      if (input.value.trim() === state.query) return;
      state.query = input.value.trim();
      state.start = 0;
      refresh();
    }, SEARCH_DELAY_MS);
  });
  document.getElementById("search-form").addEventListener("submit", (event) => event.preventDefault());
  const help = document.getElementById("search-help");
  const button = document.getElementById("search-help-button");
  button.addEventListener("click", () => {
    help.hidden = !help.hidden;
    button.setAttribute("aria-expanded", String(!help.hidden));
  });
}

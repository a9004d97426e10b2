// The inbox page: wires the list, the message view and the panels, and adds what spans them: live updates
// from the outbox's event stream, keyboard keys, the colour scheme, the per-key inbox switcher and clearing.
// Every value from a message is set with textContent (see api.js's el), never parsed as HTML.

import { announce, el, messageUrl, request, urls } from "./api.js";
import { change, onOpen, ownerParameter, refresh, refreshTimes, rows, setCurrent, state, summaryOf, wireList } from "./list.js";
import { closeMessage, deleteShown, openId, openMessage, toggleRead } from "./message.js";
import { loadChaos, wirePanels } from "./panels.js";

const THEME_KEY = "mail-gateway-inbox-theme";
// Only when the gateway offers no event stream: one cheap conditional request (304 while nothing changed).
const FALLBACK_POLL_MS = 5000;
const TIMES_MS = 30_000;

function applyTheme(theme) {
  const dark = theme ? theme === "dark" : window.matchMedia("(prefers-color-scheme: dark)").matches;
  document.documentElement.dataset.theme = dark ? "dark" : "light";
  const button = document.getElementById("theme-button");
  button.setAttribute("aria-pressed", String(dark));
  button.textContent = dark ? "Light" : "Dark";
  button.title = dark ? "Switch to the light scheme" : "Switch to the dark scheme";
}

function wireTheme() {
  applyTheme(window.localStorage.getItem(THEME_KEY));
  window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () =>
    applyTheme(window.localStorage.getItem(THEME_KEY)));
  document.getElementById("theme-button").addEventListener("click", () => {
    const next = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
    window.localStorage.setItem(THEME_KEY, next);
    applyTheme(next);
  });
}

// The event may carry the whole summary or only the id; the id alone is looked up in the list just loaded.
async function notify(data) {
  if (!("Notification" in window) || Notification.permission !== "granted" || !data || !data.id) return;
  let summary = data.subject !== undefined ? data : summaryOf(data.id);
  if (!summary) {
    try { summary = (await request(messageUrl(data.id))).body; } catch (error) { return; }
  }
  const note = new Notification(summary.subject || "(no subject)", { body: `From ${summary.from}`, tag: summary.id });
  note.addEventListener("click", () => { window.focus(); openMessage(summary.id); });
}

function wireNotifications() {
  if (!("Notification" in window) || Notification.permission !== "default") return;
  const button = document.getElementById("notify-button");
  button.hidden = false;
  button.addEventListener("click", async () => {
    await Notification.requestPermission();
    button.hidden = true;
  });
}

let poller = null;

function listen() {
  const owner = ownerParameter();
  const source = new EventSource(owner ? `${urls.events}?${owner}` : urls.events);
  const changed = () => refresh();
  source.addEventListener("message", async (event) => {
    await refresh();
    let data = null;
    try { data = JSON.parse(event.data); } catch (error) { /* unreadable: no notification */ }
    notify(data);
  });
  source.addEventListener("read", changed);
  source.addEventListener("deleted", (event) => {
    const { ids } = JSON.parse(event.data || "{}");
    if (ids && ids.includes(openId())) closeMessage({ keepUrl: false });
    changed();
  });
  source.addEventListener("cleared", () => { if (openId()) closeMessage(); changed(); });
  source.addEventListener("open", () => {
    window.clearInterval(poller);
    poller = null;
    document.body.dataset.live = "open";  // says on the page (and to its tests) that updates are pushed
    changed();
  });
  source.addEventListener("error", () => {
    // EventSource retries a dropped stream itself; a refused one (no such route) is closed for good.
    document.body.dataset.live = source.readyState === EventSource.CLOSED ? "polling" : "reconnecting";
    if (source.readyState === EventSource.CLOSED && poller === null) poller = window.setInterval(refresh, FALLBACK_POLL_MS);
  });
  return source;
}

let stream = null;

async function wireOwners() {
  let owners;
  try {
    owners = (await request(`${urls.messages}/owners`)).body;
  } catch (error) {
    return;  // not an admin key, or no named keys: there is one inbox
  }
  const names = Array.isArray(owners) ? owners : owners.owners || [];
  if (!names.length) return;  // no named keys have sent mail: nothing to switch between
  const select = document.getElementById("owner");
  select.replaceChildren(el("option", { value: "" }, "every key"),
    ...names.map((name) => el("option", { value: name }, name)));
  document.getElementById("owner-label").hidden = false;
  select.addEventListener("change", () => {
    state.owner = select.value;
    state.start = 0;
    closeMessage();
    stream.close();
    stream = listen();
    refresh();
  });
}

function wireClear() {
  const dialog = document.getElementById("confirm-clear");
  document.getElementById("clear").addEventListener("click", () => {
    document.getElementById("confirm-clear-scope").textContent = state.owner ? `in ${state.owner}'s inbox` : "";
    dialog.showModal();
  });
  document.getElementById("confirm-clear-cancel").addEventListener("click", () => dialog.close());
  document.getElementById("confirm-clear-ok").addEventListener("click", async () => {
    dialog.close();
    try {
      const owner = ownerParameter();
      await change(() => request(owner ? `${urls.messages}?${owner}` : urls.messages, { method: "DELETE" }));
      closeMessage();
      announce("Outbox cleared.");
    } catch (error) {
      announce(`Not cleared: ${error.message}`);
    }
    await refresh();
  });
}

function move(step) {
  const items = rows();
  if (!items.length) return;
  const index = items.findIndex((item) => item.dataset.id === state.current);
  const next = index === -1 ? 0 : Math.min(items.length - 1, Math.max(0, index + step));
  setCurrent(items[next].dataset.id);
}

const TYPING = "input:not([type=checkbox]), select, textarea";

const KEYS = {
  j: () => move(1), ArrowDown: () => move(1), k: () => move(-1), ArrowUp: () => move(-1),
  Enter: () => { if (state.current) openMessage(state.current); },
  "/": () => document.getElementById("search").focus(),
  Delete: async () => {
    if (!openId() && state.current) await openMessage(state.current);
    const index = rows().findIndex((item) => item.dataset.id === openId());
    if (await deleteShown()) {
      const items = rows();
      // The user may have gone on to the search box while the gateway answered: the keys stay where they are.
      const focus = !document.activeElement.closest(TYPING);
      if (items.length) setCurrent(items[Math.min(index, items.length - 1)].dataset.id, { focus });
    }
  },
  u: async () => {
    if (!openId() && state.current) {
      const summary = summaryOf(state.current);
      await openMessage(state.current);
      if (summary && summary.read === false) return;  // opening it marked it read
    }
    await toggleRead();
  },
  "?": () => document.getElementById("keys-help").showModal(),
  Escape: () => { if (openId()) closeMessage(); },
};

function wireKeys() {
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || document.querySelector("dialog[open]")) return;
    const typing = event.target.closest(TYPING);
    if (typing) {
      // Escape, or the down arrow in the search box, hands the keys back to the list.
      if (event.key === "Escape" || (event.key === "ArrowDown" && event.target.id === "search")) {
        event.preventDefault();
        event.target.blur();
        if (event.key === "ArrowDown") move(0);
      }
      return;
    }
    const action = KEYS[event.key];
    if (!action || (event.key === "Enter" && event.target.closest("button, [role=tab]"))) return;
    if (event.key.startsWith("Arrow") && event.target.closest("[role=tablist]")) return;
    event.preventDefault();
    action();
  });
  document.getElementById("keys-button").addEventListener("click", () =>
    document.getElementById("keys-help").showModal());
}

function start() {
  wireTheme();
  wireList();
  wirePanels();
  wireClear();
  wireKeys();
  wireNotifications();
  onOpen(openMessage);
  const id = new URLSearchParams(window.location.search).get("id");
  refresh().then(() => { if (id) { setCurrent(id, { focus: false }); openMessage(id); } });
  window.addEventListener("popstate", () => {
    const wanted = new URLSearchParams(window.location.search).get("id");
    if (wanted) openMessage(wanted);
    else closeMessage({ keepUrl: true });
  });
  stream = listen();
  window.setInterval(refreshTimes, TIMES_MS);
  wireOwners();
  if (!document.getElementById("chaos-button").hidden) loadChaos();
}

start();

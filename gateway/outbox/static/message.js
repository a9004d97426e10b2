// One message: headers, the HTML in a sandboxed frame (remote content blocked unless allowed for it),
// text, attachments with thumbnails, raw source, links and codes, the delivery result, and its actions.

import { announce, bytes, el, exactTime, messageUrl, request, urls } from "./api.js";
import { change, markOpen, markRead, refresh, summaryOf } from "./list.js";
import { openRelease, renderChecks } from "./panels.js";

const WIDTHS = [["phone", "Phone", "375 px"], ["tablet", "Tablet", "768 px"], ["desktop", "Desktop", "full width"]];
const pane = () => document.getElementById("detail");
let shown = null;  // the detail JSON of the message on screen

export function openId() {
  return shown ? shown.id : null;
}

function pageUrlFor(id) {
  const url = new URL(urls.page, window.location.href);
  if (id) url.searchParams.set("id", id);
  return url.pathname + url.search;
}

export async function openMessage(id) {
  let answer;
  try {
    answer = await request(messageUrl(id));
  } catch (error) {
    showGone(error.status === 404 ? "That message is no longer kept: it was deleted or cleared." : error.message);
    return;
  }
  shown = answer.body;
  markOpen(id);
  render(shown);
  document.body.classList.add("reading");
  if (window.location.search !== new URL(pageUrlFor(id), window.location.href).search) {
    window.history.pushState({ id }, "", pageUrlFor(id));
  }
  const summary = summaryOf(id);
  if (shown.read === false || (summary && summary.read === false)) setRead(true, { quiet: true });
}

export function closeMessage({ keepUrl = false } = {}) {
  shown = null;
  markOpen(null);
  document.body.classList.remove("reading");
  pane().replaceChildren(el("p", { className: "placeholder", id: "detail-empty" }, "Select a message, or press j."));
  if (!keepUrl) window.history.pushState({}, "", pageUrlFor(null));
}

function showGone(text) {
  closeMessage({ keepUrl: true });
  announce(text);  // on a phone the message pane is not on screen
  pane().replaceChildren(el("p", { className: "notice", id: "gone" }, text));
}

let marksAsked = 0;
const lastMark = new Map();  // message id → the number of the last mark asked for it

// The mark shows at once and goes to the gateway in turn (see change() in list.js): "u" pressed twice before the
// gateway answers toggles twice, from what the screen shows, and a refused mark is taken back.
export function setRead(read, { quiet = false } = {}) {
  if (!shown) return Promise.resolve();
  const id = shown.id;
  const before = shown.read !== false;
  const asked = ++marksAsked;
  lastMark.set(id, asked);
  showRead(id, read);
  const settledLast = () => lastMark.get(id) === asked && lastMark.delete(id);  // a later mark of it stands
  return change(() => request(messageUrl(id), { method: "PATCH", json: { read } })).then(
    () => {
      settledLast();
      if (!quiet) announce(read ? "Marked read." : "Marked unread.");
    },
    (error) => {
      if (settledLast()) showRead(id, before);
      if (!quiet) announce(`Not marked: ${error.message}`);
    });
}

export function toggleRead() {
  return shown ? setRead(shown.read === false) : Promise.resolve();
}

function showRead(id, read) {
  markRead(id, read);
  if (!shown || shown.id !== id) return;
  shown.read = read;
  const button = document.getElementById("toggle-read");
  if (button) button.textContent = read ? "Mark unread" : "Mark read";
}

export async function deleteShown() {
  if (!shown) return false;
  const id = shown.id;
  try {
    await change(() => request(messageUrl(id), { method: "DELETE" }));
  } catch (error) {
    announce(`Not deleted: ${error.message}`);
    return false;
  }
  closeMessage();
  announce("Message deleted.");
  await refresh();
  return true;
}

function actions(message) {
  const back = el("button", { type: "button", id: "back", className: "back" }, "← Messages");
  back.addEventListener("click", () => closeMessage());
  const read = el("button", { type: "button", id: "toggle-read" }, message.read === false ? "Mark read" : "Mark unread");
  read.addEventListener("click", () => toggleRead());
  const remove = el("button", { type: "button", id: "delete-one", className: "danger" }, "Delete");
  remove.addEventListener("click", () => deleteShown());
  const download = el("a", { id: "download-eml", className: "button", href: messageUrl(message.id, "/raw?download=1"),
                             download: `${message.id}.eml` }, "Download .eml");
  const release = el("button", { type: "button", id: "release-button" }, "Release…");
  release.addEventListener("click", () => openRelease(message.id));
  return el("div", { className: "detail-bar", role: "toolbar", "aria-label": "Message actions" },
    back, read, remove, download, release);
}

function headerRow(name, value, id) {
  if (value === null || value === undefined || value === "" || (Array.isArray(value) && !value.length)) return null;
  const cell = el("td", { id }, Array.isArray(value) ? value.join(", ") : String(value));
  return el("tr", {}, el("th", { scope: "row" }, name), cell);
}

function headersTable(message) {
  const date = message.date ? `${exactTime(message.date)} (${message.date})` : "";
  return el("table", { id: "detail-headers" }, el("tbody", {},
    headerRow("From", message.from), headerRow("To", message.to), headerRow("Cc", message.cc),
    headerRow("Bcc", message.bcc), headerRow("Date", date), headerRow("Message-ID", message.message_id),
    headerRow("Tags", message.tags), headerRow("Size", bytes(message.size)),
    headerRow("Inbox of", message.owner), headerRow("Template", message.template, "detail-template")));
}

function delivery(message) {
  if (!message.delivery) return null;
  const list = el("dl", { id: "delivery", className: "pairs" });
  for (const [name, value] of Object.entries(message.delivery)) {
    if (value === null || value === undefined) continue;
    let shown = String(value);
    if (Array.isArray(value)) shown = value.join(", ") || "none";
    else if (typeof value === "object") {
      shown = Object.entries(value).map(([key, reply]) => `${key}: ${reply}`).join("; ") || "none";
    }
    list.append(el("dt", {}, name.replaceAll("_", " ")), el("dd", {}, shown));
  }
  return el("section", { className: "delivery", "aria-label": "Delivery result" }, el("h3", {}, "Delivery"), list);
}

// Each thumbnail is a request of its own, and loading="lazy" holds back none of a list that is on screen: a
// message of thousands of images would send them all at once and hold every connection to the gateway. The first
// few images show as thumbnails; the rest are listed like any other attachment.
const THUMBNAILS = 12;

function attachments(message) {
  if (!message.attachments || !message.attachments.length) return null;
  const list = el("ul", { id: "attachments" });
  let thumbnails = 0;
  for (const attachment of message.attachments) {
    const url = messageUrl(message.id, `/attachments/${attachment.index}`);
    const name = attachment.filename || `attachment-${attachment.index}`;
    const image = attachment.content_type.startsWith("image/") && thumbnails < THUMBNAILS;
    if (image) thumbnails += 1;
    const thumb = image ? el("img", { src: url, alt: `Preview of ${name}`, className: "thumb", loading: "lazy" }) : null;
    list.append(el("li", {}, thumb, el("a", { href: url, download: name }, name),
      el("span", { className: "meta" }, ` ${attachment.content_type}, ${bytes(attachment.size)}`)));
  }
  return el("section", { "aria-label": "Attachments" }, el("h3", {}, "Attachments"), list);
}

// The messages whose remote content the user allowed: the choice outlives a redraw of the message (a read mark
// or a live update redraws it), for as long as the page is open.
const remoteAllowed = new Set();

function htmlPanel(message) {
  if (message.html === null || message.html === undefined) return el("p", { className: "placeholder" }, "No HTML part.");
  const frameUrl = (remote) => messageUrl(message.id, remote ? "/html?remote=1" : "/html");
  const allowed = remoteAllowed.has(message.id);
  // No allow-scripts, no allow-same-origin: the message's HTML runs nothing and reaches nothing here.
  const frame = el("iframe", { id: "html-part", sandbox: "", title: "HTML part", src: frameUrl(allowed),
                               className: "preview-desktop" });
  const widths = el("div", { className: "widths", role: "group", "aria-label": "Preview width" });
  for (const [name, label, size] of WIDTHS) {
    const button = el("button", { type: "button", "data-width": name, "aria-pressed": String(name === "desktop"),
                                  title: size }, label);
    button.addEventListener("click", () => {
      frame.className = `preview-${name}`;
      for (const other of widths.children) other.setAttribute("aria-pressed", String(other === button));
    });
    widths.append(button);
  }
  const remote = message.remote_content ?? /(src|href|url)\s*[=(]\s*["']?\s*(https?:)?\/\//i.test(message.html);
  let notice = null;
  if (remote && allowed) {
    notice = el("p", { className: "remote-notice", id: "remote-notice", role: "status" },
      "Remote content allowed for this message.");
  } else if (remote) {
    const allow = el("button", { type: "button", id: "allow-remote" }, "Allow for this message");
    notice = el("p", { className: "remote-notice", id: "remote-notice", role: "status" },
      "Remote content blocked: images and styles from other servers would tell the sender the mail was opened. ",
      allow);
    allow.addEventListener("click", () => {
      remoteAllowed.add(message.id);
      frame.src = frameUrl(true);
      notice.replaceChildren("Remote content allowed for this message.");
    });
  }
  return el("div", {}, notice, widths, el("div", { className: "frame-box" }, frame));
}

// A message can hold any number of links, and drawing a hundred thousand rows froze the page for seconds: the
// detail lists only the first few hundred (LINKS_LISTED in models.py) and counts them all in link_count.
function linksPanel(message) {
  const links = message.links || [];
  const count = message.link_count ?? links.length;
  const codes = message.codes || [];
  const list = el("ul", { id: "links" });
  for (const link of links) {
    list.append(el("li", {}, el("span", { className: "kind" }, link.kind), " ",
      el("code", {}, link.url), link.text ? el("span", { className: "meta" }, ` “${link.text}”`) : null));
  }
  const more = count > links.length
    ? el("p", { id: "links-more", className: "meta" }, `${count - links.length} more not shown.`) : null;
  const codeList = el("ul", { id: "codes" }, ...codes.map((code) => el("li", {}, el("code", {}, code))));
  return el("div", {}, el("h3", {}, `Links (${count})`), links.length ? list : el("p", {}, "None."), more,
    el("h3", {}, "One-time codes"), codes.length ? codeList : el("p", {}, "None found."));
}

function rawPanel(message) {
  const pre = el("pre", { id: "raw-source" }, "Loading…");
  request(messageUrl(message.id, "/raw"), { headers: { Accept: "message/rfc822" } })
    .then((answer) => { pre.textContent = answer.body; })
    .catch((error) => { pre.textContent = `Not loaded: ${error.message}`; });
  return pre;
}

function allHeaders(message) {
  const rows = (message.headers || []).map((h) => el("tr", {}, el("th", { scope: "row" }, h.name), el("td", {}, h.value)));
  return el("table", { id: "all-headers" }, el("tbody", {}, ...rows));
}

const TABS = [
  ["html", "HTML", htmlPanel], ["text", "Text", (m) => m.text === null || m.text === undefined
    ? el("p", { className: "placeholder" }, "No text part.") : el("pre", { id: "text-part" }, m.text)],
  ["headers", "Headers", allHeaders], ["source", "Source", rawPanel], ["links", "Links & codes", linksPanel],
  ["checks", "Checks", (m) => renderChecks(m.id)],
];

function tabs(message) {
  const list = el("div", { role: "tablist", className: "tabs", "aria-label": "Message parts" });
  const panels = el("div", { className: "panels" });
  const built = new Set();  // a panel is filled the first time it is shown: the source and checks cost requests
  const choose = (name, focus = false) => {
    for (const tab of list.children) {
      const selected = tab.dataset.tab === name;
      tab.setAttribute("aria-selected", String(selected));
      tab.tabIndex = selected ? 0 : -1;
      if (selected && focus) tab.focus();
    }
    for (const panel of panels.children) panel.hidden = panel.dataset.tab !== name;
    if (!built.has(name)) {
      built.add(name);
      const [, , build] = TABS.find(([key]) => key === name);
      panels.querySelector(`[data-tab="${name}"]`).append(build(message));
    }
  };
  for (const [name] of TABS) {
    panels.append(el("div", { role: "tabpanel", id: `panel-${name}`, "aria-labelledby": `tab-${name}`,
                              tabindex: "0", "data-tab": name, hidden: true }));
  }
  for (const [name, label] of TABS) {
    const tab = el("button", { type: "button", role: "tab", id: `tab-${name}`, "data-tab": name,
                               "aria-controls": `panel-${name}` }, label);
    tab.addEventListener("click", () => choose(name));
    list.append(tab);
  }
  list.addEventListener("keydown", (event) => {
    if (event.key !== "ArrowRight" && event.key !== "ArrowLeft") return;
    const names = TABS.map(([key]) => key);
    const current = names.indexOf(document.activeElement.dataset.tab);
    const step = event.key === "ArrowRight" ? 1 : names.length - 1;
    choose(names[(current + step) % names.length], true);
    event.stopPropagation();
  });
  choose(message.html !== null && message.html !== undefined ? "html" : "text");
  return el("div", { className: "parts" }, list, panels);
}

function render(message) {
  const section = pane();
  const heading = el("h2", { id: "detail-subject", tabindex: "-1" }, message.subject || "(no subject)");
  const parts = [actions(message), heading, headersTable(message), delivery(message), attachments(message),
    tabs(message)];
  section.replaceChildren(...parts.filter(Boolean));
  if (window.matchMedia("(max-width: 700px)").matches) heading.focus();
}

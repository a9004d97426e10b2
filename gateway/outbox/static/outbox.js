// Keeps the message list current without reloading, and clears the outbox.
// Every value from a message is set with textContent, never parsed as HTML.
"use strict";

const POLL_MILLISECONDS = 1000;
const body = document.body;
const messagesUrl = body.dataset.messagesUrl;
const pageUrl = body.dataset.pageUrl;
let shown = null;

function selectedId() {
  return new URLSearchParams(window.location.search).get("id");
}

function item(message) {
  const link = document.createElement("a");
  const url = new URL(pageUrl, window.location.href);
  url.searchParams.set("id", message.id);
  link.href = url.pathname + url.search;
  link.dataset.id = message.id;
  if (message.id === selectedId()) link.setAttribute("aria-current", "true");
  for (const [cls, text] of [["from", message.from], ["subject", message.subject || "(no subject)"],
                             ["time", message.date || ""]]) {
    const part = document.createElement(cls === "time" ? "time" : "span");
    if (cls !== "time") part.className = cls;
    part.textContent = text;
    link.append(part);
  }
  const li = document.createElement("li");
  li.append(link);
  return li;
}

function render(listing) {
  const signature = JSON.stringify(listing.messages.map((m) => m.id));
  if (signature === shown) return;
  shown = signature;
  document.getElementById("messages").replaceChildren(...listing.messages.map(item));
  document.getElementById("empty").hidden = listing.messages.length > 0;
  document.getElementById("count").textContent =
    `${listing.total} message${listing.total === 1 ? "" : "s"}`;
}

// The last list's ETag: asking again with it costs the gateway nothing (304) while the outbox is unchanged.
let listTag = null;

async function refresh() {
  const headers = { Accept: "application/json" };
  if (listTag) headers["If-None-Match"] = listTag;
  const response = await fetch(`${messagesUrl}?limit=200`, { headers, cache: "no-store" });
  if (response.status === 304 || !response.ok) return;
  listTag = response.headers.get("ETag");
  render(await response.json());
}

async function poll() {
  try {
    await refresh();
  } catch (error) {
    // The gateway restarting is normal in development: keep polling.
  }
  window.setTimeout(poll, POLL_MILLISECONDS);
}

document.getElementById("clear").addEventListener("click", async () => {
  const response = await fetch(messagesUrl, { method: "DELETE" });
  if (!response.ok) return;
  const detail = document.getElementById("detail");
  detail.replaceChildren();
  detail.hidden = true;
  window.history.replaceState(null, "", pageUrl);
  await refresh();
});

shown = JSON.stringify([...document.querySelectorAll("#messages a")].map((a) => a.dataset.id));
window.setTimeout(poll, POLL_MILLISECONDS);

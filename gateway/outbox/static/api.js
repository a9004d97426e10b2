// The data routes as the page calls them, and the one way the page builds DOM from message data.
// Every value from a message is set with textContent or an attribute, never parsed as HTML.

const body = document.body;
export const urls = {
  messages: body.dataset.messagesUrl,
  page: body.dataset.pageUrl,
  events: body.dataset.eventsUrl,
  chaos: body.dataset.chaosUrl,
};
// How many links one link check fetches (MAX_LINKS in checks/links.py).
export const linksChecked = Number(body.dataset.linksChecked);

// An answer the page could not use: its status and, from a problem+json body, the detail that says the fix.
export class RequestFailed extends Error {
  constructor(status, detail) {
    super(detail || `the gateway answered ${status}`);
    this.status = status;
  }
}

async function failure(response) {
  let detail = "";
  try {
    const problem = await response.json();
    // The field-by-field errors say the fix; the detail alone may only name the fields.
    const errors = Array.isArray(problem.errors) ? problem.errors.map((e) => `${e.field}: ${e.message}`) : [];
    detail = errors.length ? errors.join("; ") : problem.detail || problem.title || "";
  } catch (error) {
    // not JSON: the status alone says what happened
  }
  return new RequestFailed(response.status, detail);
}

// JSON in and out; a 204 is null; anything else not ok throws RequestFailed with the problem's detail.
export async function request(url, { method = "GET", json, headers = {}, signal } = {}) {
  const options = { method, headers: { Accept: "application/json", ...headers }, cache: "no-store", signal };
  if (json !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(json);
  }
  const response = await fetch(url, options);
  if (response.status === 304) return { notModified: true };
  if (!response.ok) throw await failure(response);
  if (response.status === 204) return null;
  const type = response.headers.get("Content-Type") || "";
  return type.includes("json") ? { body: await response.json(), etag: response.headers.get("ETag") }
    : { body: await response.text() };
}

export function messageUrl(id, suffix = "") {
  return `${urls.messages}/${encodeURIComponent(id)}${suffix}`;
}

// el("span", {className: "from", title: x}, "text", child...): attributes set as properties or attributes.
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "className" || name === "textContent" || name === "hidden" || name === "checked" ||
        name === "disabled" || name === "value") node[name] = value;
    else if (name.startsWith("data-") || name.startsWith("aria-") || typeof value !== "object") {
      node.setAttribute(name, value === true ? "" : String(value));
    }
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === "string" || typeof child === "number" ? String(child) : child);
  }
  return node;
}

export function plural(count, word) {
  return `${count} ${word}${count === 1 ? "" : "s"}`;
}

const RELATIVE = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
const STEPS = [["second", 60], ["minute", 60], ["hour", 24], ["day", 7], ["week", 4.35], ["month", 12]];

// "3 minutes ago", the exact time being the element's title.
export function relativeTime(iso, now = Date.now()) {
  const then = Date.parse(iso);
  if (Number.isNaN(then)) return "";
  let amount = (then - now) / 1000;
  for (const [unit, size] of STEPS) {
    if (Math.abs(amount) < size) return RELATIVE.format(Math.round(amount), unit);
    amount /= size;
  }
  return RELATIVE.format(Math.round(amount), "year");
}

export function exactTime(iso) {
  const then = new Date(iso);
  return Number.isNaN(then.getTime()) ? "" : then.toLocaleString(undefined, { dateStyle: "full", timeStyle: "long" });
}

export function bytes(size) {
  if (size < 1024) return `${size} B`;
  if (size < 1024 * 1024) return `${(size / 1024).toFixed(1)} KB`;
  return `${(size / 1024 / 1024).toFixed(1)} MB`;
}

const TOAST_MS = 5000;

// A short status line for the user, e.g. after an action failed; it goes after a few seconds.
export function announce(text) {
  let toast = document.getElementById("toast");
  if (!toast) {
    toast = el("p", { id: "toast", role: "status", className: "toast" });
    document.body.append(toast);
  }
  toast.textContent = text;
  toast.hidden = !text;
  window.clearTimeout(announce.timer);
  announce.timer = window.setTimeout(() => { toast.hidden = true; }, TOAST_MS);
}

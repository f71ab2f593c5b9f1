// Small DOM helpers. Every piece of text goes in as a text node (textContent), never as HTML.

export const $ = (selector) => document.querySelector(selector);

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) node.append(child);  // strings become text nodes
  }
  return node;
}

// A table cell carrying its column name, which the phone layout shows in front of the value.
export function cell(label, content, className) {
  return el("td", { "data-label": label, class: className }, content);
}

export function clear(node) {
  node.replaceChildren();
  return node;
}

export function notice(text, { bad = false } = {}) {
  const box = $("#notice");
  box.textContent = text;
  box.classList.toggle("bad", bad);
}

// The confirm dialog: resolves true on its OK button (确认删除 unless named), false on 取消 or Escape; focus
// returns where it was.
export function confirmDialog(text, { ok = "确认删除" } = {}) {
  const dialog = $("#confirm");
  const back = document.activeElement;
  $("#confirm-text").textContent = text;
  $("#confirm-ok").textContent = ok;
  return new Promise((resolve) => {
    const finish = (answer) => {
      dialog.removeEventListener("close", onClose);
      if (dialog.open) dialog.close();
      if (back && back.isConnected) back.focus();
      resolve(answer);
    };
    const onClose = () => finish(false);
    $("#confirm-ok").onclick = () => finish(true);
    $("#confirm-cancel").onclick = () => finish(false);
    dialog.addEventListener("close", onClose);
    dialog.showModal();
    $("#confirm-cancel").focus();  // the safe choice first
  });
}

export function formatNumber(value, digits = 3) {
  return typeof value === "number" && Number.isFinite(value) ? value.toFixed(digits) : "—";
}

export function formatSeconds(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "—";
  return seconds < 1 ? `${Math.round(seconds * 1000)} 毫秒` : `${seconds.toFixed(2)} 秒`;
}

export function formatTime(epochSeconds) {
  if (!epochSeconds) return "—";
  return new Date(epochSeconds * 1000).toLocaleString("zh-CN", { hour12: false });
}

// An ISO 8601 time from the API (UTC) in the browser's local time.
export function formatIso(iso) {
  if (!iso) return "—";
  const time = new Date(iso);
  return Number.isNaN(time.getTime()) ? iso : time.toLocaleString("zh-CN", { hour12: false });
}

// 密钥 (admin): the API keys by prefix, label, scope, knowledge bases, when made and last used; a new key is
// shown once with a copy button; 撤销 is confirmed in a dialog and takes effect at the next request.

import { api, reason } from "./api.js";
import { state } from "./state.js";
import { $, cell, clear, confirmDialog, el, formatIso, notice } from "./ui.js";

const SCOPES = { read: "只读（提问、检索）", write: "读写（还可上传、替换、删除文档）" };

export function setupKeys() {
  $("#key-create").addEventListener("submit", (event) => {
    event.preventDefault();
    create();
  });
  $("#key-copy").addEventListener("click", copyKey);
  $("#key-made-done").addEventListener("click", hideMadeKey);
}

export async function loadKeys() {
  renderKbChoices();
  const body = clear($("#key-table tbody"));
  let keys;
  try {
    keys = (await api("/api/keys")).data;
  } catch (error) {
    notice(reason(error), { bad: true });
    return;
  }
  $("#key-count").textContent = `共 ${keys.length} 个密钥`;
  for (const key of keys) body.append(row(key));
  if (keys.length === 0) body.append(el("tr", {}, el("td", { colspan: "7", class: "muted" }, "还没有密钥。")));
}

function row(key) {
  const label = key.label || "（无标签）";
  return el(
    "tr",
    { "data-key-id": key.key_id },
    cell("前缀", el("code", {}, `${key.prefix}_…`), "nowrap"),
    cell("标签", label, "title-cell"),
    cell("权限", key.scope === "write" ? "读写" : "只读", "nowrap"),
    cell("知识库", key.kbs.join("、")),
    cell("创建", formatIso(key.created_at), "nowrap"),
    cell("最近使用", key.last_used_at ? formatIso(key.last_used_at) : "从未使用", "nowrap"),
    cell("操作", el("button", {
      type: "button", class: "danger", "aria-label": `撤销密钥 ${key.prefix} ${label}`, onclick: () => revoke(key, label),
    }, "撤销"), "row-actions"),
  );
}

function renderKbChoices() {
  const box = clear($("#key-kbs"));
  box.append(el("legend", {}, "可用的知识库（至少选一个）"));
  for (const kb of state.kbs) {
    const checked = kb.kb_id === state.kbId;
    box.append(el("label", { class: "check" }, el("input", { type: "checkbox", name: "key-kb", value: kb.kb_id, checked }),
      ` ${kb.title}（${kb.kb_id}）`));
  }
}

async function create() {
  const kbs = [...document.querySelectorAll("#key-kbs input:checked")].map((box) => box.value);
  if (kbs.length === 0) {
    notice("请至少选择一个知识库。", { bad: true });
    $("#key-kbs input")?.focus();
    return;
  }
  const body = { kbs, scope: $("#key-scope").value, label: $("#key-label").value.trim() };
  try {
    const made = await api("/api/keys", { method: "POST", json: body });
    $("#key-label").value = "";
    showMadeKey(made);
    notice(`已创建密钥 ${made.prefix}（${SCOPES[made.scope]}）。`);
  } catch (error) {
    notice(`创建失败：${reason(error)}`, { bad: true });
  }
  await loadKeys();
}

function showMadeKey(made) {
  $("#key-made-value").value = made.key;
  $("#key-made-what").textContent = `${made.label || "（无标签）"} · ${SCOPES[made.scope]} · ${made.kbs.join("、")}`;
  $("#key-made").hidden = false;
  $("#key-made-value").focus();
  $("#key-made-value").select();
}

// The key leaves the page once the staff say they have it: it is never fetched again.
function hideMadeKey() {
  $("#key-made-value").value = "";
  $("#key-made").hidden = true;
  $("#key-copied").textContent = "";
  $("#key-label").focus();
}

async function copyKey() {
  const field = $("#key-made-value");
  let copied = false;
  try {
    await navigator.clipboard.writeText(field.value);
    copied = true;
  } catch {
    field.select();  // no clipboard API (a plain-http address): the selection copies the old way
    copied = document.execCommand("copy");
  }
  $("#key-copied").textContent = copied ? "已复制到剪贴板。" : "无法自动复制：密钥已选中，请按 Ctrl+C 复制。";
}

async function revoke(key, label) {
  const text = `确定撤销密钥 ${key.prefix}（${label}）吗？使用它的应用或人员下一次请求起就会被拒绝，无法恢复。`;
  if (!(await confirmDialog(text, { ok: "确认撤销" }))) return;
  try {
    await api(`/api/keys/${encodeURIComponent(key.key_id)}`, { method: "DELETE" });
    notice(`已撤销密钥 ${key.prefix}（${label}）。`);
  } catch (error) {
    notice(`撤销失败：${reason(error)}`, { bad: true });
  }
  await loadKeys();
  $("#key-label").focus();
}

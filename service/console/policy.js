// One document's policy metadata (issuer, 文号, dates, 文种, level, validity) with where each value came
// from, and, for a write key or the admin, the form that corrects it through PATCH .../metadata.

import { api, kbPath, reason } from "./api.js";
import { canWrite, state } from "./state.js";
import { $, clear, el, notice } from "./ui.js";

const FIELDS = [
  ["issuers", "发文机关"], ["doc_number", "文号"], ["written_date", "成文日期"], ["published_date", "发布日期"],
  ["effective_date", "施行日期"], ["expiry_date", "有效期至"], ["kind", "文种"], ["level", "层级"],
  ["subject_words", "主题词"],
];
const SOURCES = { text: "从正文识别", title: "从标题识别", staff: "人工修改" };
const DATE_FIELDS = ["written_date", "published_date", "effective_date", "expiry_date"];
let shownDocId = null;
let reload = () => {};

// A column's value for the documents table (and its sort).
export function policyValue(policy, key) {
  if (!policy) return "";
  if (key === "issuers") return (policy.issuers || []).join("、");
  if (key === "date") return policy.published_date || policy.written_date || "";
  if (key === "validity") return policy.validity ? policy.validity.label : "";
  return policy[key] || "";
}

export function setupPolicyPanel(afterSave) {
  reload = afterSave;
  $("#doc-policy-form").addEventListener("submit", onSubmit);
  $("#doc-policy-reset").addEventListener("click", onReset);
}

export async function showPolicy(docId) {
  shownDocId = docId;
  const list = clear($("#doc-policy-fields"));
  let found;
  try {
    found = await api(kbPath(state.kbId, `/documents/${encodeURIComponent(docId)}/metadata`));
  } catch (error) {
    list.append(el("dd", { class: "muted" }, `读取文件信息失败：${reason(error)}`));
    return;
  }
  const policy = found.policy;
  for (const [key, label] of FIELDS) {
    const value = Array.isArray(policy[key]) ? policy[key].join("、") : policy[key];
    const origin = policy.provenance[key];
    const how = origin ? `（${SOURCES[origin.source] || origin.source}${origin.set_by ? `，${origin.set_by}` : ""}）` : "";
    list.append(el("dt", {}, label), el("dd", {}, value ? `${value}${how}` : "—"));
  }
  const validity = policy.validity;
  const note = validity.note ? `：${validity.note}` : "";
  const source = validity.source === "staff" ? "（人工设定）" : "";
  list.append(el("dt", {}, "效力"), el("dd", { class: `validity ${validity.status}` }, `${validity.label}${note}${source}`));
  const form = $("#doc-policy-form");
  form.hidden = !canWrite();
  form.reset();
}

function correction(form) {
  const data = new FormData(form);
  const body = {};
  const issuers = String(data.get("issuers") || "").split(/[、,，;；\s]+/).filter(Boolean);
  if (issuers.length) body.issuers = issuers;
  for (const key of ["doc_number", "kind", "level", ...DATE_FIELDS]) {
    const value = String(data.get(key) || "").trim();
    if (value) body[key] = value;
  }
  const status = String(data.get("validity") || "");
  if (status) {
    body.validity = { status };
    const since = String(data.get("since") || "");
    const by = String(data.get("by_doc_id") || "").trim();
    if (since) body.validity.since = since;
    if (by) body.validity.by_doc_id = by;
  }
  return body;
}

async function save(body, done) {
  try {
    await api(kbPath(state.kbId, `/documents/${encodeURIComponent(shownDocId)}/metadata`), { method: "PATCH", json: body });
    notice(done);
  } catch (error) {
    notice(`保存失败：${reason(error)}`, { bad: true });
    return;
  }
  await reload();
}

async function onSubmit(event) {
  event.preventDefault();
  const body = correction(event.target);
  if (Object.keys(body).length === 0) {
    notice("没有填写要修改的项。", { bad: true });
    return;
  }
  await save(body, "文件信息已修改，立即生效。");
}

async function onReset() {
  await save({ reset: [...FIELDS.map(([key]) => key), "validity"] }, "已恢复为从正文识别的结果。");
}

// The documents table (filter, sort, 删除 with a confirm dialog, replace) and one document: its policy
// metadata (with the staff's corrections) and its chunks.

import { api, ApiError, kbPath, reason } from "./api.js";
import { chunkTools, correctedChunks, history, setupCorrections } from "./corrections.js";
import { canWrite, state } from "./state.js";
import { policyValue, setupPolicyPanel, showPolicy } from "./policy.js";
import { replaceDocument } from "./upload.js";
import { offerUndo, trashHours, windowText } from "./trash.js";
import { $, cell, clear, confirmDialog, el, notice } from "./ui.js";

const ORIGINS = { corpus: "语料目录", upload: "上传", faq: "问答对" };
const DONE_SHOWN_MS = 6000;
let documents = [];
let replacing = null;
// A replace's progress, shown in a row under the document's own (by doc_id), kept across re-renders while it runs.
const replaceRows = new Map();
let openView = () => {};
let sortKey = null;
let sortDescending = false;

export function setupDocuments(showView) {
  openView = showView;
  $("#doc-filter").addEventListener("input", render);
  $("#doc-validity").addEventListener("change", render);
  for (const th of document.querySelectorAll("#doc-table th[data-sort]")) {
    const label = th.textContent;
    th.replaceChildren(el("button", { type: "button", class: "sort", onclick: () => sortBy(th.dataset.sort) }, label));
    th.setAttribute("aria-sort", "none");
  }
  setupPolicyPanel(() => showDocument($("#doc-title").dataset.docId));
  $("#replace-file").addEventListener("change", onReplaceFile);
  $("#doc-back").addEventListener("click", () => openView("docs"));
  setupCorrections(showDocument);
}

export async function loadDocuments({ keepProgress = false } = {}) {
  if (!keepProgress) replaceRows.clear();  // another knowledge base: its rows are not these
  try {
    documents = (await api(kbPath(state.kbId, "/documents"))).data;
  } catch (error) {
    documents = [];
    notice(reason(error), { bad: true });
  }
  render();
}

function sortBy(key) {
  sortDescending = sortKey === key ? !sortDescending : false;
  sortKey = key;
  for (const th of document.querySelectorAll("#doc-table th[data-sort]")) {
    const on = th.dataset.sort === key;
    th.setAttribute("aria-sort", on ? (sortDescending ? "descending" : "ascending") : "none");
  }
  render();
}

function sortValue(doc, key) {
  if (key === "pages" || key === "chunks") return doc[key] ?? -1;
  if (["issuers", "doc_number", "date", "validity"].includes(key)) return policyValue(doc.policy, key);
  return String(doc[key] ?? "");
}

function sorted(list) {
  if (!sortKey) return list;
  const sign = sortDescending ? -1 : 1;
  return [...list].sort((a, b) => {
    const x = sortValue(a, sortKey);
    const y = sortValue(b, sortKey);
    return sign * (typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y), "zh"));
  });
}

function render() {
  const words = $("#doc-filter").value.trim().toLowerCase();
  const validity = $("#doc-validity").value;
  const shown = sorted(documents.filter((d) => {
    const policy = d.policy || {};
    const text = `${d.title} ${d.source} ${d.doc_id} ${(policy.issuers || []).join(" ")} ${policy.doc_number || ""}`;
    return (!words || text.toLowerCase().includes(words)) && (!validity || policy.validity?.status === validity);
  }));
  const narrowed = words || validity;
  $("#doc-count").textContent = `共 ${documents.length} 份${narrowed ? `，显示 ${shown.length} 份` : ""}`;
  const body = clear($("#doc-table tbody"));
  for (const doc of shown) {
    body.append(row(doc));
    if (replaceRows.has(doc.doc_id)) body.append(replaceRows.get(doc.doc_id));
  }
  if (shown.length === 0) body.append(el("tr", {}, el("td", { colspan: "13", class: "muted" }, "没有文档。")));
}

function row(doc) {
  const actions = [el("button", { type: "button", onclick: () => showDocument(doc.doc_id) }, "查看")];
  if (canWrite()) {
    actions.push(
      el("button", { type: "button", "aria-label": `替换 ${doc.title}`, onclick: () => chooseReplacement(doc) }, "替换"),
      el("button", { type: "button", class: "danger", "aria-label": `删除 ${doc.title}`, onclick: () => remove(doc) }, "删除"),
    );
  }
  return el(
    "tr",
    { "data-doc-id": doc.doc_id },
    cell("标题", [doc.title, doc.corrections ? el("span", { class: "badge" }, `已更正 ${doc.corrections} 处`) : null], "title-cell"),
    cell("源文件", doc.source, "source-cell"),
    cell("类型", doc.type || "—"),
    cell("页数", doc.pages === null ? "—" : String(doc.pages), "num"),
    cell("片段", String(doc.chunks), "num"),
    cell("来源", ORIGINS[doc.origin] || doc.origin, "nowrap"),
    cell("发文机关", policyValue(doc.policy, "issuers") || "—"),
    cell("文号", policyValue(doc.policy, "doc_number") || "—", "nowrap"),
    cell("日期", policyValue(doc.policy, "date") || "—", "nowrap"),
    validityCell(doc.policy),
    timeCell("添加时间", doc.added_at),
    timeCell("更新时间", doc.updated_at),
    cell("操作", actions, "row-actions"),
  );
}

// Minutes in the reader's own time zone; the exact UTC time on hover. Times unknown (an index built before they were
// kept) show a dash and sort first.
function timeCell(label, iso) {
  if (!iso) return cell(label, "—", "nowrap");
  const at = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  const day = `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())}`;
  const minute = `${pad(at.getHours())}:${pad(at.getMinutes())}`;
  return cell(label, el("time", { datetime: iso, title: iso }, day, el("br"), minute), "nowrap");  // two short lines
}

function validityCell(policy) {
  const validity = policy?.validity;
  if (!validity) return cell("效力", "—");
  const badge = el("span", { class: `validity ${validity.status}`, title: validity.note || "" }, validity.label);
  return cell("效力", badge, "nowrap");
}

async function remove(doc) {
  const kept = trashHours() ? `在回收站保留 ${windowText(trashHours())}，期间可以撤销。` : "无法撤销。";
  if (!(await confirmDialog(`确定删除《${doc.title}》（${doc.source}）吗？删除后它不会再被检索和引用，${kept}`))) return;
  let deleted = null;
  try {
    deleted = await api(kbPath(state.kbId, `/documents/${encodeURIComponent(doc.doc_id)}`), { method: "DELETE" });
    notice(`已删除《${doc.title}》。`);
  } catch (error) {
    notice(`删除失败：${reason(error)}`, { bad: true });
  }
  await loadDocuments();
  if (deleted?.trash) offerUndo(deleted.trash);
  else $("#doc-filter").focus();
}

function chooseReplacement(doc) {
  replacing = doc;
  $("#replace-file").click();
}

async function onReplaceFile() {
  const input = $("#replace-file");
  const file = input.files[0];
  const doc = replacing;
  input.value = "";
  if (!file || !doc) return;
  const list = el("ul", { class: "jobs", "aria-label": `替换 ${doc.title} 的进度` });
  const progress = el("tr", { class: "replace-row", "data-replacing": doc.doc_id, "aria-live": "polite" },
    el("td", { colspan: "11" }, list));
  replaceRows.set(doc.doc_id, progress);
  $(`#doc-table tbody tr[data-doc-id="${CSS.escape(doc.doc_id)}"]`)?.after(progress);
  const job = await replaceDocument(state.kbId, doc.doc_id, file, list);
  if (job && job.state === "done") {
    notice(`已替换《${doc.title}》。`);
    await loadDocuments({ keepProgress: true });
    setTimeout(() => {  // seen where it was clicked, then out of the way
      if (replaceRows.get(doc.doc_id) === progress) replaceRows.delete(doc.doc_id);
      progress.remove();
    }, DONE_SHOWN_MS);
  }
}

export async function showDocument(docId, { openHistory = null } = {}) {
  let doc;
  let corrected;
  try {
    [doc, corrected] = await Promise.all([
      api(kbPath(state.kbId, `/documents/${encodeURIComponent(docId)}`)), correctedChunks(docId),
    ]);
  } catch (error) {
    notice(error instanceof ApiError ? reason(error) : String(error), { bad: true });
    return;
  }
  $("#doc-title").textContent = doc.title;
  $("#doc-title").dataset.docId = doc.doc_id;
  const pages = doc.pages ? `，${doc.pages} 页` : "";
  const fixes = doc.corrections ? `，其中 ${doc.corrections} 个片段经人工更正` : "";
  $("#doc-meta").textContent = `${doc.source}（${doc.type || "未知格式"}${pages}），${doc.chunks} 个片段${fixes}，编号 ${doc.doc_id}`;
  const list = clear($("#doc-chunks"));
  doc.chunk_spans.forEach((span, i) => {
    list.append(chunkItem(doc, span, i + 1, doc.chunk_spans[i - 1], corrected.get(span.chunk_id)));
  });
  await showPolicy(doc.doc_id);
  if (openHistory === null) openView("doc");
  const item = openHistory === null ? null : list.querySelector(`[data-chunk-id="${openHistory}"]`);
  if (item) {
    await history(item.querySelector(".chunk-panel"), doc.doc_id, openHistory, Number(item.dataset.n));
    item.scrollIntoView({ block: "start" });
  }
}

function chunkItem(doc, span, n, before, corrected) {
  const text = doc.text;
  const meta = [el("span", {}, `片段 ${n}`), el("span", {}, `位置 ${span.start}–${span.end}`)];
  if (before && before.end > span.start) meta.push(el("span", {}, `开头 ${before.end - span.start} 字与上一片段重叠`));
  meta.push(el("span", {}, span.section.length ? `章节：${span.section.join(" › ")}` : "章节：（无标题）"));
  if (span.pages) {
    const [first, last] = span.pages;
    meta.push(el("span", {}, first === last ? `第 ${first} 页` : `第 ${first}–${last} 页`));
  }
  if (span.ocr_confidence !== null && span.ocr_confidence !== undefined) {
    const low = span.ocr_confidence < 0.8;
    meta.push(el("span", { class: low ? "low" : null }, `识别置信度 ${span.ocr_confidence.toFixed(2)}${low ? "（偏低，请核对原件）" : ""}`));
  }
  const own = text.slice(span.start, span.end);
  return el(
    "li",
    { class: "chunk", "data-chunk-id": String(span.chunk_id), "data-n": String(n) },
    el("div", { class: "chunk-meta" }, meta),
    el("p", { class: "chunk-text" }, own),
    chunkTools(doc.doc_id, span.chunk_id, n, own, corrected),
  );
}

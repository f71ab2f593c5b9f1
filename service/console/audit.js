// 操作记录: the audit trail, newest first, a page at a time: who (admin or which key), what, when and from which
// address. A knowledge base's trail for its write keys and the admin; the admin may read the whole deployment's.
// 导出 downloads the trail as JSON Lines (fetched with the token in its header, never in a link).

import { api, kbPath, reason } from "./api.js";
import { isAdmin, state } from "./state.js";
import { $, cell, clear, el, formatIso, notice } from "./ui.js";

const PAGE = 50;
// The route templates a record names, in words; the per-knowledge-base prefix is taken off first.
const ACTIONS = [
  [/^POST \/documents$/, "上传文档"],
  [/^PUT \/documents\/\{doc_id\}$/, "替换文档"],
  [/^DELETE \/documents\/\{doc_id\}$/, "删除文档"],
  [/^PATCH \/documents\/\{doc_id\}\/metadata$/, "修改文件信息"],
  [/^PATCH \/documents\/\{doc_id\}\/chunks\/\{chunk_id\}$/, "更正片段"],
  [/^POST \/documents\/\{doc_id\}\/chunks\/\{chunk_id\}\/rollback$/, "回滚片段更正"],
  [/^POST \/faq$/, "新增问答对"],
  [/^POST \/faq\/import$/, "导入问答对"],
  [/^PUT \/faq\/\{faq_id\}$/, "修改问答对"],
  [/^DELETE \/faq\/\{faq_id\}$/, "删除问答对"],
  [/^POST \/terms$/, "新增词条"],
  [/^POST \/terms\/import$/, "导入词条"],
  [/^PUT \/terms\/\{term_id\}$/, "修改词条"],
  [/^DELETE \/terms\/\{term_id\}$/, "删除词条"],
  [/^POST \/feedback$/, "提交反馈"],
  [/^PATCH \/feedback\/\{feedback_id\}$/, "处理反馈"],
  [/^POST \/feedback\/\{feedback_id\}\/gold$/, "反馈加入标准问题集"],
  [/^DELETE \/gold\/\{gold_id\}$/, "删除标准问题"],
  [/^POST \/evaluations$/, "运行评测"],
  [/^POST \/api\/kbs$/, "新建知识库"],
  [/^PATCH \/api\/kbs\/\{kb_id\}$/, "修改知识库"],
  [/^DELETE \/api\/kbs\/\{kb_id\}$/, "删除知识库"],
  [/^POST \/api\/keys$/, "创建密钥"],
  [/^DELETE \/api\/keys\/\{key_id\}$/, "撤销密钥"],
];
let nextBefore = null;
let scope = "kb";

export function setupAudit() {
  $("#audit-scope").addEventListener("change", (event) => {
    scope = event.target.value;
    loadAudit();
  });
  $("#audit-more").addEventListener("click", () => loadPage(false));
  $("#audit-export").addEventListener("click", exportTrail);
}

export function loadAudit() {
  $("#audit-scope-bar").hidden = !isAdmin();
  if (!isAdmin()) scope = "kb";
  $("#audit-scope").value = scope;
  return loadPage(true);
}

function trailPath() {
  return scope === "all" ? "/api/admin/audit" : kbPath(state.kbId, "/audit");
}

async function loadPage(fresh) {
  const body = $("#audit-table tbody");
  if (fresh) {
    clear(body);
    nextBefore = null;
  }
  const query = new URLSearchParams({ limit: String(PAGE) });
  if (nextBefore) query.set("before", nextBefore);
  let page;
  try {
    page = await api(`${trailPath()}?${query}`);
  } catch (error) {
    notice(`读取操作记录失败：${reason(error)}`, { bad: true });
    return;
  }
  for (const record of page.data) body.append(row(record));
  if (fresh && page.data.length === 0) {
    body.append(el("tr", {}, el("td", { colspan: "6", class: "muted" }, "还没有操作记录。")));
  }
  nextBefore = page.next_before;
  $("#audit-more").hidden = !nextBefore;
  const shown = body.querySelectorAll("tr[data-record-id]").length;
  $("#audit-count").textContent = shown ? `已显示 ${shown} 条${nextBefore ? "，还有更早的" : ""}` : "";
}

function row(record) {
  return el(
    "tr",
    { "data-record-id": record.record_id },
    cell("时间", formatIso(record.at), "nowrap"),
    cell("操作者", record.who || "—"),
    cell("操作", el("div", {}, el("div", {}, actionText(record.action)), el("code", { class: "muted small" }, record.path))),
    cell("知识库", record.kb_id === "*" ? "（全局）" : record.kb_id, "nowrap"),
    cell("来源地址", record.client || "—", "nowrap"),
    cell("详情", details(record)),
  );
}

export function actionText(action) {
  const plain = action.replace(/^(\w+ )\/api\/kbs\/\{kb_id\}(?=\/)/, "$1").replace(/^(\w+ )\/api(?=\/(?!kbs|keys))/, "$1");
  const found = ACTIONS.find(([pattern]) => pattern.test(plain));
  return found ? found[1] : action;
}

function details(record) {
  const facts = { ...record.params, ...record.detail };
  const entries = Object.entries(facts);
  if (entries.length === 0) return "—";
  const text = entries.map(([key, value]) => `${key}: ${typeof value === "string" ? value : JSON.stringify(value)}`);
  return el("span", { class: "audit-detail" }, text.join("；"));
}

async function exportTrail() {
  const path = `${trailPath()}/export`;
  let text;
  try {
    text = await api(path, { text: true });
  } catch (error) {
    notice(`导出失败：${reason(error)}`, { bad: true });
    return;
  }
  const name = scope === "all" ? "audit.jsonl" : `audit-${state.kbId}.jsonl`;
  const url = URL.createObjectURL(new Blob([text], { type: "application/x-ndjson" }));
  const link = el("a", { href: url, download: name, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
  notice(`已导出 ${text.split("\n").filter(Boolean).length} 条操作记录（${name}）。`);
}

// 词典: the knowledge base's term dictionary (synonyms, abbreviations, related and protected words) with who added
// each entry and when, added and deleted here; the shipped list on demand; the notice when documents would need
// re-tokenising (protected words), as the API says it.

import { api, kbPath, reason } from "./api.js";
import { state } from "./state.js";
import { $, cell, clear, confirmDialog, el, formatIso, notice } from "./ui.js";

const KINDS = { synonym: "同义词", abbreviation: "简称", related: "相关词", protected: "保护词（不切分）" };

export function setupTerms() {
  $("#term-create").addEventListener("submit", (event) => {
    event.preventDefault();
    create();
  });
  $("#term-kind").addEventListener("change", () => {
    $("#term-variants").disabled = $("#term-kind").value === "protected";  // a protected word has no variants
  });
  $("#term-base").addEventListener("change", loadTerms);
}

export async function loadTerms() {
  const withBase = $("#term-base").checked;
  let listed;
  try {
    listed = await api(kbPath(state.kbId, `/terms${withBase ? "?include_base=true" : ""}`));
  } catch (error) {
    notice(`读取词典失败：${reason(error)}`, { bad: true });
    return;
  }
  showReindex(listed);
  $("#term-count").textContent = `本知识库 ${listed.count} 条`;
  const body = clear($("#term-table tbody"));
  for (const term of listed.data) body.append(row(term));
  if (listed.count === 0) body.append(el("tr", {}, el("td", { colspan: "7", class: "muted" }, "还没有词条。")));
  const base = clear($("#term-base-table tbody"));
  $("#term-base-wrap").hidden = !withBase;
  for (const term of listed.base || []) {
    base.append(el("tr", {}, cell("标准词", term.canonical), cell("其他写法", term.variants.join("、") || "—"),
      cell("类型", KINDS[term.kind] || term.kind, "nowrap"), cell("备注", term.note || "—")));
  }
}

function showReindex(listed) {
  const box = $("#term-reindex");
  box.hidden = !listed.reindex_needed;
  // The API's note is in English for operators; the staff read what it means.
  box.textContent = listed.reindex_needed
    ? "需要重新切分文档：保护词在问题里立即保持完整，但已收录文档的索引仍按原来的切分（本版本还不能重新切分文档）；"
      + "词的各部分照常与文档匹配，不会因此漏检。"
    : "";
  box.title = listed.reindex_note || "";
}

function row(term) {
  const changed = term.updated_at && term.updated_at !== term.added_at
    ? `${formatIso(term.updated_at)}（${term.updated_by}）` : "—";
  return el(
    "tr",
    { "data-term-id": term.id },
    cell("标准词", term.canonical, "title-cell"),
    cell("其他写法", term.variants.join("、") || "—"),
    cell("类型", KINDS[term.kind] || term.kind, "nowrap"),
    cell("备注", term.note || "—"),
    cell("添加", `${formatIso(term.added_at)}（${term.added_by}）`),
    cell("修改", changed),
    cell("操作", el("button", {
      type: "button", class: "danger", "aria-label": `删除词条 ${term.canonical}`, onclick: () => remove(term),
    }, "删除"), "row-actions"),
  );
}

function variantsOf(text) {
  return text.split(/[、，,;；|\n]+/).map((word) => word.trim()).filter(Boolean);
}

async function create() {
  const kind = $("#term-kind").value;
  const body = {
    canonical: $("#term-canonical").value.trim(),
    variants: kind === "protected" ? [] : variantsOf($("#term-variants").value),
    kind,
    note: $("#term-note").value.trim(),
  };
  if (!body.canonical || (kind !== "protected" && body.variants.length === 0)) {
    notice(kind === "protected" ? "请填写要保持完整的词。" : "请填写标准词和至少一个其他写法。", { bad: true });
    return;
  }
  try {
    const changed = await api(kbPath(state.kbId, "/terms"), { method: "POST", json: body });
    $("#term-create").reset();
    $("#term-variants").disabled = false;
    notice(`已添加词条「${changed.term.canonical}」，从下一个问题起生效，无需重建索引。`);
  } catch (error) {
    notice(`添加失败：${reason(error)}${error.message ? `（${error.message}）` : ""}`, { bad: true });
  }
  await loadTerms();
  $("#term-canonical").focus();
}

async function remove(term) {
  if (!(await confirmDialog(`确定删除词条「${term.canonical}」吗？从下一个问题起不再使用。`))) return;
  try {
    await api(kbPath(state.kbId, `/terms/${encodeURIComponent(term.id)}`), { method: "DELETE" });
    notice(`已删除词条「${term.canonical}」。`);
  } catch (error) {
    notice(`删除失败：${reason(error)}`, { bad: true });
  }
  await loadTerms();
  $("#term-canonical").focus();
}

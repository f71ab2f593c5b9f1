// 问答对: the knowledge base's FAQ pairs (问题 → approved 答案, 相似问法, 来源), searched and paged; added, edited and
// deleted one by one, imported from .csv/.xlsx (a refused file lists its bad rows), exported. Each write is a job:
// the view waits for it, as the pair answers questions once it is done.

import { api, followJob, jobFailure, kbPath, reason } from "./api.js";
import { canWrite, state } from "./state.js";
import { $, cell, clear, confirmDialog, el, notice } from "./ui.js";

const PAGE = 20;
let offset = 0;
let editing = null;  // the pair being edited, or null for a new one

export function setupFaq() {
  $("#faq-search").addEventListener("input", () => { offset = 0; loadFaq(); });
  $("#faq-prev").addEventListener("click", () => { offset = Math.max(0, offset - PAGE); loadFaq(); });
  $("#faq-next").addEventListener("click", () => { offset += PAGE; loadFaq(); });
  $("#faq-form").addEventListener("submit", (event) => { event.preventDefault(); save(); });
  $("#faq-cancel").addEventListener("click", () => startEdit(null));
  $("#faq-import").addEventListener("submit", (event) => { event.preventDefault(); importFile(); });
  for (const format of ["csv", "xlsx", "jsonl"]) {
    $(`#faq-export-${format}`).addEventListener("click", () => exportPairs(format));
  }
}

export async function loadFaq() {
  $("#faq-write").hidden = !canWrite();
  const query = new URLSearchParams({ offset: String(offset), limit: String(PAGE) });
  const words = $("#faq-search").value.trim();
  if (words) query.set("q", words);
  let page;
  try {
    page = await api(kbPath(state.kbId, `/faq?${query}`));
  } catch (error) {
    notice(`读取问答对失败：${reason(error)}`, { bad: true });
    return;
  }
  const body = clear($("#faq-table tbody"));
  for (const pair of page.data) body.append(row(pair));
  if (page.count === 0) body.append(el("tr", {}, el("td", { colspan: "5", class: "muted" }, words ? "没有匹配的问答对。" : "还没有问答对。")));
  const last = Math.min(page.offset + page.data.length, page.count);
  $("#faq-count").textContent = page.count ? `共 ${page.count} 对，显示第 ${page.offset + 1}–${last} 对` : "";
  $("#faq-prev").disabled = page.offset === 0;
  $("#faq-next").disabled = last >= page.count;
}

function row(pair) {
  const actions = canWrite() ? [
    el("button", { type: "button", "aria-label": `编辑问答对 ${pair.question}`, onclick: () => startEdit(pair) }, "编辑"),
    el("button", { type: "button", class: "danger", "aria-label": `删除问答对 ${pair.question}`, onclick: () => remove(pair) }, "删除"),
  ] : "—";
  return el(
    "tr",
    { "data-faq-id": pair.id },
    cell("问题", pair.question, "title-cell"),
    cell("答案", el("span", { class: "faq-answer" }, pair.answer)),
    cell("相似问法", pair.similar.join("；") || "—"),
    cell("来源", pair.source || "—"),
    cell("操作", actions, "row-actions"),
  );
}

function startEdit(pair) {
  editing = pair;
  $("#faq-form-title").textContent = pair ? "编辑问答对" : "新增问答对";
  $("#faq-question").value = pair ? pair.question : "";
  $("#faq-answer").value = pair ? pair.answer : "";
  $("#faq-similar").value = pair ? pair.similar.join("\n") : "";
  $("#faq-source").value = pair ? pair.source : "";
  $("#faq-cancel").hidden = !pair;
  $("#faq-save").textContent = pair ? "保存修改" : "新增";
  $("#faq-question").focus();
}

async function save() {
  const body = {
    question: $("#faq-question").value.trim(),
    answer: $("#faq-answer").value.trim(),
    similar: $("#faq-similar").value.split(/\n+/).map((line) => line.trim()).filter(Boolean),
    source: $("#faq-source").value.trim(),
  };
  if (!body.question || !body.answer) {
    notice("请填写问题和答案。", { bad: true });
    return;
  }
  const pair = editing;
  const path = pair ? `/faq/${encodeURIComponent(pair.id)}` : "/faq";
  $("#faq-save").disabled = true;
  try {
    const written = await api(kbPath(state.kbId, path), { method: pair ? "PUT" : "POST", json: body });
    notice("正在收录问答对…");
    const job = await followJob(state.kbId, written.job);
    if (job.state !== "done") throw new Error(jobFailure(job));
    notice(pair ? `已保存问答对「${body.question}」，现在就能回答。` : `已新增问答对「${body.question}」，现在就能回答。`);
    startEdit(null);
  } catch (error) {
    notice(`保存失败：${error.code ? reason(error) : error.message}${error.code === "conflict" ? `（${error.message}）` : ""}`, { bad: true });
  } finally {
    $("#faq-save").disabled = false;
  }
  await loadFaq();
}

async function remove(pair) {
  if (!(await confirmDialog(`确定删除问答对「${pair.question}」吗？删除后不再用它回答，无法撤销。`))) return;
  try {
    await api(kbPath(state.kbId, `/faq/${encodeURIComponent(pair.id)}`), { method: "DELETE" });
    notice(`已删除问答对「${pair.question}」。`);
  } catch (error) {
    notice(`删除失败：${reason(error)}`, { bad: true });
  }
  await loadFaq();
  $("#faq-search").focus();
}

async function importFile() {
  const file = $("#faq-file").files[0];
  const problems = clear($("#faq-import-problems"));
  if (!file) {
    notice("请选择 .csv 或 .xlsx 文件。", { bad: true });
    return;
  }
  const form = new FormData();
  form.append("file", file, file.name);
  try {
    const imported = await api(kbPath(state.kbId, "/faq/import"), { method: "POST", form });
    notice(`正在导入 ${imported.count} 对问答…`);
    const job = await followJob(state.kbId, imported.job);
    if (job.state !== "done") throw new Error(jobFailure(job));
    notice(`已导入 ${imported.count} 对问答，现在就能回答。`);
    $("#faq-import").reset();
  } catch (error) {
    notice(`导入失败：${error.code ? reason(error) : error.message}整个文件都没有导入。`, { bad: true });
    for (const detail of error.details || []) {
      const where = detail.line ? `第 ${detail.line} 行` : detail.row ? `第 ${detail.row} 行` : "";
      problems.append(el("li", {}, `${where}${where ? "：" : ""}${detail.message || JSON.stringify(detail)}`));
    }
  }
  offset = 0;
  await loadFaq();
}

async function exportPairs(format) {
  let data;
  try {
    data = await api(kbPath(state.kbId, `/faq/export?format=${format}`), { text: format !== "xlsx", blob: format === "xlsx" });
  } catch (error) {
    notice(`导出失败：${reason(error)}`, { bad: true });
    return;
  }
  const blob = data instanceof Blob ? data : new Blob([data], { type: format === "csv" ? "text/csv" : "application/x-ndjson" });
  const url = URL.createObjectURL(blob);
  const link = el("a", { href: url, download: `faq-${state.kbId}.${format}`, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

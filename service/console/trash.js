// 回收站: documents deleted within the operator's retention window, each with the time left, 恢复 and 永久删除;
// and the 撤销 the notice offers right after a delete in the documents table. Everything through the public API.

import { api, followJob, jobFailure, kbPath, reason } from "./api.js";
import { state } from "./state.js";
import { $, cell, clear, confirmDialog, el, formatIso, notice } from "./ui.js";

let retentionHours = 0;
let reloadDocuments = async () => {};

export function setupTrash(loadDocuments) {
  reloadDocuments = loadDocuments;
}

// How long a delete is kept, as the confirm dialog says it (0: not at all).
export const trashHours = () => retentionHours;

export function windowText(hours) {
  if (!hours) return "";
  return hours >= 48 && hours % 24 === 0 ? `${hours / 24} 天` : `${hours} 小时`;
}

async function listed() {
  const found = await api(kbPath(state.kbId, "/trash"));
  retentionHours = found.retention_hours;
  return found;
}

// The window of the chosen knowledge base's deployment, for the documents view (a read key cannot ask: none then).
export async function loadTrashWindow() {
  try {
    await listed();
  } catch {
    retentionHours = 0;
  }
}

export async function loadTrash() {
  let found;
  try {
    found = await listed();
  } catch (error) {
    notice(`读取回收站失败：${reason(error)}`, { bad: true });
    return;
  }
  $("#trash-window").textContent = retentionHours
    ? `删除的文档在这里保留 ${windowText(retentionHours)}：期间可以恢复（编号、添加时间和文件信息的更正都会恢复），也可以立即永久删除；到期后自动永久删除，文字不再留在服务器上。`
    : "回收站未开启：删除立即生效，无法撤销，服务器不保留被删除的文字（运维人员可设置 POLICYQA_TRASH_RETENTION_HOURS 开启）。";
  $("#trash-count").textContent = `共 ${found.count} 份`;
  const body = clear($("#trash-table tbody"));
  for (const entry of found.data) body.append(row(entry));
  if (found.count === 0) body.append(el("tr", {}, el("td", { colspan: "7", class: "muted" }, "回收站是空的。")));
}

function timeLeft(seconds) {
  const minutes = Math.floor(seconds / 60);
  const hours = Math.floor(minutes / 60);
  if (hours >= 24) return `${Math.floor(hours / 24)} 天 ${hours % 24} 小时`;
  if (hours >= 1) return `${hours} 小时 ${minutes % 60} 分`;
  return minutes >= 1 ? `${minutes} 分钟` : "不到 1 分钟";
}

function size(bytes) {
  return bytes >= 1_000_000 ? `${(bytes / 1_000_000).toFixed(1)} MB` : `${Math.max(1, Math.round(bytes / 1000))} KB`;
}

function row(entry) {
  return el(
    "tr",
    { "data-entry-id": entry.id },
    cell("标题", entry.title, "title-cell"),
    cell("编号", entry.doc_id, "source-cell"),
    cell("删除时间", formatIso(entry.deleted_at), "nowrap"),
    cell("删除者", entry.deleted_by),
    cell("剩余时间", el("span", { title: `${formatIso(entry.expires_at)} 自动永久删除` }, timeLeft(entry.expires_in_s)), "nowrap"),
    cell("大小", size(entry.size_bytes), "num nowrap"),
    cell("操作", [
      el("button", { type: "button", "aria-label": `恢复 ${entry.title}`, onclick: () => restoreFromList(entry) }, "恢复"),
      el("button", { type: "button", class: "danger", "aria-label": `永久删除 ${entry.title}`, onclick: () => purge(entry) }, "永久删除"),
    ], "row-actions"),
  );
}

// Restore an entry, waiting for its job; whether the document is back (the notice says what happened).
async function restore(entry) {
  notice(`正在恢复《${entry.title}》……`);
  try {
    const result = await api(kbPath(state.kbId, `/trash/${encodeURIComponent(entry.id)}/restore`), { method: "POST" });
    const job = result.restored ? result.job : await followJob(state.kbId, result.job);
    if (job.state !== "done") {
      notice(`恢复失败：${/exists again/.test(job.error || "") ? "同一编号的文档已经存在（可能已重新上传）。" : jobFailure(job)}`, { bad: true });
      return false;
    }
  } catch (error) {
    const taken = error.status === 409 ? "同一编号的文档已经存在（可能已重新上传），不能恢复；条目仍留在回收站。" : reason(error);
    notice(`恢复失败：${taken}`, { bad: true });
    return false;
  }
  notice(`已恢复《${entry.title}》（编号 ${entry.doc_id}）。`);
  return true;
}

async function restoreFromList(entry) {
  await restore(entry);
  await Promise.all([loadTrash(), reloadDocuments()]);
  $("#trash-title").focus();
}

async function purge(entry) {
  const sure = await confirmDialog(`确定永久删除《${entry.title}》吗？它的文字将从服务器上清除，之后无法恢复。`, { ok: "确认永久删除" });
  if (!sure) return;
  try {
    await api(kbPath(state.kbId, `/trash/${encodeURIComponent(entry.id)}`), { method: "DELETE" });
    notice(`已永久删除《${entry.title}》。`);
  } catch (error) {
    notice(`永久删除失败：${reason(error)}`, { bad: true });
  }
  await loadTrash();
  $("#trash-title").focus();
}

// After a delete in the documents table: the notice says where the document is kept, with 撤销 (focused, so that
// Enter undoes it at once), which restores it and puts the focus back on its row.
export function offerUndo(entry) {
  const undo = el("button", { type: "button", class: "undo", onclick: async () => {
    undo.disabled = true;
    if (await restore(entry)) await reloadDocuments();
    const back = $(`#doc-table tbody tr[data-doc-id="${CSS.escape(entry.doc_id)}"] button`) || $("#doc-filter");
    back.focus();
  } }, "撤销");
  const box = $("#notice");
  box.classList.remove("bad");
  box.replaceChildren(`已删除《${entry.title}》。回收站保留到 ${formatIso(entry.expires_at)}，期间可以撤销。`, undo);
  undo.focus();
}

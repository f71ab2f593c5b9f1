// 更正片段: in the document view, a write key or the admin edits one chunk's text (only it is embedded again),
// sees the change as a character diff, reads the chunk's versions (who, when, why) and rolls back to the original
// or to a version. A correction gives the chunk a new id, so the view is drawn again from the reply.

import { api, kbPath, reason } from "./api.js";
import { canWrite, state } from "./state.js";
import { clear, confirmDialog, el, formatIso, notice } from "./ui.js";

const MAX_CHARS = 2000;
let redraw = async () => {};

export function setupCorrections(showDocumentAgain) {
  redraw = showDocumentAgain;
}

// Each chunk's "corrected" flag, by chunk id (GET …/chunks); empty where the route refuses (a read-only caller).
export async function correctedChunks(docId) {
  try {
    const listed = await api(kbPath(state.kbId, `/documents/${encodeURIComponent(docId)}/chunks`));
    return new Map(listed.data.map((chunk) => [chunk.chunk_id, chunk.corrected]));
  } catch {
    return new Map();
  }
}

// The buttons and the panel under one chunk of the document view.
export function chunkTools(docId, chunkId, n, text, corrected) {
  const panel = el("div", { class: "chunk-panel", hidden: true });
  const tools = el("div", { class: "chunk-tools" });
  if (corrected) tools.append(el("span", { class: "badge" }, "已更正"));
  if (canWrite()) {
    tools.append(
      el("button", { type: "button", "aria-label": `更正片段 ${n}`, onclick: () => editor(panel, docId, chunkId, n, text) }, "更正"),
      el("button", { type: "button", "aria-label": `片段 ${n} 的更正记录`, onclick: () => history(panel, docId, chunkId, n) }, "更正记录"),
    );
  }
  return [tools, panel];
}

function editor(panel, docId, chunkId, n, text) {
  const area = el("textarea", { rows: "6", maxlength: String(MAX_CHARS), "aria-label": `片段 ${n} 的新文字` });
  area.value = text;
  const note = el("input", { maxlength: "500", autocomplete: "off", "aria-label": "更正原因（可选）", placeholder: "更正原因（可选），如 识别错字" });
  const error = el("p", { class: "error", role: "alert", hidden: true });
  const save = el("button", { type: "button", class: "primary" }, "保存更正");
  save.addEventListener("click", async () => {
    save.disabled = true;
    save.textContent = "正在重新嵌入这一片段…";
    try {
      const done = await api(kbPath(state.kbId, `/documents/${encodeURIComponent(docId)}/chunks/${chunkId}`), {
        method: "PATCH", json: { text: area.value, note: note.value.trim() },
      });
      notice(`已更正片段 ${n}（第 ${done.version} 版），只重新嵌入了这一片段（${done.embedded_passages} 段），已生效。`);
      await redraw(docId, { openHistory: done.chunk.chunk_id });
    } catch (failure) {
      error.textContent = `保存失败：${reason(failure)}${failure.message ? `（${failure.message}）` : ""}`;
      error.hidden = false;
      save.disabled = false;
      save.textContent = "保存更正";
    }
  });
  const cancel = el("button", { type: "button", onclick: () => { panel.hidden = true; } }, "取消");
  clear(panel).append(
    el("label", {}, `片段 ${n} 的新文字（至多 ${MAX_CHARS} 字；只重新嵌入这一片段，原文会保留，可回滚）`), area,
    note, error, el("div", { class: "form-actions" }, save, cancel),
  );
  panel.hidden = false;
  area.focus();
}

export async function history(panel, docId, chunkId, n) {
  let found;
  try {
    found = await api(kbPath(state.kbId, `/documents/${encodeURIComponent(docId)}/chunks/${chunkId}/corrections`));
  } catch (error) {
    clear(panel).append(el("p", { class: "muted" }, error.status === 404 ? "这一片段没有更正记录。" : reason(error)));
    panel.hidden = false;
    return;
  }
  const body = clear(panel);
  body.append(el("h4", {}, `片段 ${n}：原文 → 现在`), diffView(found.diff));
  if (found.count) {
    body.append(el("button", {
      type: "button", class: "danger", onclick: () => rollback(docId, chunkId, n, 0, "原文"),
    }, "回滚到原文"));
  }
  const list = el("ol", { class: "versions", reversed: true });
  for (const version of found.versions) list.append(versionItem(docId, chunkId, n, version));
  body.append(el("h4", {}, `更正记录（${found.count} 版，新的在前）`), list);
  panel.hidden = false;
}

function versionItem(docId, chunkId, n, version) {
  const what = version.action === "rollback"
    ? `回滚到${version.rollback_to ? `第 ${version.rollback_to} 版` : "原文"}` : "更正";
  const item = el(
    "li",
    { class: version.stale ? "version stale" : "version" },
    el("div", { class: "muted" }, `第 ${version.version} 版 · ${what} · ${version.set_by} · ${formatIso(version.set_at)}`
      + `${version.note ? ` · ${version.note}` : ""}${version.stale ? " · 文档已替换，不再适用" : ""}`),
    diffView(version.diff),
  );
  if (!version.stale) {
    item.append(el("button", {
      type: "button", onclick: () => rollback(docId, chunkId, n, version.version, `第 ${version.version} 版`),
    }, "恢复此版本"));
  }
  return item;
}

// A character diff: deleted text struck through, inserted text marked; both say so to a screen reader.
export function diffView(diff) {
  const box = el("p", { class: "diff" });
  for (const part of diff) {
    if (part.op === "equal") box.append(part.text);
    else if (part.op === "delete") box.append(el("del", { title: "删去" }, part.text));
    else box.append(el("ins", { title: "加入" }, part.text));
  }
  return box;
}

async function rollback(docId, chunkId, n, version, label) {
  if (!(await confirmDialog(`把片段 ${n} 恢复为${label}的文字吗？这会作为新的一版记录，可再次回滚。`, { ok: "确认回滚" }))) return;
  try {
    const done = await api(kbPath(state.kbId, `/documents/${encodeURIComponent(docId)}/chunks/${chunkId}/rollback`), {
      method: "POST", json: { version },
    });
    notice(`已把片段 ${n} 恢复为${label}（第 ${done.version} 版），已生效。`);
    await redraw(docId, { openHistory: done.chunk.chunk_id });
  } catch (error) {
    notice(`回滚失败：${reason(error)}`, { bad: true });
  }
}

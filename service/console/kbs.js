// Knowledge bases: the list (a key sees only its own), and for the admin create, edit and delete.

import { api, reason } from "./api.js";
import { isAdmin, state } from "./state.js";
import { $, cell, clear, confirmDialog, el, notice } from "./ui.js";

let onKbsChanged = () => {};

export function setupKbs(afterChange) {
  onKbsChanged = afterChange;
  $("#kb-create").addEventListener("submit", (event) => {
    event.preventDefault();
    create();
  });
  $("#kb-edit-cancel").addEventListener("click", () => $("#kb-edit").close());
}

export async function loadKbs() {
  const all = (await api("/api/kbs")).data;
  const own = state.caller.kbs;
  state.kbs = own === null ? all : all.filter((kb) => own.includes(kb.kb_id));
  if (!state.kbs.some((kb) => kb.kb_id === state.kbId)) state.kbId = state.kbs.length ? state.kbs[0].kb_id : "default";
  const select = clear($("#kb-select"));
  for (const kb of state.kbs) {
    select.append(el("option", { value: kb.kb_id, selected: kb.kb_id === state.kbId }, `${kb.title}（${kb.kb_id}）`));
  }
  renderKbs();
}

function renderKbs() {
  $("#kb-create").hidden = !isAdmin();
  const body = clear($("#kb-table tbody"));
  for (const kb of state.kbs) {
    const actions = [];
    if (isAdmin()) {
      actions.push(el("button", { type: "button", "aria-label": `编辑 ${kb.title}`, onclick: () => edit(kb) }, "编辑"));
      if (kb.kb_id !== "default") {
        actions.push(el("button", { type: "button", class: "danger", "aria-label": `删除知识库 ${kb.title}`, onclick: () => remove(kb) }, "删除"));
      }
    }
    body.append(
      el(
        "tr",
        { "data-kb-id": kb.kb_id },
        cell("编号", kb.kb_id),
        cell("标题", kb.title, "title-cell"),
        cell("说明", kb.description || "—"),
        cell("公开", kb.public ? "是" : "否"),
        cell("文档", String(kb.documents), "num"),
        cell("片段", String(kb.chunks), "num"),
        cell("操作", actions.length ? actions : "—", "row-actions"),
      ),
    );
  }
}

async function create() {
  const body = {
    kb_id: $("#kb-new-id").value.trim(),
    title: $("#kb-new-title").value.trim(),
    description: $("#kb-new-description").value,
    public: $("#kb-new-public").checked,
  };
  if (!/^[a-z0-9_-]{1,64}$/.test(body.kb_id) || !body.title) {
    notice("请填写编号（小写字母、数字、- 和 _，至多 64 个）和标题。", { bad: true });
    return;
  }
  try {
    await api("/api/kbs", { method: "POST", json: body });
    $("#kb-create").reset();
    notice(`已创建知识库「${body.title}」。`);
    await onKbsChanged();
  } catch (error) {
    notice(`创建失败：${reason(error)}`, { bad: true });
  }
}

function edit(kb) {
  const dialog = $("#kb-edit");
  $("#kb-edit-name").value = kb.title;
  $("#kb-edit-description").value = kb.description;
  $("#kb-edit-public").checked = kb.public;
  $("#kb-edit-error").hidden = true;
  $("#kb-edit-save").onclick = async () => {
    const body = {
      title: $("#kb-edit-name").value.trim(),
      description: $("#kb-edit-description").value,
      public: $("#kb-edit-public").checked,
    };
    try {
      await api(`/api/kbs/${encodeURIComponent(kb.kb_id)}`, { method: "PATCH", json: body });
      dialog.close();
      notice(`已保存知识库「${body.title}」。`);
      await onKbsChanged();
    } catch (error) {
      $("#kb-edit-error").textContent = reason(error);
      $("#kb-edit-error").hidden = false;
    }
  };
  dialog.showModal();
}

async function remove(kb) {
  const text = `确定删除知识库「${kb.title}」（${kb.kb_id}）吗？其中的 ${kb.documents} 份文档会一并删除，不再被引用，无法撤销。`;
  if (!(await confirmDialog(text))) return;
  try {
    await api(`/api/kbs/${encodeURIComponent(kb.kb_id)}`, { method: "DELETE" });
    notice(`已删除知识库「${kb.title}」。`);
    await onKbsChanged();
  } catch (error) {
    notice(`删除失败：${reason(error)}`, { bad: true });
  }
}

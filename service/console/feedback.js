// 反馈: readers' verdicts on answers, newest first, each with the answer as it was given and its citations. Staff
// mark the passage that answers (one of the citations, or another of the knowledge base) or that the documents do
// not, and with one action add the question to the knowledge base's gold set, so the fix is checked from then on.

import { api, kbPath, reason } from "./api.js";
import { state } from "./state.js";
import { $, clear, el, formatIso, notice } from "./ui.js";

const PAGE = 20;
const VERDICTS = { helpful: "有帮助", wrong: "回答错误", should_have_declined: "应当拒答", should_have_answered: "应当作答" };
const CHANNELS = { api: "接口", widget: "问答窗口", v1: "OpenAI 兼容接口" };
let nextBefore = null;

export function setupFeedback() {
  $("#feedback-status").addEventListener("change", () => loadFeedback());
  $("#feedback-verdict").addEventListener("change", () => loadFeedback());
  $("#feedback-more").addEventListener("click", () => loadPage(false));
}

export function loadFeedback() {
  return loadPage(true);
}

async function loadPage(fresh) {
  const list = $("#feedback-list");
  if (fresh) {
    clear(list);
    nextBefore = null;
  }
  const query = new URLSearchParams({ limit: String(PAGE) });
  if ($("#feedback-status").value) query.set("status", $("#feedback-status").value);
  if ($("#feedback-verdict").value) query.set("verdict", $("#feedback-verdict").value);
  if (nextBefore) query.set("before", nextBefore);
  let page;
  try {
    page = await api(kbPath(state.kbId, `/feedback?${query}`));
  } catch (error) {
    notice(`读取反馈失败：${reason(error)}`, { bad: true });
    return;
  }
  for (const item of page.data) list.append(card(item));
  if (fresh && page.data.length === 0) list.append(el("li", { class: "muted" }, "没有这样的反馈。"));
  nextBefore = page.next_before;
  $("#feedback-more").hidden = !nextBefore;
}

function card(item) {
  const box = el("li", { class: `feedback ${item.status}`, "data-feedback-id": item.id });
  fill(box, item);
  return box;
}

function fill(box, item) {
  box.className = `feedback ${item.status}`;
  const status = item.gold_id ? "已加入标准问题集" : item.status === "resolved" ? "已处理" : "待处理";
  clear(box).append(
    el("div", { class: "feedback-head" },
      el("span", { class: `verdict-tag ${item.verdict}` }, VERDICTS[item.verdict] || item.verdict),
      el("span", { class: "muted" }, `${formatIso(item.created_at)} · ${item.given_by} · ${CHANNELS[item.channel] || item.channel}`),
      el("span", { class: "feedback-status" }, status)),
    el("p", { class: "feedback-question" }, "问题：", el("strong", {}, item.question)),
    answerAsGiven(item.answer),
    citations(item.citations),
    readerSays(item),
    marking(item),
  );
  if (!item.gold_id) box.append(review(box, item));
}

function answerAsGiven(answer) {
  const block = el("div", { class: "answer-as-given" }, el("div", { class: "muted" }, "当时的回答"));
  if (!answer.answerable) block.append(el("p", { class: "verdict no" }, `（拒答${answer.declined_reason ? `：${answer.declined_reason}` : ""}）`));
  if (answer.short_answer) block.append(el("p", {}, "简答：", el("strong", {}, answer.short_answer)));
  block.append(el("p", { class: "answer" }, answer.text || "（无回答）"));
  return block;
}

function citations(list) {
  if (!list.length) return el("p", { class: "muted" }, "（当时没有引用）");
  return el("ol", { class: "feedback-citations", "aria-label": "当时的引用" }, list.map((c) => el("li", {},
    el("span", { class: "passage-title" }, c.title || c.doc_id), c.section.length ? ` › ${c.section.join(" › ")}` : "",
    c.quote ? el("div", { class: "passage-text" }, c.quote) : null)));
}

function readerSays(item) {
  const lines = [];
  if (item.comment) lines.push(el("p", {}, "读者说明：", item.comment));
  if (item.correct_text) lines.push(el("p", {}, "读者给出的正确答案：", item.correct_text));
  if (item.correct_passage) {
    const p = item.correct_passage;
    lines.push(el("p", {}, "读者指出的片段：", `${p.title || p.doc_id}${p.quote ? `：${p.quote}` : ""}`));
  }
  return lines.length ? el("div", { class: "reader-says" }, lines) : null;
}

function marking(item) {
  const mark = item.marked;
  if (!mark) return null;
  const who = `（${mark.marked_by}，${formatIso(mark.marked_at)}）`;
  if (mark.kind === "not_in_documents") return el("p", { class: "marked" }, `已标为：文档中没有答案${who}`);
  const where = `${mark.title || mark.doc_id}${mark.section.length ? ` › ${mark.section.join(" › ")}` : ""}`;
  return el("p", { class: "marked" }, `已标出答案所在片段：${where}：`, el("mark", {}, mark.quote || ""), who);
}

// The staff's review: pick the passage (a citation, or another by document id) and the words that answer.
function review(box, item) {
  const form = el("div", { class: "review" });
  const name = `passage-${item.id}`;
  const doc = el("input", { autocomplete: "off", spellcheck: "false", "aria-label": "文档编号" });
  const quote = el("textarea", { rows: "2", "aria-label": "答案所在的原文（从片段中复制，越精确越好）" });
  const choices = el("fieldset", { class: "modes-choice" }, el("legend", {}, "答案所在片段"));
  const options = [...item.citations.map((c) => ({ doc_id: c.doc_id, chunk_id: c.chunk_id, quote: c.quote, label: c.title || c.doc_id }))];
  if (item.correct_passage) options.unshift({ ...item.correct_passage, label: `读者指出：${item.correct_passage.title || item.correct_passage.doc_id}` });
  let chosen = null;
  const pick = (option) => {
    doc.value = option ? option.doc_id : "";
    doc.readOnly = Boolean(option);  // a cited passage names its document; "其他片段" asks for one
    quote.value = option?.quote || "";
    chosen = option;
  };
  options.forEach((option, i) => {
    const radio = el("input", { type: "radio", name, checked: i === 0, onchange: () => pick(option) });
    choices.append(el("label", { class: "check" }, radio, ` ${option.label}`));
  });
  const other = el("input", { type: "radio", name, checked: options.length === 0, onchange: () => pick(null) });
  choices.append(el("label", { class: "check" }, other, " 其他片段（填文档编号）"));
  pick(options[0] || null);
  const error = el("p", { class: "error", role: "alert", hidden: true });
  const send = async (body, done) => {
    error.hidden = true;
    try {
      const updated = await api(kbPath(state.kbId, `/feedback/${encodeURIComponent(item.id)}`), { method: "PATCH", json: body });
      notice(done);
      fill(box, updated);
      box.querySelector(".review button")?.focus();
    } catch (failure) {
      error.textContent = `${reason(failure)}${failure.message ? `（${failure.message}）` : ""}`;
      error.hidden = false;
    }
  };
  const markPassage = () => {
    const passage = { doc_id: doc.value.trim(), quote: quote.value.trim() };
    if (chosen?.chunk_id != null) passage.chunk_id = chosen.chunk_id;
    if (!passage.doc_id || !passage.quote) {
      error.textContent = "请选择片段并填写答案所在的原文。";
      error.hidden = false;
      return;
    }
    send({ passage }, "已标出答案所在片段。");
  };
  const actions = el("div", { class: "form-actions" },
    el("button", { type: "button", class: "primary", onclick: markPassage }, "标为正确片段"),
    el("button", { type: "button", onclick: () => send({ not_in_documents: true, status: "resolved" }, "已标为：文档中没有答案。") }, "文档中没有答案"));
  if (item.marked?.kind === "passage") {
    actions.append(el("button", { type: "button", class: "primary", onclick: () => addToGold(box, item) }, "加入标准问题集"));
  }
  form.append(choices, el("label", {}, "文档编号", doc), el("label", {}, "答案所在的原文（从片段中复制，越精确越好）", quote), error, actions);
  return form;
}

async function addToGold(box, item) {
  try {
    const gold = await api(kbPath(state.kbId, `/feedback/${encodeURIComponent(item.id)}/gold`), { method: "POST", json: {} });
    notice(`已把「${item.question}」加入本知识库的标准问题集（${gold.id}），评测会一直检查它。`);
    const updated = await api(kbPath(state.kbId, `/feedback/${encodeURIComponent(item.id)}`));
    fill(box, updated);
  } catch (error) {
    notice(`加入失败：${reason(error)}`, { bad: true });
  }
}

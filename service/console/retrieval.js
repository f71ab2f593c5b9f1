// 检索测试: one question, each retrieval mode side by side: ranked passages with one 0–100% relevance (the raw
// dense, lexical and ranking scores on demand) and evidence sentence (POST search), then the answer, the short
// answer and the abstention (POST ask).

import { api, DECLINED, kbPath, MODES, reason } from "./api.js";
import { state } from "./state.js";
import { $, clear, el, formatNumber } from "./ui.js";

export function setupRetrieval() {
  $("#test-form").addEventListener("submit", (event) => {
    event.preventDefault();
    run();
  });
  $("#test-raw").addEventListener("click", (event) => {
    const on = event.currentTarget.getAttribute("aria-pressed") !== "true";
    event.currentTarget.setAttribute("aria-pressed", String(on));
    $("#test-results").classList.toggle("show-raw", on);
  });
}

// One 0–100% relevance per passage, the same formula in every mode so the columns compare: half the cosine
// (already 0–1), half the BM25 score over the best BM25 of the column (BM25 has no scale of its own). The mode's
// own ranking score (a learned ranker's, in hybrid mode, has no fixed scale either) is among the raw scores.
const RELEVANCE_HOW = "语义相似度（余弦）与关键词匹配度（BM25 除以本栏最高 BM25）各占一半";

function relevance(hit, bestLexical) {
  const dense = Math.min(1, Math.max(0, hit.dense_score));
  const lexical = bestLexical > 0 ? Math.max(0, hit.lexical_score) / bestLexical : 0;
  return Math.min(1, 0.5 * dense + 0.5 * lexical);
}

async function run() {
  const query = $("#test-query").value.trim();
  const results = clear($("#test-results"));
  if (!query) return;
  const topK = Number($("#test-top-k").value);
  results.setAttribute("aria-busy", "true");
  const columns = MODES.map(([mode, label]) => {
    const column = el("section", { class: "mode", "data-mode": mode, "aria-label": label }, el("h3", {}, label));
    column.append(el("p", { class: "muted" }, "检索中…"));
    results.append(column);
    return fill(column, mode, query, topK);
  });
  await Promise.all(columns);
  results.removeAttribute("aria-busy");
}

async function fill(column, mode, query, topK) {
  const body = { top_k: topK, mode };
  try {
    const [found, answered] = await Promise.all([
      api(kbPath(state.kbId, "/search"), { method: "POST", json: { ...body, query } }),
      api(kbPath(state.kbId, "/ask"), { method: "POST", json: { ...body, question: query } }),
    ]);
    column.lastChild.remove();
    column.append(verdict(answered), answerBlock(answered), passages(found.results));
    column.append(el("p", { class: "muted" }, `检索 ${found.took_ms} 毫秒，作答 ${answered.took_ms} 毫秒`));
  } catch (error) {
    column.lastChild.replaceWith(el("p", { class: "error" }, reason(error)));
  }
}

function verdict(answered) {
  const score = `相关度 ${formatNumber(answered.relevance)}，阈值 ${formatNumber(answered.min_relevance)}`;
  if (answered.answerable) return el("p", { class: "verdict yes" }, `作答：文档能回答这个问题（${score}）。`);
  const why = DECLINED[answered.declined_reason] || answered.declined_reason || "";
  return el("p", { class: "verdict no" }, `不作答：${why}（${score}）`);
}

function answerBlock(answered) {
  const block = el("div", { class: "answer-block" });
  if (answered.short_answer) {
    block.append(el("p", { class: "short" }, "简答：", el("strong", {}, answered.short_answer.text)));
  }
  block.append(el("p", { class: "answer" }, answered.answer || "（无回答）"));
  return block;
}

function passages(results) {
  if (results.length === 0) return el("p", { class: "muted" }, "没有检索到片段。");
  const list = el("ol", { class: "passages", "aria-label": "检索到的片段" });
  const bestLexical = Math.max(...results.map((hit) => hit.lexical_score));
  for (const hit of results) {
    const share = relevance(hit, bestLexical);
    const where = hit.section.length ? ` · ${hit.section.join(" › ")}` : "";
    const pages = hit.pages ? ` · 第 ${hit.pages[0]}${hit.pages[1] !== hit.pages[0] ? `–${hit.pages[1]}` : ""} 页` : "";
    list.append(
      el(
        "li",
        { class: "passage", "data-doc-id": hit.doc_id },
        el("div", { class: "passage-title" }, hit.title),
        el("div", { class: "muted" }, `${hit.source}${where}${pages}`),
        el(
          "div",
          { class: "relevance", title: `相关度：${RELEVANCE_HOW}` },
          el("meter", { min: "0", max: "1", value: share.toFixed(3), "aria-hidden": "true" }),
          ` 相关度 ${Math.round(share * 100)}%`,
        ),
        el(
          "div",
          { class: "scores raw-scores" },
          `原始分数：本方式排序 ${formatNumber(hit.score)} · 语义（余弦）${formatNumber(hit.dense_score)} · 关键词（BM25）${formatNumber(hit.lexical_score, 2)}`,
        ),
        evidence(hit),
        el("details", {}, el("summary", {}, "片段全文"), el("p", { class: "passage-text" }, withEvidence(hit))),
      ),
    );
  }
  return list;
}

function evidence(hit) {
  if (!hit.evidence) return el("p", { class: "passage-text muted" }, "（没有找到证据句）");
  return el("p", { class: "passage-text" }, "证据句：", el("mark", {}, hit.text.slice(hit.evidence.start, hit.evidence.end)));
}

// The passage text with its evidence sentence marked: three text nodes, the middle one in <mark>.
function withEvidence(hit) {
  const text = hit.text;
  if (!hit.evidence) return [text];
  const { start, end } = hit.evidence;
  return [text.slice(0, start), el("mark", { title: "证据句" }, text.slice(start, end)), text.slice(end)];
}

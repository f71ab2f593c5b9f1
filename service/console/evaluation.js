// 评测 (admin): run the gold set as a job with a progress bar, and show the last runs' tables and plot.

import { api, kbPath, MODES, reason } from "./api.js";
import { state } from "./state.js";
import { $, cell, clear, el, formatTime, notice } from "./ui.js";

const POLL_MS = 500;
const MODE_NAMES = Object.fromEntries(MODES);
const METRICS = [
  ["doc@1", "首位文档命中率"],
  ["doc@3", "前 3 文档命中率"],
  ["passage@1", "首位片段含答案"],
  ["passage@3", "前 3 片段含答案"],
  ["mrr@10", "MRR@10"],
  ["answer", "回答正确率"],
  ["short_f1", "简答 F1"],
  ["abstain_r_near", "相近问题拒答率"],
  ["abstain_r_off", "无关问题拒答率"],
  ["false_abstain", "误拒答率"],
  ["faithful", "回答忠于原文"],
  ["p50_ms", "耗时中位数（毫秒）"],
  ["p95_ms", "耗时 95%（毫秒）"],
];
let following = null;

export function setupEvaluation() {
  $("#eval-start").addEventListener("click", start);
}

export async function loadEvaluations() {
  try {
    const { data } = await api(kbPath(state.kbId, "/evaluations"));
    const list = clear($("#eval-runs"));
    for (const run of data) list.append(await runBlock(run));
    const active = data.find((run) => run.state === "queued" || run.state === "running");
    if (active) follow(active.id);
  } catch (error) {
    notice(reason(error), { bad: true });
  }
}

async function start() {
  const modes = [...document.querySelectorAll('input[name="eval-mode"]:checked')].map((box) => box.value);
  if (modes.length === 0) {
    notice("请至少选择一种检索方式。", { bad: true });
    return;
  }
  try {
    const run = await api(kbPath(state.kbId, "/evaluations"), { method: "POST", json: { modes } });
    notice("评测已开始。");
    await loadEvaluations();
    follow(run.id);
  } catch (error) {
    notice(error.code === "conflict" ? "已有评测在运行，请等它结束。" : reason(error), { bad: true });
  }
}

function follow(runId) {
  if (following === runId) return;
  following = runId;
  const tick = async () => {
    if (following !== runId) return;
    const run = await api(kbPath(state.kbId, `/evaluations/${encodeURIComponent(runId)}`)).catch(() => null);
    if (!run) return;
    const block = document.querySelector(`.eval-run[data-run-id="${CSS.escape(runId)}"]`);
    if (run.state === "done" || run.state === "failed") {
      following = null;
      if (block) block.replaceWith(await runBlock(run));
      notice(run.state === "done" ? "评测完成。" : "评测失败。", { bad: run.state !== "done" });
      return;
    }
    if (block) block.querySelector("progress").value = run.progress;
    setTimeout(tick, POLL_MS);
  };
  setTimeout(tick, POLL_MS);
}

async function runBlock(run) {
  const states = { queued: "排队中", running: "运行中", done: "完成", failed: "失败" };
  const modes = run.modes.map((m) => MODE_NAMES[m] || m).join("、");
  const block = el(
    "article",
    { class: "eval-run", "data-run-id": run.id, "data-state": run.state },
    el("h3", {}, `${formatTime(run.created_at)} · ${modes} · ${states[run.state] || run.state}`),
  );
  if (run.state === "queued" || run.state === "running") {
    block.append(el("progress", { max: "1", value: String(run.progress), "aria-label": "评测进度" }));
    return block;
  }
  if (run.state === "failed") {
    block.append(el("p", { class: "error" }, `评测失败：${run.error || "原因不明，请查看服务器日志"}`));
    return block;
  }
  block.append(el("p", { class: "muted" }, `${run.questions} 个问题`), summaryTable(run), calibration(run));
  if (run.plot) block.append(await plot(run));
  return block;
}

function summaryTable(run) {
  const modes = Object.keys(run.summary);
  const head = el("tr", {}, el("th", { scope: "col" }, "指标"), modes.map((m) => el("th", { scope: "col" }, MODE_NAMES[m] || m)));
  const rows = METRICS.map(([key, label]) => {
    const values = modes.map((m) => {
      const value = run.summary[m][key];
      const shown = value === undefined || value === null ? "—" : key.endsWith("_ms") ? value.toFixed(1) : value.toFixed(3);
      return cell(MODE_NAMES[m] || m, shown, "num");
    });
    return el("tr", {}, cell("指标", label), values);
  });
  return el("div", { class: "table-wrap" }, el("table", { class: "stack eval-table" }, el("thead", {}, head), el("tbody", {}, rows)));
}

function calibration(run) {
  const found = run.abstention;
  if (!found) return el("p", { class: "muted" }, "");
  const text = `拒答阈值：当前配置 ${Number(found.configured).toFixed(3)}；本次评测中最能区分可答与不可答问题的阈值是 ${Number(found.threshold).toFixed(3)}（准确率 ${Number(found.accuracy).toFixed(3)}）。`;
  return el("p", { class: "hint" }, text);
}

// The plot needs the token, which an <img src> cannot send: fetched, then shown as a data: URL.
async function plot(run) {
  const image = el("img", { alt: `评测图表：各检索方式的质量指标与耗时分布（${formatTime(run.created_at)}）` });
  try {
    const blob = await api(kbPath(state.kbId, `/evaluations/${encodeURIComponent(run.id)}/plot.png`));
    image.src = await new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(reader.result);
      reader.onerror = reject;
      reader.readAsDataURL(blob);
    });
  } catch {
    return el("p", { class: "muted" }, "图表暂时无法载入。");
  }
  return image;
}

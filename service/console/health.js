// 运行状况: the knowledge base's size, the ingestion jobs, and per route the requests, rates and latencies,
// read from GET /metrics (Prometheus text); rates are the change between two readings.

import { api, kbPath, reason } from "./api.js";
import { state } from "./state.js";
import { $, cell, clear, el, formatSeconds } from "./ui.js";

const REFRESH_MS = 5000;
const LINE = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /(\w+)="((?:[^"\\]|\\.)*)"/g;
let timer = null;
let previous = null;

export function startHealth() {
  stopHealth();
  refresh();
  timer = setInterval(refresh, REFRESH_MS);
}

export function stopHealth() {
  if (timer !== null) clearInterval(timer);
  timer = null;
}

async function refresh() {
  try {
    const [kb, health, metrics] = await Promise.all([
      api(kbPath(state.kbId, "")),
      api("/api/health"),
      api("/metrics"),
    ]);
    const samples = parse(metrics);
    showCards(kb, health, samples);
    showRoutes(samples);
  } catch (error) {
    clear($("#health-cards")).append(el("p", { class: "error" }, reason(error)));
  }
}

export function parse(text) {
  const samples = [];
  for (const line of text.split("\n")) {
    const match = LINE.exec(line);
    if (!match || line.startsWith("#")) continue;
    const labels = {};
    for (const [, key, value] of (match[2] || "").matchAll(LABEL)) labels[key] = value;
    samples.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return samples;
}

function stat(label, value, { small = false } = {}) {
  const shown = el("div", { class: small ? "stat-value small" : "stat-value" }, value);
  return el("div", { class: "stat" }, shown, el("div", { class: "stat-label" }, label));
}

function showCards(kb, health, samples) {
  const jobs = Object.fromEntries(samples.filter((s) => s.name === "policyqa_ingestion_jobs").map((s) => [s.labels.state, s.value]));
  const inFlight = samples.find((s) => s.name === "policyqa_http_requests_in_flight");
  clear($("#health-cards")).append(
    stat(`文档（${kb.title}）`, String(kb.documents)),
    stat("片段", String(kb.chunks)),
    stat("default 的任务：排队 / 处理中", `${jobs.queued ?? 0} / ${jobs.running ?? 0}`),
    stat("default 的任务：完成 / 失败", `${jobs.done ?? 0} / ${jobs.failed ?? 0}`),
    stat("正在处理的请求", String(inFlight ? inFlight.value : 0)),
    stat("索引版本", health.build_id, { small: true }),
    stat("向量模型", health.embedder, { small: true }),
  );
}

// Per route: requests, errors, the mean, and the median and 95th percentile read off the histogram's buckets.
function showRoutes(samples) {
  const routes = new Map();
  const of = (route) => {
    if (!routes.has(route)) routes.set(route, { requests: 0, errors: 0, sum: 0, count: 0, buckets: [] });
    return routes.get(route);
  };
  for (const s of samples) {
    const route = s.labels.route;
    if (!route) continue;
    if (s.name === "policyqa_http_requests_total") of(route).requests += s.value;
    else if (s.name === "policyqa_http_errors_total") of(route).errors += s.value;
    else if (s.name === "policyqa_http_request_duration_seconds_sum") of(route).sum = s.value;
    else if (s.name === "policyqa_http_request_duration_seconds_count") of(route).count = s.value;
    else if (s.name === "policyqa_http_request_duration_seconds_bucket") of(route).buckets.push([Number(s.labels.le), s.value]);
  }
  const now = Date.now();
  const body = clear($("#route-table tbody"));
  const sorted = [...routes.entries()].sort((a, b) => b[1].requests - a[1].requests);
  for (const [route, r] of sorted) {
    const before = previous && previous.routes.get(route);
    const minutes = previous ? (now - previous.at) / 60000 : 0;
    const rate = before && minutes > 0 ? ((r.requests - before.requests) / minutes).toFixed(1) : "—";
    body.append(
      el(
        "tr",
        {},
        cell("路由", route, "source-cell"),
        cell("请求", String(r.requests), "num"),
        cell("每分钟", rate, "num"),
        cell("出错", String(r.errors), "num"),
        cell("平均", formatSeconds(r.count ? r.sum / r.count : null), "num"),
        cell("中位数", formatSeconds(quantile(r.buckets, 0.5)), "num"),
        cell("95%", formatSeconds(quantile(r.buckets, 0.95)), "num"),
      ),
    );
  }
  previous = { at: now, routes };
}

// The upper bound of the first bucket holding the q-th request: an estimate no finer than the buckets.
function quantile(buckets, q) {
  const sorted = buckets.filter(([le]) => Number.isFinite(le)).sort((a, b) => a[0] - b[0]);
  const total = buckets.find(([le]) => !Number.isFinite(le));
  if (!total || total[1] === 0) return null;
  const found = sorted.find(([, count]) => count >= q * total[1]);
  return found ? found[0] : null;
}

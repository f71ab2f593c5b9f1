// Uploads: a file field (several files), drag-and-drop, the 上传 button, and a progress bar per job.
// Each file goes in its own request, so that one unreadable file has its own reason and stops no other.

import { api, ApiError, followJob, jobFailure, kbPath, reason } from "./api.js";
import { state } from "./state.js";
import { $, clear, el } from "./ui.js";

const STATES = { queued: "排队中", running: "处理中", done: "完成", failed: "失败" };
let chosen = [];
let onChanged = () => {};

export function setupUpload(afterChange) {
  onChanged = afterChange;
  const input = $("#files");
  input.addEventListener("change", () => choose([...input.files]));
  const zone = $("#drop-zone");
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    choose([...event.dataTransfer.files]);
  });
  $("#upload-button").addEventListener("click", uploadChosen);
}

function choose(files) {
  chosen = files;
  const list = clear($("#chosen"));
  for (const file of files) list.append(el("li", {}, `${file.name}（${sizeText(file.size)}）`));
  $("#upload-button").disabled = files.length === 0;
}

function sizeText(bytes) {
  return bytes < 1e6 ? `${Math.max(1, Math.round(bytes / 1e3))} KB` : `${(bytes / 1e6).toFixed(1)} MB`;
}

async function uploadChosen() {
  const files = chosen;
  const kbId = state.kbId;
  choose([]);
  $("#files").value = "";
  const finished = await Promise.all(files.map((file) => uploadOne(kbId, file)));
  if (finished.some((job) => job && job.state === "done")) onChanged();
}

async function uploadOne(kbId, file) {
  const row = jobRow(file.name, $("#upload-jobs"));
  const form = new FormData();
  form.append("files", file, file.name);
  try {
    const { jobs } = await api(kbPath(kbId, "/documents"), { method: "POST", form });
    return await follow(kbId, jobs[0], row);
  } catch (error) {
    row.fail(error instanceof ApiError ? reason(error) : String(error));
    return null;
  }
}

export async function replaceDocument(kbId, docId, file, list) {
  const row = jobRow(`替换 ${file.name}`, list);
  const form = new FormData();
  form.append("file", file, file.name);
  try {
    const job = await api(kbPath(kbId, `/documents/${encodeURIComponent(docId)}`), { method: "PUT", form });
    return await follow(kbId, job, row);
  } catch (error) {
    row.fail(error instanceof ApiError ? reason(error) : String(error));
    return null;
  }
}

// The job's progress in its row until it is done or failed, and at the end what happened.
function follow(kbId, job, row) {
  return followJob(kbId, job, (seen) => row.show(seen));
}

function jobRow(name, list) {
  const bar = el("progress", { max: "1", value: "0", "aria-label": `${name} 的进度` });
  const status = el("span", { class: "job-state" }, "上传中");
  const detail = el("p", { class: "job-reason muted" });
  const item = el("li", { class: "job" }, el("div", { class: "job-head" }, el("span", {}, name), status), bar, detail);
  list.prepend(item);
  return {
    show(job) {
      item.className = `job ${job.state}`;
      bar.value = job.state === "done" ? 1 : job.progress || 0;
      status.textContent = STATES[job.state] || job.state;
      detail.textContent = outcome(job);
    },
    fail(text) {
      item.className = "job failed";
      status.textContent = "失败";
      detail.textContent = text;
      detail.classList.remove("muted");
    },
  };
}

function outcome(job) {
  if (job.state === "failed") return jobFailure(job);
  if (job.state !== "done") return "";
  if (job.duplicate) return `内容与已有文档（${job.doc_id}）完全相同，没有重复收录。`;
  const read = job.read_summary ? `；${job.read_summary}` : "";
  return `已收录为 ${job.doc_id}，可以提问和检索了${read}。`;
}

// The public HTTP API, as the console calls it: the token from sessionStorage in the Authorization header only.
// Errors come back as ApiError with the API's code, and reason() says them in plain Chinese.

const TOKEN_KEY = "policyqa.console.token";

export const session = {
  get token() { return sessionStorage.getItem(TOKEN_KEY); },
  save(token) { sessionStorage.setItem(TOKEN_KEY, token); },
  clear() { sessionStorage.removeItem(TOKEN_KEY); },
};

export class ApiError extends Error {
  constructor(status, code, message, details = []) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;  // the API's per-row or per-field reasons, where it gives them
  }
}

let onUnauthorized = () => {};
export function whenUnauthorized(handler) { onUnauthorized = handler; }

// text: the body as text whatever its type (a JSON Lines export is "json" by its type, but not one JSON value);
// blob: the body as a Blob (a spreadsheet download).
export async function api(path, { method = "GET", json, form, token = session.token, quiet401 = false, text = false, blob = false } = {}) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form) {
    body = form;
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body, credentials: "omit", cache: "no-store" });
  } catch {
    throw new ApiError(0, "network", "network error");
  }
  const type = response.headers.get("content-type") || "";
  let data;
  if (blob && response.ok) data = await response.blob();
  else if (text && response.ok) data = await response.text();
  else if (type.includes("json")) data = await response.json().catch(() => null);
  else if (type.startsWith("image/")) data = await response.blob();
  else data = await response.text();
  if (!response.ok) {
    const error = (data && data.error) || {};
    if (response.status === 401 && !quiet401) onUnauthorized();
    throw new ApiError(response.status, error.code || "error", error.message || response.statusText, error.details || []);
  }
  return data;
}

// A knowledge base's own routes: default's are also the unprefixed ones, but the prefixed form works for all.
export function kbPath(kbId, rest) {
  return `/api/kbs/${encodeURIComponent(kbId)}${rest}`;
}

const REASONS = {
  needs_ocr: "文字识别（OCR）没有在文件里找到文字：可能是空白页、没有文字的照片，或扫描得太淡、太模糊。请以 200–300 dpi 重新扫描后再上传。",
  file_too_large: "文件太大：页数、行数或图片尺寸超过了系统一次能读取的上限。请拆分成几个文件后再上传。",
  payload_too_large: "文件太大，超过了上传大小上限。请压缩或拆分后再上传。",
  damaged_file: "文件无法读取：可能已损坏，或是把别的格式改了扩展名。请用原程序重新另存后再上传。",
  encrypted_file: "文件设有密码或已加密：请另存一份不带密码的副本再上传。",
  unsupported_format: "不支持这种文件格式。可上传：文本、网页、Word、WPS、PDF、OFD、表格、幻灯片或图片。",
  parse_timeout: "读取文件超时：文件可能过大或结构异常。请拆分后再上传。",
  invalid_input: "文件无法收录：里面没有可以读取的文字，或文件名不合要求。",
  invalid_request: "填写的内容不符合要求。",
  malformed_json: "请求格式有误。",
  unauthorized: "令牌不正确或已被撤销，请重新登录。",
  forbidden: "此令牌没有执行这项操作的权限。",
  not_found: "找不到该对象：可能已被删除。",
  conflict: "与现有内容冲突（例如编号已被使用，或该知识库不能删除）。",
  too_many_requests: "请求太频繁，请稍候再试。",
  timeout: "服务器处理超时，请稍后再试。",
  unavailable: "服务器繁忙，请稍后再试。",
  job_timeout: "处理超时：文件可能过大，请拆分后再上传。",
  network: "无法连接服务器，请检查网络后重试。",
  internal_error: "服务器内部出错，请联系管理员查看日志。",
};

// invalid_input is the readers' general refusal: its English message tells which case it is.
const INVALID_INPUT = [
  [/damaged|not a valid|incomplete|cannot be (read|rendered)/i, REASONS.damaged_file],
  [/password|encrypt/i, REASONS.encrypted_file],
  [/binary data/i, "文件看起来是二进制数据，不是文本或表格：请确认文件格式和扩展名一致。"],
  [/is empty|no text|holds no/i, "文件里没有可以收录的文字。"],
  [/file name/i, "文件名不合要求：不能含路径或控制字符，长度不超过 255 个字符。"],
  [/more memory/i, REASONS.file_too_large],
];

export function reason(error) {
  if (error.code === "invalid_input") {
    const found = INVALID_INPUT.find(([pattern]) => pattern.test(error.message || ""));
    if (found) return found[1];
  }
  const known = REASONS[error.code];
  if (known) return known;
  return `操作失败（${error.status || ""} ${error.code || "error"}）。`;
}

const JOB_POLL_MS = 400;

// Polls jobs/{id} of a knowledge base until the job is done or failed; onProgress sees it each time, the last too.
export async function followJob(kbId, job, onProgress = () => {}) {
  while (job.state === "queued" || job.state === "running") {
    onProgress(job);
    await new Promise((resolve) => setTimeout(resolve, JOB_POLL_MS));
    job = await api(kbPath(kbId, `/jobs/${encodeURIComponent(job.id)}`));
  }
  onProgress(job);
  return job;
}

// A job that failed carries the reader's message in English: its cause, in Chinese where we can tell it.
export function jobFailure(job) {
  const text = job.error || job.message || "";
  if (/OCR found no text/i.test(text)) return REASONS.needs_ocr;
  if (/timed? ?out|took longer/i.test(text)) return REASONS.job_timeout;
  return "处理失败：服务器没能把这份文件收录进索引。";
}

export const DECLINED = {
  off_topic: "文档里没有足够相关的内容（最相关句子的相关度低于阈值）。",
  missing_qualifier: "问题里点名的年份、批次、地点或文件名，文档中没有。",
  missing_answer_type: "文档谈到了这个主题，但没有问题要的那种数字、日期或名称。",
  missing_subject: "文档里有这类数字，但说的不是问题问的对象。",
};

export const MODES = [
  ["hybrid", "融合（语义＋关键词）"],
  ["dense", "仅语义向量"],
  ["lexical", "仅关键词（BM25）"],
];

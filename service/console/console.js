// The admin console: sign-in, the knowledge base chosen, and the views. Everything goes through the public API.

import { api, ApiError, reason, session, whenUnauthorized } from "./api.js";
import { loadAudit, setupAudit } from "./audit.js";
import { loadDocuments, setupDocuments } from "./documents.js";
import { loadEvaluations, setupEvaluation } from "./evaluation.js";
import { loadFaq, setupFaq } from "./faq.js";
import { loadFeedback, setupFeedback } from "./feedback.js";
import { startHealth, stopHealth } from "./health.js";
import { loadKbs, setupKbs } from "./kbs.js";
import { loadKeys, setupKeys } from "./keys.js";
import { setupRetrieval } from "./retrieval.js";
import { loadTerms, setupTerms } from "./terms.js";
import { loadTrash, loadTrashWindow, setupTrash } from "./trash.js";
import { canWrite, isAdmin, state } from "./state.js";
import { $, notice } from "./ui.js";
import { setupUpload } from "./upload.js";

const ROLES = { admin: "管理员", write: "写权限密钥", read: "只读密钥" };

function showView(name) {
  for (const view of document.querySelectorAll(".view")) view.hidden = view.id !== `view-${name}`;
  for (const tab of document.querySelectorAll(".tabs button")) {
    const current = tab.dataset.view === name || (name === "doc" && tab.dataset.view === "docs");
    if (current) tab.setAttribute("aria-current", "page");
    else tab.removeAttribute("aria-current");
  }
  if (name === "health") startHealth();
  else stopHealth();
  if (name === "eval") loadEvaluations();
  if (name === "keys") loadKeys();
  if (name === "audit") loadAudit();
  if (name === "terms") loadTerms();
  if (name === "faq") loadFaq();
  if (name === "feedback") loadFeedback();
  if (name === "trash") loadTrash();
  const heading = $(`#view-${name} h2`);
  if (heading) heading.focus();
}

async function signIn(token) {
  const error = $("#sign-in-error");
  error.hidden = true;
  try {
    state.caller = await api("/api/caller", { token, quiet401: true });
  } catch (failure) {
    session.clear();
    error.textContent = failure instanceof ApiError && failure.status === 401 ? "管理令牌不正确，请检查后重新输入。" : reason(failure);
    error.hidden = false;
    $("#token").focus();
    return;
  }
  if (state.caller.role === "read") {
    state.caller = null;
    error.textContent = "这是只读密钥：控制台需要管理员令牌或有写权限的密钥。";
    error.hidden = false;
    return;
  }
  session.save(token);
  $("#token").value = "";
  await enter();
}

async function enter() {
  $("#who-text").textContent = `已登录：${ROLES[state.caller.role]}`;
  $("#sign-in").hidden = true;
  $("#who").hidden = false;
  $("#app").hidden = false;
  $('.tabs [data-view="upload"]').hidden = !canWrite();
  $('.tabs [data-view="trash"]').hidden = !canWrite();
  $('.tabs [data-view="eval"]').hidden = !isAdmin();  // running the gold set is the admin's
  $('.tabs [data-view="keys"]').hidden = !isAdmin();
  await refreshAll();
  showView("docs");
}

async function refreshAll() {
  try {
    await loadKbs();
  } catch (error) {
    notice(reason(error), { bad: true });
  }
  await Promise.all([loadDocuments(), loadTrashWindow()]);
}

function signOut(message = "") {
  session.clear();
  state.caller = null;
  stopHealth();
  $("#app").hidden = true;
  $("#who").hidden = true;
  $("#sign-in").hidden = false;
  const error = $("#sign-in-error");
  error.textContent = message;
  error.hidden = !message;
  $("#token").focus();
}

function setup() {
  $("#sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("#token").value.trim();
    if (token) signIn(token);
  });
  $("#sign-out").addEventListener("click", () => signOut());
  whenUnauthorized(() => signOut("登录已失效（令牌被撤销或服务器令牌已更换），请重新登录。"));
  for (const tab of document.querySelectorAll(".tabs button")) {
    tab.addEventListener("click", () => showView(tab.dataset.view));
  }
  $("#kb-select").addEventListener("change", async (event) => {
    state.kbId = event.target.value;
    notice("");
    await Promise.all([loadDocuments(), loadTrashWindow()]);
    showView("docs");
  });
  setupDocuments(showView);
  setupUpload(loadDocuments);
  setupRetrieval();
  setupKbs(refreshAll);
  setupEvaluation();
  setupKeys();
  setupAudit();
  setupTerms();
  setupFaq();
  setupFeedback();
  setupTrash(loadDocuments);
  if (session.token) signIn(session.token);
}

setup();

/*
 * policyqa chat widget: one <script> tag puts a floating "ask the policy documents"
 * button on any page. No framework, no build step, no third-party requests.
 *
 *   <script src="https://HOST/widget.js" data-api="https://HOST" data-title="政策问答"
 *           data-placeholder="…" data-question="(optional)" data-z-index="2147483000"
 *           data-kb="(optional knowledge base id)" data-key="(optional read key)" async></script>
 *
 * data-kb picks the knowledge base (default: the unprefixed routes, i.e. `default`).
 * data-filters narrows the documents answered from, as /api/ask's "filters" (JSON), e.g.
 * data-filters='{"levels": ["省"], "validity": ["current"]}'; a malformed value is ignored, with a console warning.
 * data-key is sent as a bearer key, for a knowledge base that is not public: it is
 * visible to every visitor of the page, so give it a read key scoped to that knowledge base only.
 *
 * Under each answer, 👍 and 👎 buttons post the reader's verdict to the knowledge base's feedback
 * route (docs/feedback.md) with the answer as it was shown; 👎 first asks what was wrong.
 *
 * Everything lives in an open shadow root under one host element, so the host
 * page's styles do not reach the widget and the widget's styles do not leak out.
 * Document and answer text only ever enters the DOM through textContent or text
 * nodes: passages are untrusted text, and must never be parsed as HTML.
 */
(function () {
  "use strict";

  // document.currentScript is null once the script has finished its first run
  // (and for some loaders), hence the selector fallback.
  var script = document.currentScript || document.querySelector('script[src$="widget.js"]');
  if (!script || window.__policyqaWidget) return; // a second copy of the tag must not add a second widget
  window.__policyqaWidget = true;

  var scriptUrl = new URL(script.src, document.baseURI);
  var apiAttr = script.getAttribute("data-api");
  // Missing data-api: the API is where the script came from. Empty: the page's own origin.
  var api = (apiAttr === null ? scriptUrl.origin : apiAttr).replace(/\/+$/, "");
  var kb = script.getAttribute("data-kb") || "";
  var key = script.getAttribute("data-key") || "";
  var kbPath = kb ? "/api/kbs/" + encodeURIComponent(kb) : "/api";
  var config = {
    askUrl: api + kbPath + "/ask",
    feedbackUrl: api + kbPath + "/feedback",
    key: key,
    cssUrl: new URL("widget.css", scriptUrl).href,
    title: script.getAttribute("data-title") || "政策问答",
    placeholder: script.getAttribute("data-placeholder") || "请输入您的问题",
    question: script.getAttribute("data-question") || "",
    zIndex: parseInt(script.getAttribute("data-z-index"), 10) || 2147483000,
    filters: parsedFilters(script.getAttribute("data-filters")),
  };
  var NOT_COVERED = "文档未涉及此问题";

  function parsedFilters(value) {
    if (!value) return null;
    try {
      var parsed = JSON.parse(value);
      if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) return parsed;
    } catch (ignored) { /* reported below */ }
    if (window.console) window.console.warn("policyqa widget: data-filters is not a JSON object; ignored");
    return null;
  }
  // Earlier turns sent with each question, so a follow-up (那镇海区呢？) is answered in context.
  var HISTORY_TURNS = 6;
  var MARKER = /\[(\d+)\]/g;

  /* ---------- small DOM helpers (text only, never HTML) ---------- */

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      if (name === "text") node.textContent = attrs[name];
      else if (name === "className") node.className = attrs[name];
      else node.setAttribute(name, attrs[name]);
    });
    (children || []).forEach(function (child) {
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  var uid = 0;
  function nextId(prefix) {
    uid += 1;
    return "pq-" + prefix + "-" + uid;
  }

  /* ---------- the widget's DOM ---------- */

  function build() {
    var host = el("div", { id: "policyqa-widget-host" });
    // Inline, so host-page rules about divs cannot move or hide the host; the
    // children are position: fixed themselves, so the host takes no space.
    host.style.cssText =
      "position:fixed;right:0;bottom:0;width:0;height:0;margin:0;padding:0;border:0;" +
      "visibility:hidden;z-index:" + config.zIndex;
    var root = host.attachShadow({ mode: "open" });
    var link = el("link", { rel: "stylesheet", href: config.cssUrl });
    // Stay invisible until the styles arrive, so the page never flashes unstyled controls.
    link.onload = link.onerror = function () { host.style.visibility = "visible"; };

    var launcher = el("button", {
      type: "button", className: "launcher", "aria-label": "打开政策问答",
      "aria-expanded": "false", "aria-controls": "pq-panel",
    });
    launcher.appendChild(chatIcon());

    var titleEl = el("h2", { id: "pq-title", className: "title", text: config.title });
    var closeBtn = el("button", { type: "button", className: "close", "aria-label": "关闭", text: "×" });
    var log = el("div", { className: "log", role: "log", "aria-live": "polite", tabindex: "0",
      "aria-label": "对话记录" });
    var input = el("textarea", {
      className: "input", rows: "2", maxlength: "1000",
      "aria-label": "输入问题", placeholder: config.placeholder,
    });
    input.value = config.question;
    var send = el("button", { type: "submit", className: "send", text: "发送" });
    var form = el("form", { className: "composer" }, [input, send]);
    var panel = el("section", {
      id: "pq-panel", className: "panel", role: "dialog", "aria-modal": "false", "aria-labelledby": "pq-title",
    }, [el("header", { className: "header" }, [titleEl, closeBtn]), log, form]);
    panel.hidden = true;

    root.append(link, launcher, panel);
    return { host: host, launcher: launcher, panel: panel, closeBtn: closeBtn, log: log,
      input: input, send: send, form: form };
  }

  function chatIcon() {
    // SVG built with createElementNS: no markup strings anywhere in the widget.
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    var path = document.createElementNS(ns, "path");
    path.setAttribute("d", "M4 4h16a2 2 0 0 1 2 2v9a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z" +
      "M7 9h10M7 12.5h7");
    svg.appendChild(path);
    return svg;
  }

  /* ---------- opening, closing, keyboard ---------- */

  function wire(ui) {
    function open() {
      ui.panel.hidden = false;
      ui.launcher.setAttribute("aria-expanded", "true");
      ui.input.focus();
    }
    function close() {
      ui.panel.hidden = true;
      ui.launcher.setAttribute("aria-expanded", "false");
      ui.launcher.focus(); // focus must not be lost inside a hidden panel
    }
    ui.launcher.addEventListener("click", function () { (ui.panel.hidden ? open : close)(); });
    ui.closeBtn.addEventListener("click", close);
    ui.panel.addEventListener("keydown", function (event) {
      if (event.key === "Escape") { event.preventDefault(); close(); }
    });
    ui.input.addEventListener("keydown", function (event) {
      // isComposing: Enter that confirms a Chinese IME candidate must not send the question.
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
        event.preventDefault();
        submit();
      }
    });
    ui.form.addEventListener("submit", function (event) { event.preventDefault(); submit(); });

    var busy = false;
    var history = []; // {role, content} of the answered turns, oldest first
    function submit() {
      var question = ui.input.value.trim();
      if (!question || busy) return;
      busy = true;
      ui.send.disabled = true;
      ui.input.value = "";
      append(ui.log, el("div", { className: "msg user", text: question }));
      var message = new AssistantMessage(ui.log, question);
      ask(question, message, history.slice(-HISTORY_TURNS)).finally(function () {
        if (message.completed !== null) {
          history.push({ role: "user", content: question }, { role: "assistant", content: message.completed });
        }
        busy = false;
        ui.send.disabled = false;
      });
    }
  }

  function append(log, node) {
    // Follow the conversation unless the reader has scrolled up to read something.
    var atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    log.appendChild(node);
    if (atBottom) log.scrollTop = log.scrollHeight;
  }

  /* ---------- talking to the API ---------- */

  function requestBody(question, history) {
    var body = { question: question, top_k: 5, stream: true, history: history };
    if (config.filters) body.filters = config.filters;
    return body;
  }

  function jsonHeaders(accept) {
    var headers = { "content-type": "application/json", accept: accept };
    if (config.key) headers.authorization = "Bearer " + config.key;
    return headers;
  }

  function ask(question, message, history) {
    var headers = jsonHeaders("text/event-stream");
    return fetch(config.askUrl, {
      method: "POST",
      headers: headers,
      body: JSON.stringify(requestBody(question, history)),
    }).then(function (response) {
      if (!response.ok) {
        return response.json().then(
          function (body) { message.fail(errorText(body, response.status)); },
          function () { message.fail("请求失败（HTTP " + response.status + "）。"); }
        );
      }
      var type = response.headers.get("content-type") || "";
      if (type.indexOf("text/event-stream") === -1) {
        // A server without streaming answers with the whole JSON at once.
        return response.json().then(function (body) {
          message.citations(body.citations || []);
          if (body.short_answer) message.shortAnswer(body.short_answer);
          message.delta(body.answer || "");
          message.done(body);
        });
      }
      return readEvents(response.body, function (name, data) {
        if (name === "citations") message.citations(data.citations || []);
        else if (name === "short_answer") message.shortAnswer(data);
        else if (name === "delta") message.delta(data.text || "");
        else if (name === "done") message.done(data);
        else if (name === "error") message.fail(errorText(data, 0));
      }).then(function () { message.ended(); });
    }).catch(function () {
      message.fail("无法连接问答服务，请检查网络后重试。");
    });
  }

  function errorText(body, status) {
    var error = body && body.error;
    if (error && error.message) return "出错了：" + error.message;
    return status ? "请求失败（HTTP " + status + "）。" : "出错了，请稍后再试。";
  }

  // Server-Sent Events over a fetch body: EventSource cannot POST, so the frames
  // ("event: x" / "data: {...}" lines, ended by a blank line) are parsed here.
  function readEvents(body, onEvent) {
    var reader = body.getReader();
    var decoder = new TextDecoder("utf-8");
    var buffer = "";

    function dispatch(frame) {
      var name = "message";
      var data = [];
      frame.split("\n").forEach(function (line) {
        if (line.indexOf("event:") === 0) name = line.slice(6).trim();
        else if (line.indexOf("data:") === 0) data.push(line.slice(5).replace(/^ /, ""));
      });
      if (!data.length) return;
      var payload;
      try { payload = JSON.parse(data.join("\n")); } catch (e) { return; }
      onEvent(name, payload);
    }

    function pump() {
      return reader.read().then(function (chunk) {
        // stream: true keeps a multi-byte character split across chunks intact.
        buffer += decoder.decode(chunk.value || new Uint8Array(), { stream: !chunk.done });
        buffer = buffer.replace(/\r\n?/g, "\n");
        var end;
        while ((end = buffer.indexOf("\n\n")) !== -1) {
          dispatch(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
        if (chunk.done) {
          if (buffer.trim()) dispatch(buffer);
          return;
        }
        return pump();
      });
    }
    return pump();
  }

  /* ---------- one assistant message ---------- */

  function AssistantMessage(log, question) {
    this.log = log;
    this.question = question;
    this.byNumber = {};
    this.cards = {};
    this.text = "";
    this.pending = ""; // a trailing "[1" held back until its "]" arrives
    this.finished = false;
    this.completed = null; // the whole answer, once it has arrived: it joins the conversation's history
    this.declined = false;
    this.status = el("p", { className: "status", text: "正在检索…" });
    this.answer = el("p", { className: "answer" });
    this.sources = el("div", { className: "sources" });
    this.node = el("div", { className: "msg bot", "aria-busy": "true" }, [this.status, this.answer, this.sources]);
    append(log, this.node);
  }

  AssistantMessage.prototype.citations = function (list) {
    var self = this;
    list.forEach(function (c) { self.byNumber[c.n] = c; });
    // Every passage weak means the question was declined: no marker may look like a cited answer.
    this.declined = list.length > 0 && list.every(function (c) { return c.weak; });
  };

  // The span that answers ("25个街道") goes first, above the quotes that prove it.
  AssistantMessage.prototype.shortAnswer = function (short) {
    if (this.short || !short || !short.text) return;
    var citation = this.byNumber[short.n];
    var children = [el("span", { className: "short-label", text: "答：" }), el("strong", { text: short.text })];
    if (citation) children.push(this.citeButton(citation));
    this.short = el("p", { className: "short-answer" }, children);
    this.node.insertBefore(this.short, this.answer);
  };

  AssistantMessage.prototype.delta = function (piece) {
    if (this.status.parentNode) this.status.remove();
    var text = this.pending + piece;
    var cut = text.search(/\[\d*$/);
    this.pending = cut === -1 ? "" : text.slice(cut);
    text = cut === -1 ? text : text.slice(0, cut);
    this.text += text;
    this.renderAnswer(text);
    this.scroll();
  };

  // Appends answer text as text nodes, with each [n] marker a citation button.
  AssistantMessage.prototype.renderAnswer = function (text) {
    var last = 0;
    var match;
    MARKER.lastIndex = 0;
    while ((match = MARKER.exec(text))) {
      this.answer.appendChild(document.createTextNode(text.slice(last, match.index)));
      var citation = this.byNumber[match[1]];
      if (citation && !this.declined) this.answer.appendChild(this.citeButton(citation));
      else if (!this.declined) this.answer.appendChild(document.createTextNode(match[0]));
      last = match.index + match[0].length;
    }
    this.answer.appendChild(document.createTextNode(text.slice(last)));
  };

  AssistantMessage.prototype.citeButton = function (citation) {
    var self = this;
    var button = el("button", {
      type: "button", className: "cite", text: String(citation.n),
      "aria-label": "引用 " + citation.n + "：" + citation.title, "aria-expanded": "false",
    });
    button.dataset.n = citation.n;
    button.addEventListener("click", function () { self.toggle(citation); });
    return button;
  };

  AssistantMessage.prototype.done = function (data) {
    this.finished = true;
    var full = data.answer || "";
    this.completed = full;
    if (this.pending) { this.text += this.pending; this.renderAnswer(this.pending); this.pending = ""; }
    if (data.short_answer && data.answerable !== false) this.shortAnswer(data.short_answer);
    if (data.answerable === false) {
      this.declined = true;
      this.showNotCovered(full);
    } else if (full && full !== this.text) {
      // Deltas lost or reordered: the full answer in `done` is the authority.
      this.answer.replaceChildren();
      this.text = full;
      this.renderAnswer(full);
    }
    this.settle();
    this.offerFeedback(data);
  };

  AssistantMessage.prototype.showNotCovered = function (full) {
    var self = this;
    var notice = el("div", { className: "not-covered", role: "note" }, [el("strong", { text: NOT_COVERED })]);
    this.answer.replaceChildren(document.createTextNode(full.replace(MARKER, "")));
    this.node.insertBefore(notice, this.answer);
    var nearest = Object.keys(this.byNumber).map(function (n) { return self.byNumber[n]; });
    if (!nearest.length) return;
    var list = el("ul", { className: "nearest-list", "aria-label": "最接近的段落" });
    nearest.forEach(function (c) {
      var button = el("button", { type: "button", className: "nearest", "aria-expanded": "false",
        text: c.title + (c.section && c.section.length ? " › " + c.section.join(" › ") : "") });
      button.dataset.n = c.n;
        var item = el("li", {}, [button]);
      // The card opens right under its own entry, not below the whole list.
      button.addEventListener("click", function () { self.toggle(c, item); });
      list.appendChild(item);
    });
    this.node.insertBefore(list, this.sources);
  };

  AssistantMessage.prototype.fail = function (text) {
    if (this.status.parentNode) this.status.remove();
    this.finished = true;
    this.node.classList.add("failed");
    this.node.appendChild(el("p", { className: "error", role: "alert", text: text }));
    this.settle();
  };

  // The stream closed: without a done or error event the answer is incomplete.
  AssistantMessage.prototype.ended = function () {
    if (!this.finished) this.fail("回答中断了，请重试。");
  };

  AssistantMessage.prototype.settle = function () {
    if (this.status.parentNode) this.status.remove();
    this.node.removeAttribute("aria-busy");
    this.scroll();
  };

  AssistantMessage.prototype.scroll = function () {
    var log = this.log;
    if (log.scrollHeight - log.scrollTop - log.clientHeight < 120) log.scrollTop = log.scrollHeight;
  };

  /* ---------- source cards ---------- */

  AssistantMessage.prototype.toggle = function (citation, container) {
    var card = this.cards[citation.n];
    if (!card) {
      card = this.cards[citation.n] = sourceCard(citation);
      (container || this.sources).appendChild(card);
    } else {
      card.hidden = !card.hidden;
    }
    if (!card.hidden) card.scrollIntoView({ block: "nearest" }); // the card opens below the fold otherwise
    var expanded = String(!card.hidden);
    // Every button pointing at this passage (a marker may repeat) shows the same state.
    this.node.querySelectorAll(".cite, .nearest").forEach(function (button) {
      if (button.dataset.n === String(citation.n)) {
        button.setAttribute("aria-expanded", expanded);
        button.setAttribute("aria-controls", card.id);
      }
    });
  };

  function sourceCard(c) {
    var meta = [];
    if (c.section && c.section.length) meta.push(c.section.join(" › "));
    if (c.pages && c.pages.length) {
      meta.push(c.pages[0] === c.pages[1] || c.pages.length === 1 ?
        "第 " + c.pages[0] + " 页" : "第 " + c.pages[0] + "–" + c.pages[1] + " 页");
    }
    // A scanned page: how sure the OCR was, so the reader knows to check the original.
    if (typeof c.ocr_confidence === "number") meta.push("扫描识别置信度 " + Math.round(c.ocr_confidence * 100) + "%");
    var card = el("article", { id: nextId("card"), className: "card" + (c.weak ? " weak" : "") }, [
      el("h3", { className: "card-title" }, [
        el("span", { className: "card-n", text: "[" + c.n + "]" }), " " + (c.title || c.source || ""),
      ]),
    ]);
    var origin = documentLine(c.document);
    if (origin) card.appendChild(el("p", { className: "card-doc", text: origin }));
    var validity = c.document && c.document.validity;
    if (validity && validity.note) {
      card.appendChild(el("p", { className: "card-validity " + validity.status, role: "note", text: validity.note }));
    }
    if (meta.length) card.appendChild(el("p", { className: "card-meta", text: meta.join(" · ") }));
    card.appendChild(highlighted(c.text || "", c.highlights || []));
    return card;
  }

  // Who issued the cited document, its 文号 and date, and whether it is in force.
  function documentLine(d) {
    if (!d) return "";
    var parts = [];
    if (d.issuers && d.issuers.length) parts.push(d.issuers.join("、"));
    if (d.doc_number) parts.push(d.doc_number);
    var date = d.published_date || d.written_date;
    if (date) parts.push(date);
    if (d.validity && d.validity.label) parts.push(d.validity.label);
    return parts.join(" · ");
  }

  // The passage as text slices, the quoted sentences wrapped in <mark>.
  function highlighted(text, ranges) {
    var p = el("p", { className: "card-text" });
    var at = 0;
    ranges
      .map(function (r) { return { start: Math.max(0, r.start), end: Math.min(text.length, r.end) }; })
      .filter(function (r) { return r.end > r.start; })
      .sort(function (a, b) { return a.start - b.start; })
      .forEach(function (r) {
        var start = Math.max(r.start, at); // overlapping ranges: mark each character once
        if (r.end <= start) return;
        p.appendChild(document.createTextNode(text.slice(at, start)));
        p.appendChild(el("mark", { text: text.slice(start, r.end) }));
        at = r.end;
      });
    p.appendChild(document.createTextNode(text.slice(at)));
    return p;
  }

  /* ---------- feedback on an answer ---------- */

  var VERDICTS = [
    ["wrong", "回答有误"],
    ["should_have_declined", "文档里没有答案，不该这样回答"],
    ["should_have_answered", "文档里有答案，应该回答"],
  ];
  var FEEDBACK_LIMITS = { citations: 8, quote: 400, title: 200, headings: 8, heading: 100, answer: 4000 };

  function thumbIcon(down) {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    if (down) svg.setAttribute("class", "down");
    var path = document.createElementNS(ns, "path");
    path.setAttribute("d", "M3 10h4v11H3z M7 10l4-8a2 2 0 0 1 2 2v5h6a2 2 0 0 1 2 2.3l-1.3 8A2 2 0 0 1 17.7 21H7");
    svg.appendChild(path);
    return svg;
  }

  // The answer as it was shown, in the shape POST …/feedback takes (each field within its bounds).
  AssistantMessage.prototype.feedbackBody = function (data, verdict, comment) {
    var limits = FEEDBACK_LIMITS;
    var self = this;
    var citations = Object.keys(this.byNumber).slice(0, limits.citations).map(function (n) {
      var c = self.byNumber[n];
      var text = c.text || "";
      var quoted = (c.highlights || []).map(function (h) { return text.slice(h.start, h.end); })
        .filter(Boolean).join("…");
      return {
        n: c.n, doc_id: c.doc_id, title: (c.title || "").slice(0, limits.title), chunk_id: c.chunk_id,
        section: (c.section || []).slice(0, limits.headings).map(function (h) { return h.slice(0, limits.heading); }),
        quote: (quoted || text).slice(0, limits.quote),
      };
    });
    var body = {
      question: this.question,
      answer: {
        text: (data.answer || "").slice(0, limits.answer),
        short_answer: data.short_answer ? data.short_answer.text : null,
        answerable: data.answerable !== false,
        declined_reason: data.declined_reason || null,
      },
      citations: citations, verdict: verdict, channel: "widget",
    };
    if (comment) body.comment = comment;
    return body;
  };

  AssistantMessage.prototype.offerFeedback = function (data) {
    var self = this;
    var up = el("button", { type: "button", className: "fb-up", "aria-label": "有帮助" }, [thumbIcon(false)]);
    var down = el("button", { type: "button", className: "fb-down", "aria-label": "没有帮助",
      "aria-expanded": "false" }, [thumbIcon(true)]);
    this.feedback = el("div", { className: "feedback", role: "group", "aria-label": "这个回答有帮助吗？" },
      [el("span", { className: "fb-label", text: "有帮助吗？" }), up, down]);
    this.node.appendChild(this.feedback);
    up.addEventListener("click", function () { self.sendFeedback(data, "helpful", ""); });
    down.addEventListener("click", function () { self.toggleChoice(data, down); });
  };

  // 👎 opens a small form: what was wrong, and an optional comment.
  AssistantMessage.prototype.toggleChoice = function (data, down) {
    var self = this;
    if (!this.choice) this.choice = this.choiceForm(data, down);
    else this.choice.hidden = !this.choice.hidden;
    down.setAttribute("aria-expanded", String(!this.choice.hidden));
    if (!this.choice.hidden) this.choice.querySelector("input:checked").focus();
    self.scroll();
  };

  AssistantMessage.prototype.choiceForm = function (data, down) {
    var self = this;
    var name = nextId("verdict");
    var preferred = data.answerable === false ? "should_have_answered" : "wrong";
    var options = VERDICTS.map(function (verdict) {
      var input = el("input", { type: "radio", name: name, value: verdict[0] });
      input.checked = verdict[0] === preferred;
      return el("label", { className: "fb-option" }, [input, el("span", { text: verdict[1] })]);
    });
    var comment = el("textarea", { className: "fb-comment", rows: "2", maxlength: "1000",
      "aria-label": "补充说明（可选）", placeholder: "补充说明（可选）" });
    var cancel = el("button", { type: "button", className: "fb-cancel", text: "取消" });
    var form = el("form", { id: nextId("fb"), className: "fb-choice" }, [
      el("fieldset", {}, [el("legend", { text: "哪里不对？" })].concat(options)),
      comment,
      el("div", { className: "fb-actions" }, [el("button", { type: "submit", className: "fb-submit", text: "提交" }),
        cancel]),
    ]);
    function hide() {
      form.hidden = true;
      down.setAttribute("aria-expanded", "false");
      down.focus();
    }
    cancel.addEventListener("click", hide);
    form.addEventListener("keydown", function (event) {
      if (event.key === "Escape") { event.preventDefault(); event.stopPropagation(); hide(); }
    });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      self.sendFeedback(data, form.querySelector("input:checked").value, comment.value.trim());
    });
    down.setAttribute("aria-controls", form.id);
    this.node.appendChild(form);
    return form;
  };

  AssistantMessage.prototype.sendFeedback = function (data, verdict, comment) {
    var self = this;
    var buttons = this.node.querySelectorAll(".feedback button, .fb-choice button");
    buttons.forEach(function (button) { button.disabled = true; });
    function failed(text) {
      buttons.forEach(function (button) { button.disabled = false; });
      var error = self.node.querySelector(".fb-error") || el("p", { className: "fb-error", role: "alert" });
      error.textContent = text;
      self.node.appendChild(error);
    }
    fetch(config.feedbackUrl, {
      method: "POST", headers: jsonHeaders("application/json"),
      body: JSON.stringify(this.feedbackBody(data, verdict, comment)),
    }).then(function (response) {
      if (response.ok) return self.thank(verdict);
      return response.json().then(
        function (body) { failed(errorText(body, response.status)); },
        function () { failed("请求失败（HTTP " + response.status + "）。"); }
      );
    }).catch(function () { failed("无法连接问答服务，请稍后再试。"); });
  };

  AssistantMessage.prototype.thank = function (verdict) {
    var thanks = el("p", { className: "fb-thanks", role: "status", tabindex: "-1",
      text: verdict === "helpful" ? "谢谢您的反馈！" : "谢谢，您的反馈已提交，工作人员会核查这个回答。" });
    this.feedback.replaceWith(thanks);
    [this.choice, this.node.querySelector(".fb-error")].forEach(function (node) { if (node) node.remove(); });
    thanks.focus(); // the buttons it replaces had the focus
    this.scroll();
  };

  /* ---------- start ---------- */

  function start() {
    var ui = build();
    wire(ui);
    document.body.appendChild(ui.host);
  }

  if (document.body) start();
  else document.addEventListener("DOMContentLoaded", start);
})();

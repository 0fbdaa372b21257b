// The grid-centre console. Every word comes from /console/api/me (the catalogs); every rule from the server.
"use strict";
(function () {
  const TIBETAN_DIGITS = "༠༡༢༣༤༥༦༧༨༩";
  const state = { me: null, language: null, sort: "created", order: "asc", selected: null, view: "queue" };
  const $ = (id) => document.getElementById(id);

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }
  function digits(text) {
    text = String(text);
    return state.language === "bo" ? text.replace(/[0-9]/g, (d) => TIBETAN_DIGITS[+d]) : text;
  }
  function when(iso) { return iso ? digits(iso.slice(0, 16).replace("T", " ")) : "—"; }
  function ui(key) { return state.me.words.ui[key] || key; }
  function withLanguage(path) { return path + (path.includes("?") ? "&" : "?") + "language=" + state.language; }

  function alertBox(message, ok) {
    const box = $("alert");
    box.textContent = message || "";
    box.className = ok ? "ok" : "";
    box.hidden = !message;
  }

  async function call(path, options) {
    const response = await fetch(withLanguage(path), Object.assign({ credentials: "same-origin", cache: "no-store" }, options || {}));
    let body = null;
    try { body = await response.json(); } catch (e) { body = null; }
    if (response.status === 401) { signedOut(body && body.error ? body.error.message : ""); throw new Error("signed out"); }
    if (!response.ok) {
      const message = body && body.error ? body.error.message : (state.me ? ui("error") : "error");
      const error = new Error(message);
      error.code = body && body.error ? body.error.code : "error";
      throw error;
    }
    return body;
  }

  function signedOut(message) {
    const box = el("div", "signed-out");
    String(message || (state.me ? ui("signed_out") : "")).split("\n").forEach((line, i) => {
      const p = el("p", "", line);
      p.lang = i === 0 ? "zh-Hans" : "bo";
      box.append(p);
    });
    document.querySelector("main").replaceChildren(box);
  }

  // ---------------------------------------------------------------- start and words

  async function load(language) {
    state.me = await call("/console/api/me" + (language ? "?language=" + language : ""));
    state.language = state.me.language;
    document.documentElement.lang = state.language === "bo" ? "bo" : "zh-Hans";
    document.title = ui("title");
    $("title").textContent = ui("title");
    $("tab-queue").textContent = ui("queue");
    $("tab-dashboard").textContent = ui("dashboard");
    $("tab-bulletins").textContent = ui("bulletins");
    $("sign-out").textContent = ui("sign_out");
    $("lang-zh").setAttribute("aria-pressed", String(state.language === "zh"));
    $("lang-bo").setAttribute("aria-pressed", String(state.language === "bo"));
    document.querySelectorAll("[data-word]").forEach((node) => { node.textContent = ui(node.dataset.word); });
    document.querySelectorAll("th button[data-sort]").forEach((b) => { b.textContent = ui(b.dataset.sort); });
    fillFilters();
    fillStatsForm();
    showView(state.view);
  }

  function options(select, items, keep) {
    const previous = keep ? select.value : null;
    select.replaceChildren(...items.map(([value, label]) => { const o = el("option", "", label); o.value = value; return o; }));
    if (previous !== null && items.some(([v]) => v === previous)) select.value = previous;
  }

  function fillFilters() {
    const me = state.me;
    options($("f-state"), [["open", ui("open")], ["all", ui("all")]].concat(me.states.map((s) => [s, me.words.states[s] || s])), true);
    options($("f-matter"), [["", ui("all")]].concat(me.matters.map((m) => [m.code, m.name])), true);
    options($("f-grid"), [["", ui("all")]].concat(me.grids.map((g) => [g.code, g.name])), true);
    options($("f-flag"), [["", ui("all")], ["overdue", ui("overdue")], ["due_soon", ui("due_soon")]], true);
  }

  function showView(view) {
    state.view = view;
    ["queue", "dashboard", "bulletins"].forEach((name) => {
      $("view-" + name).hidden = name !== view;
      const tab = $("tab-" + name);
      if (name === view) tab.setAttribute("aria-current", "page"); else tab.removeAttribute("aria-current");
    });
    alertBox("");
    if (view === "queue") { loadQueue(); if (state.selected) openCase(state.selected); }
    if (view === "dashboard") loadStats();
    if (view === "bulletins") showBulletins();
  }

  // ---------------------------------------------------------------- the queue

  async function loadQueue() {
    const form = new FormData($("filters"));
    const query = new URLSearchParams();
    for (const [key, value] of form.entries()) if (value) query.set(key, value);
    query.set("sort", state.sort);
    query.set("order", state.order);
    document.querySelectorAll("th button[data-sort]").forEach((b) => {
      const th = b.parentElement;
      if (b.dataset.sort === state.sort) th.setAttribute("aria-sort", state.order === "asc" ? "ascending" : "descending");
      else th.removeAttribute("aria-sort");
    });
    let body;
    try { body = await call("/console/api/cases?" + query.toString()); } catch (e) { alertBox(e.message); return; }
    $("count").textContent = digits(body.shown) + (body.total > body.shown ? " / " + digits(body.total) : "");
    const rows = body.cases.map((c) => {
      const tr = el("tr", (c.overdue ? "overdue" : "") + (c.due_soon ? " due-soon" : ""));
      tr.dataset.number = c.number;
      if (c.number === state.selected) tr.classList.add("selected");
      tr.append(el("td", "number", c.number), el("td", "state", state.me.words.states[c.state] || c.state),
        el("td", "", c.matter), el("td", "", c.grid), el("td", "", when(c.created_at)),
        el("td", "", c.due ? when(c.due) + (c.overdue ? " · " + ui("overdue") : "") : "—"));
      tr.addEventListener("click", () => openCase(c.number));
      return tr;
    });
    if (!rows.length) { const tr = el("tr"); const td = el("td", "", ui("nothing")); td.colSpan = 6; tr.append(td); rows.push(tr); }
    document.querySelector("#queue tbody").replaceChildren(...rows);
  }

  async function openCase(number) {
    state.selected = number;
    document.querySelectorAll("#queue tbody tr").forEach((tr) => tr.classList.toggle("selected", tr.dataset.number === number));
    let detail;
    try { detail = await call("/console/api/cases/" + encodeURIComponent(number)); } catch (e) { alertBox(e.message); return; }
    renderCase(detail);
  }

  function renderCase(c) {
    const words = state.me.words;
    const box = $("detail");
    box.hidden = false;
    document.querySelector(".split").classList.add("showing");
    const back = el("button", "back", "← " + ui("back"));
    back.type = "button";
    back.addEventListener("click", () => { box.hidden = true; state.selected = null; document.querySelector(".split").classList.remove("showing"); });
    const head = el("h2", "", c.number + " · " + (words.states[c.state] || c.state));
    const facts = el("dl");
    const fact = (label, value) => { if (value === null || value === undefined || value === "") return; facts.append(el("dt", "", label), el("dd", "", value)); };
    fact(ui("matter"), c.matter_name);
    fact(ui("grid"), c.grid_name);
    fact(ui("description"), c.description);
    fact(ui("created"), when(c.created_at));
    fact(ui("deadline"), c.verification_deadline ? when(c.verification_deadline) : (c.handling_deadline ? when(c.handling_deadline) : null));
    if (c.reporter === null && c.anonymous) facts.append(el("dt", "", ui("anonymous")), el("dd", "", ""));
    else if (c.reporter && c.reporter.phone) fact(ui("reporter_phone"), c.reporter.phone);
    fact(ui("result"), c.result);
    if (c.satisfaction) fact(ui("rating"), words.ratings[c.satisfaction] || c.satisfaction);
    const parts = [back, head, facts];

    if (c.location && c.location.latitude !== null && c.location.latitude !== undefined) {
      parts.push(el("h3", "", ui("location")));
      const p = el("p", "", digits(c.location.latitude.toFixed(5) + ", " + c.location.longitude.toFixed(5)) + " ");
      const link = el("a", "geo", ui("open_map"));
      link.href = c.location.geo;
      p.append(link);
      if (c.location.address) p.append(el("span", "", " · " + c.location.address));
      parts.push(p);
    }
    if (c.photos && c.photos.length) {
      parts.push(el("h3", "", ui("photos")));
      const photos = el("div", "photos");
      c.photos.forEach((src) => { const img = el("img"); img.src = src; img.alt = ""; img.loading = "lazy"; photos.append(img); });
      parts.push(photos);
    }
    parts.push(el("h3", "", ui("actions")));
    const actions = el("div", "actions");
    if (!c.allowed_actions.length) actions.append(el("p", "", ui("no_actions")));
    c.allowed_actions.forEach((a) => {
      const button = el("button", "", words.actions[a.action] || words.events[a.action] || a.action);
      button.type = "button";
      button.dataset.action = a.action;
      button.addEventListener("click", () => actionForm(c, a, actions));
      actions.append(button);
    });
    parts.push(actions);
    parts.push(el("h3", "", ui("timeline")));
    const timeline = el("ol", "timeline");
    c.timeline.forEach((e) => {
      const li = el("li");
      const t = el("time", "", when(e.at));
      t.dateTime = e.at;
      const code = (e.data && e.data.department) || "";
      const department = state.me.departments.find((d) => d.code === code);
      const name = (words.events[e.action] || e.action).replace("{department}", department ? department.name : code);
      li.append(t, el("span", "", name + " · " + (words.roles[e.actor_role] || e.actor_role)));
      if (e.note) li.append(el("span", "note", e.note));
      timeline.append(li);
    });
    parts.push(timeline);
    box.replaceChildren(...parts);
  }

  function field(name) {
    const words = state.me.words;
    const label = el("label", "", words.inputs[name] || name);
    let input;
    if (name === "department") {
      input = el("select");
      state.me.departments.forEach((d) => { const o = el("option", "", d.name); o.value = d.code; input.append(o); });
    } else if (name === "hours") {
      input = el("select");
      [24, 48, 72, 168].forEach((h) => { const o = el("option", "", digits(h)); o.value = String(h); input.append(o); });
    } else if (name === "rating") {
      input = el("select");
      Object.entries(words.ratings).forEach(([k, v]) => { const o = el("option", "", v); o.value = k; input.append(o); });
    } else if (name === "deadline") {
      input = el("input");
      input.type = "datetime-local";
    } else {
      input = el("textarea");
      input.rows = 3;
      input.maxLength = 2000;
    }
    input.name = name;
    label.append(input);
    return label;
  }

  function actionForm(c, action, container) {
    const existing = container.querySelector("form.inputs");
    if (existing) existing.remove();
    const form = el("form", "inputs");
    action.needs.forEach((name) => form.append(field(name)));
    const buttons = el("div", "buttons");
    const ok = el("button", "", ui("send"));
    ok.type = "submit";
    const cancel = el("button", "", ui("cancel"));
    cancel.type = "button";
    cancel.addEventListener("click", () => form.remove());
    buttons.append(ok, cancel);
    form.append(buttons);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const inputs = {};
      for (const [key, value] of new FormData(form).entries()) {
        if (!String(value).trim()) continue;
        inputs[key] = key === "hours" ? Number(value) : (key === "deadline" ? value + ":00+08:00" : value);
      }
      ok.disabled = true;
      try {
        const detail = await call("/console/api/cases/" + encodeURIComponent(c.number) + "/actions/" + action.action, {
          method: "POST",
          headers: { "Content-Type": "application/json", "X-CSRF-Token": state.me.csrf },
          body: JSON.stringify(inputs),
        });
        alertBox(ui("done"), true);
        renderCase(detail);
        loadQueue();
      } catch (e) {
        alertBox(e.message);
        ok.disabled = false;
        if (e.code === "concurrent_change" || e.code === "not_allowed_in_state") openCase(c.number);
      }
    });
    container.append(form);
    const first = form.querySelector("select, textarea, input");
    if (first) first.focus(); else ok.focus();
  }

  // ---------------------------------------------------------------- indicators and bulletins

  function fillStatsForm() {
    options($("s-node"), state.me.units.map((u) => [u.code, u.name]), true);
    if (!$("s-from").value) {
      const month = state.me.months[state.me.months.length - 1];
      const [y, m] = month.split("-").map(Number);
      $("s-from").value = month + "-01";
      $("s-to").value = month + "-" + String(new Date(Date.UTC(y, m, 0)).getUTCDate()).padStart(2, "0");
    }
  }

  function figure(value, kind) {
    if (value === undefined || value === null) return "—";
    if (kind === "rate") return digits((100 * value).toFixed(1) + "%");
    if (kind === "hours") return state.me.words.hours.replace("{hours}", digits(value.toFixed(1)));
    if (kind === "score") return digits(value.toFixed(1));
    return digits(value);
  }

  function valueOf(stats, key) {
    if (key in stats.rates) return stats.rates[key];
    if (key in (stats.times || {})) return stats.times[key].median_hours;
    if (key === "composite_score") return stats.composite_score;
    return stats.counts[key];
  }

  async function loadStats() {
    const query = new URLSearchParams(new FormData($("stats-form")));
    let stats;
    try { stats = await call("/console/api/stats?" + query.toString()); } catch (e) { alertBox(e.message); return; }
    const table = el("table", "figures");
    const body = el("tbody");
    state.me.words.figures.forEach(([key, label, kind]) => {
      const tr = el("tr");
      tr.dataset.key = key;
      tr.append(el("th", "", label), el("td", "", figure(valueOf(stats, key), kind)));
      body.append(tr);
    });
    table.append(body);
    const parts = [table];
    if (stats.children.length) {
      const ranking = el("table", "ranking");
      stats.children.forEach((child) => {
        const tr = el("tr", child.bottom_three ? "bottom" : "");
        tr.append(el("td", "", child.rank ? digits(child.rank) : "—"), el("td", "", state.language === "bo" ? child.node.name_bo : child.node.name_zh),
          el("td", "", figure(child.composite_score, "score")));
        ranking.append(tr);
      });
      parts.push(ranking);
    }
    const from = stats.period.from, to = stats.period.to;
    if (from.endsWith("-01") && from.slice(0, 7) === to.slice(0, 7)) {
      const img = el("img");
      img.src = "/bulletin/" + encodeURIComponent(stats.scope.node.code) + "/" + from.slice(0, 7) + "/chart/rates.png";
      img.alt = "";
      parts.push(img);
    }
    $("stats").replaceChildren(...parts);
  }

  function showBulletins() {
    const items = [];
    state.me.units.forEach((u) => state.me.months.forEach((month) => {
      const li = el("li");
      const page = el("a", "", u.name + " · " + digits(month));
      page.href = "/bulletin/" + encodeURIComponent(u.code) + "/" + month;
      const pdf = el("a", "", "PDF");
      pdf.href = page.href + ".pdf";
      li.append(ui("bulletin_of") + " · ", page, " · ", pdf);
      items.push(li);
    }));
    $("bulletin-list").replaceChildren(...items);
  }

  // ---------------------------------------------------------------- wiring

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("#tabs button").forEach((b) => b.addEventListener("click", () => showView(b.dataset.view)));
    document.querySelectorAll("th button[data-sort]").forEach((b) => b.addEventListener("click", () => {
      state.order = state.sort === b.dataset.sort && state.order === "asc" ? "desc" : "asc";
      state.sort = b.dataset.sort;
      loadQueue();
    }));
    $("filters").addEventListener("change", loadQueue);
    $("stats-form").addEventListener("change", loadStats);
    $("lang-zh").addEventListener("click", () => load("zh"));
    $("lang-bo").addEventListener("click", () => load("bo"));
    $("sign-out").addEventListener("click", async () => {
      try { await call("/console/api/logout", { method: "POST", headers: { "X-CSRF-Token": state.me.csrf } }); } catch (e) { /* signed out anyway */ }
      signedOut();
    });
    load().catch(() => {});
  });
})();

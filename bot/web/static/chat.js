// Web chat for the grid service: one more front door to the same dialogs as the Telegram bot.
// Every text from the server or the person is shown with textContent, never parsed as HTML.
"use strict";

(function () {
  const PREFIX = "gridbot.";
  const MAX_LOG = 200;
  const MAX_SEEN = 300;

  const store = {
    get(key, fallback) {
      try {
        const value = localStorage.getItem(PREFIX + key);
        return value === null ? fallback : JSON.parse(value);
      } catch (e) {
        return fallback;
      }
    },
    set(key, value) {
      try {
        localStorage.setItem(PREFIX + key, JSON.stringify(value));
      } catch (e) {
        /* private mode or full: the chat still works for this visit */
      }
    },
  };

  function randomHex(bytes) {
    const array = new Uint8Array(bytes);
    crypto.getRandomValues(array);
    return Array.from(array, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function newMessageId() {
    return Date.now().toString(36) + "-" + randomHex(5);
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  // -- state -------------------------------------------------------------------------------

  let clientId = store.get("client_id", "");
  if (!/^[0-9a-f]{32}$/.test(clientId)) {
    clientId = randomHex(16);
    store.set("client_id", clientId);
  }
  const browserLanguage = (navigator.language || "").toLowerCase().startsWith("bo") ? "bo" : "zh";
  const state = {
    lang: store.get("lang", browserLanguage) === "bo" ? "bo" : "zh",
    strings: {},
    languages: { zh: "中文", bo: "བོད་ཡིག" },
    limits: { photo_bytes: 10 * 1024 * 1024, text_chars: 2000 },
    log: store.get("log", []),
    queue: store.get("queue", []),
    seen: store.get("seen", []),
    busy: false,
  };
  const queued = new Set(state.queue.map((item) => item.id));
  state.log.forEach((entry) => {
    if (entry.pending && !queued.has(entry.id)) entry.pending = false;
  });

  const logBox = document.getElementById("log");
  const form = document.getElementById("composer");
  const textBox = document.getElementById("text");
  const photoInput = document.getElementById("photo-input");

  function save() {
    store.set("log", state.log.filter((e) => e.who !== "note").slice(-MAX_LOG).map((e) => {
      const copy = Object.assign({}, e);
      delete copy.image;
      delete copy.audio;
      return copy;
    }));
    store.set("queue", state.queue.filter((item) => !item.blob));
    store.set("seen", state.seen.slice(-MAX_SEEN));
    store.set("lang", state.lang);
  }

  function t(key) {
    return state.strings[key] || "";
  }

  // -- rendering ---------------------------------------------------------------------------

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // Mostly Tibetan text gets lang="bo" so that the Tibetan font stack and taller lines apply.
  function markLanguage(node, text) {
    const tibetan = (text.match(/[\u0F00-\u0FFF]/g) || []).length;
    const chinese = (text.match(/[\u3400-\u9FFF]/g) || []).length;
    if (tibetan > chinese) node.lang = "bo";
    else if (chinese) node.lang = "zh-Hans";
  }

  // Phone numbers in the bot's text are links to call (mobile, landline, 110/119/120); case numbers and dates are not.
  const PHONE_NUMBER = /(?<![\w*-])(?:\+86[ -]?)?(?:1\d{10}|0\d{2,3}-?\d{7,8}|11[09]|120)(?![\w*-])/g;

  // Without an emoji font, labels drop their icons (they would be empty boxes); the words stay.
  const EMOJI = /[\p{Extended_Pictographic}\u{1F1E6}-\u{1F1FF}\u2B06\u27A1\u25B6\u25C0\u2714\u2716\u2753\u2705\u26D4\uFE0F]\s*/gu;
  function shown(label) {
    return document.documentElement.classList.contains("no-emoji") ? label.replace(EMOJI, "").trim() || label : label;
  }

  const EXAMPLE_PHONE = "13800000000";

  function withPhoneLinks(node, text) {
    let last = 0;
    for (const match of text.matchAll(PHONE_NUMBER)) {
      if (match[0] === EXAMPLE_PHONE) continue; // the example in "type digits only, for example …" is not to be called
      node.append(text.slice(last, match.index));
      const link = el("a", "tel", match[0]);
      link.href = "tel:" + match[0].replace(/[^0-9+]/g, "");
      node.append(link);
      last = match.index + match[0].length;
    }
    node.append(text.slice(last));
  }

  function bubble(entry, latest, active) {
    const box = el("div", "msg " + entry.who);
    if (entry.notice) box.classList.add("notice");
    if (entry.pending) box.classList.add("pending");
    if (entry.image) {
      const img = el("img", "preview");
      img.src = entry.image;
      img.alt = "";
      box.append(img);
    }
    if (entry.audio) {
      const audio = el("audio", "mine");
      audio.controls = true;
      audio.src = entry.audio;
      box.append(audio);
    }
    if (entry.who === "bot" && entry.reply.media && entry.reply.media.length) addMedia(box, entry.reply.media);
    const text = entry.who === "bot" ? entry.reply.text : entry.text;
    if (text) {
      const p = el("p", "text");
      if (entry.who === "bot" && hasLink(text)) linkify(p, text);
      else if (entry.who === "bot") withPhoneLinks(p, text);
      else p.textContent = shown(text);
      markLanguage(p, text);
      box.append(p);
    }
    if (entry.who === "bot") addControls(box, entry.reply, latest, active);
    if (entry.pending) box.append(el("div", "status", t("sending")));
    return box;
  }

  // Links in the bot's words (a console sign-in link, a bulletin) become links; the rest stays text.
  const LINK = /(https?:\/\/[^\s]+|\/(?:console\/login|bulletin)\/[^\s]+)/g;
  function hasLink(text) {
    LINK.lastIndex = 0;
    const found = LINK.test(text);
    LINK.lastIndex = 0;
    return found;
  }
  function linkify(node, text) {
    node.textContent = "";
    text.split(LINK).forEach((part, index) => {
      if (index % 2 === 0) { if (part) node.append(document.createTextNode(part)); return; }
      const a = el("a", "", part);
      a.href = part;
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      node.append(a);
    });
  }

  // A case's photos and voice notes: short-lived signed links made by the server for this reader.
  function addMedia(box, media) {
    const shelf = el("div", "evidence");
    media.forEach((item) => {
      if (!item.url || item.url.indexOf("/media/") !== 0) return;
      if (item.kind === "voice") {
        const audio = el("audio", "voice");
        audio.controls = true;
        audio.preload = "none";
        audio.src = item.url;
        box.append(audio);
      } else {
        const link = el("a", "photo-link");
        link.href = item.url;
        link.target = "_blank";
        link.rel = "noopener";
        const img = el("img", "photo");
        img.src = item.url;
        img.alt = "";
        img.loading = "lazy";
        link.append(img);
        shelf.append(link);
      }
    });
    if (shelf.childElementCount) box.append(shelf);
  }

  function addLocation(box, location) {
    const lat = Number(location[0]), lon = Number(location[1]);
    if (!Number.isFinite(lat) || !Number.isFinite(lon)) return;
    const link = el("a", "map-link", (t("open_map") || "📍") + " " + lat.toFixed(6) + ", " + lon.toFixed(6));
    link.href = "geo:" + lat.toFixed(6) + "," + lon.toFixed(6);
    box.append(link);
  }

  // Buttons of earlier answers are disabled and out of the Tab order: they belong to finished steps.
  // Those of notices (open a case, rate it) stay usable, like the latest answer's.
  function addControls(box, reply, latest, active) {
    (reply.photo_file_ids || []).forEach((ref) => {
      // Our own images (a chart of indicators) are addressed by path; platform file ids are not shown here.
      if (typeof ref !== "string" || !ref.startsWith("/bulletin/")) return;
      const img = el("img", "chart");
      img.src = ref;
      img.alt = "";
      img.loading = "lazy";
      box.append(img);
    });
    if (reply.location) addLocation(box, reply.location);
    if (reply.buttons && reply.buttons.length) {
      const buttons = el("div", "buttons");
      reply.buttons.forEach((row) => {
        const line = el("div", "row");
        row.forEach((b) => {
          const button = el("button", "", shown(b.label));
          button.type = "button";
          button.dataset.action = b.data;
          markLanguage(button, b.label);
          if (!active) {
            button.disabled = true;
            button.tabIndex = -1;
          }
          button.addEventListener("click", () => send({ kind: "button", data: b.data }, b.label));
          line.append(button);
        });
        buttons.append(line);
      });
      box.append(buttons);
    }
    if (!latest) return; // the location and phone affordances belong to the question being asked now
    if (reply.request_location) {
      const label = shown(reply.location_label || t("share_location"));
      const button = el("button", "action share-location", label);
      button.type = "button";
      markLanguage(button, label);
      button.addEventListener("click", shareLocation);
      box.append(button);
    }
    if (reply.request_contact) {
      const contact = el("form", "contact");
      const input = el("input");
      input.type = "tel";
      input.name = "phone";
      input.autocomplete = "tel";
      input.inputMode = "tel";
      input.maxLength = 32;
      input.placeholder = t("phone_placeholder");
      input.setAttribute("aria-label", t("phone_placeholder"));
      const label = shown(reply.contact_label || t("share_phone"));
      const button = el("button", "action share-phone", label);
      button.type = "submit";
      markLanguage(button, label);
      contact.append(input, button);
      contact.addEventListener("submit", (event) => {
        event.preventDefault();
        const phone = input.value.trim();
        if (phone) send({ kind: "contact", phone: phone }, phone);
      });
      box.append(contact);
    }
  }

  // The log is a live region: new messages are appended and changed ones replaced one by one, so a
  // screen reader announces only what is new (never the whole log again).
  let entryKeys = 0;
  function keyOf(entry) {
    if (!entry.key) entry.key = "e" + (entry.id || "") + "-" + (++entryKeys) + "-" + Date.now().toString(36);
    return entry.key;
  }

  function latestAnswer() {
    let answer = null;
    state.log.forEach((entry) => {
      if (entry.who === "bot" && !entry.notice) answer = entry.answer;
    });
    return answer;
  }

  function render(rebuild) {
    let latest = -1;
    state.log.forEach((entry, i) => {
      if (entry.who === "bot") latest = i;
    });
    const answer = latestAnswer();
    if (rebuild) logBox.replaceChildren();
    const existing = new Map([...logBox.children].map((node) => [node.dataset.key, node]));
    const wanted = new Set(state.log.map(keyOf));
    existing.forEach((node, key) => {
      if (!wanted.has(key)) node.remove();
    });
    let previous = null;
    state.log.forEach((entry, i) => {
      const active = entry.who === "bot" && (entry.notice || entry.answer === answer);
      const version = [entry.pending ? 1 : 0, i === latest ? 1 : 0, active ? 1 : 0].join("");
      let node = existing.get(entry.key);
      if (!node || node.dataset.version !== version) {
        const fresh = bubble(entry, i === latest, active);
        fresh.dataset.key = entry.key;
        fresh.dataset.version = version;
        if (node) node.replaceWith(fresh);
        else if (previous) previous.after(fresh);
        else logBox.prepend(fresh);
        node = fresh;
      }
      previous = node;
    });
    logBox.scrollTop = logBox.scrollHeight;
  }

  // After an answer, keyboard focus goes to its first button (or the text box), not to <body>.
  function focusAnswer() {
    const focused = document.activeElement;
    if (focused && focused !== document.body && !logBox.contains(focused)) return;
    const button = [...logBox.querySelectorAll(".msg.bot button:not([disabled])")].pop();
    const first = button && button.closest(".msg").querySelector("button:not([disabled])");
    (first || textBox).focus({ preventScroll: true });
  }

  function remember(entry) {
    state.log.push(entry);
    if (state.log.length > MAX_LOG) state.log.splice(0, state.log.length - MAX_LOG);
  }

  function note(text) {
    if (!text) return;
    const last = state.log[state.log.length - 1];
    if (last && last.who === "note" && last.text === text) return;
    remember({ who: "note", text: text });
    render();
  }

  // -- language and the page's own words -------------------------------------------------------

  async function loadStrings(lang) {
    try {
      const res = await fetch("/chat/strings?lang=" + encodeURIComponent(lang), { cache: "no-store" });
      if (!res.ok) return;
      const data = await res.json();
      if (data.lang !== state.lang) return; // switched again meanwhile
      state.strings = data.strings;
      state.languages = data.languages || state.languages;
      state.limits = data.limits || state.limits;
      applyStrings();
      markEmoji();
    } catch (e) {
      /* offline: keep the words we have */
    }
  }

  function applyStrings() {
    document.documentElement.lang = state.lang === "bo" ? "bo" : "zh-Hans";
    if (t("title")) document.title = t("title");
    document.querySelectorAll("[data-i18n]").forEach((node) => {
      const text = t(node.dataset.i18n);
      if (text) node.textContent = text;
    });
    document.querySelectorAll("[data-i18n-placeholder]").forEach((node) => {
      node.placeholder = t(node.dataset.i18nPlaceholder);
    });
    document.querySelectorAll("[data-i18n-label]").forEach((node) => {
      const text = t(node.dataset.i18nLabel);
      if (text) {
        node.setAttribute("aria-label", text);
        node.title = text;
      }
    });
    document.querySelectorAll(".lang").forEach((node) => {
      node.setAttribute("aria-pressed", String(node.dataset.lang === state.lang));
    });
    textBox.maxLength = state.limits.text_chars;
    render(); // the messages keep their nodes: a screen reader does not hear the whole log again
  }

  // Where no emoji font exists the icons would be empty boxes: then the buttons show text labels.
  function markEmoji() {
    try {
      const canvas = document.createElement("canvas");
      canvas.width = canvas.height = 20;
      const context = canvas.getContext("2d");
      context.textBaseline = "top";
      context.font = "16px sans-serif";
      context.fillText("\u{1F4F7}", 0, 0);
      const pixels = context.getImageData(0, 0, 20, 20).data;
      let coloured = false;
      for (let i = 0; i < pixels.length; i += 4) {
        if (pixels[i + 3] && (pixels[i] !== pixels[i + 1] || pixels[i + 1] !== pixels[i + 2])) coloured = true;
      }
      document.documentElement.classList.toggle("no-emoji", !coloured);
    } catch (e) {
      document.documentElement.classList.add("no-emoji");
    }
  }

  function setLanguage(lang) {
    if (lang !== "zh" && lang !== "bo") return;
    if (lang === state.lang && t("title")) return;
    state.lang = lang;
    save();
    loadStrings(lang);
  }

  // -- sending -----------------------------------------------------------------------------------

  function send(message, display, options) {
    options = options || {};
    const id = newMessageId();
    if (!options.hidden) {
      remember({ who: "me", text: display || "", id: id, pending: true, image: options.image, audio: options.audio });
    }
    state.queue.push({ id: id, message: message, blob: options.blob });
    save();
    render();
    pump();
  }

  function retryAfter(res) {
    const seconds = Number(res.headers.get("Retry-After"));
    return Number.isFinite(seconds) && seconds > 0 ? seconds : 2;
  }

  function request(item) {
    const language = encodeURIComponent(navigator.language || "");
    if (item.message.kind === "photo") {
      const body = new FormData();
      body.append("photo", item.blob, "photo.jpg");
      const query = "client_id=" + clientId + "&message_id=" + encodeURIComponent(item.id) + "&language_code=" + language;
      return fetch("/chat/photo?" + query, { method: "POST", body: body, cache: "no-store" });
    }
    if (item.message.kind === "voice") {
      const body = new FormData();
      body.append("voice", item.blob, "voice.webm");
      const query = "client_id=" + clientId + "&message_id=" + encodeURIComponent(item.id) + "&language_code=" + language
        + "&duration=" + encodeURIComponent(String(Math.round(item.message.duration || 0)));
      return fetch("/chat/voice?" + query, { method: "POST", body: body, cache: "no-store" });
    }
    return fetch("/chat/send", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      cache: "no-store",
      body: JSON.stringify({
        client_id: clientId,
        message_id: item.id,
        message: item.message,
        language_code: navigator.language || null,
      }),
    });
  }

  function settled(item) {
    state.queue = state.queue.filter((q) => q.id !== item.id);
    state.log.forEach((entry) => {
      if (entry.id === item.id) entry.pending = false;
    });
  }

  // One message at a time, in order; a message that could not be sent is sent again with the
  // same message id, so the server handles it once however often it arrives.
  async function pump() {
    if (state.busy) return;
    state.busy = true;
    let failures = 0;
    try {
      while (state.queue.length) {
        const item = state.queue[0];
        let res;
        try {
          res = await request(item);
        } catch (e) {
          res = null;
        }
        if (res && res.status === 500 && (item.errors = (item.errors || 0) + 1) >= 3) {
          // The server fails on this very message (not the connection): drop it rather than block the rest.
          settled(item);
          note(t("send_dropped"));
          save();
          render();
          continue;
        }
        if (!res || res.status >= 500) {
          failures += 1;
          if (failures === 1) note(t("send_failed"));
          await sleep(Math.min(30000, 1000 * 2 ** Math.min(failures, 5)));
          continue;
        }
        failures = 0;
        if (res.status === 429) {
          note(t("rate_limited"));
          await sleep(retryAfter(res) * 1000);
          continue;
        }
        settled(item);
        if (!res.ok) {
          // A refused message always gets an answer on screen.
          if (item.message.kind === "voice") {
            if (res.status === 413) note(t("voice_too_large"));
            else if (res.status === 422) note(t("voice_too_long"));
            else note(t("voice_unreadable"));
          } else if (res.status === 413 && item.message.kind === "photo") note(t("photo_too_large"));
          else if (res.status === 415 || (item.message.kind === "photo" && res.status === 400)) note(t("photo_unreadable"));
          else note(t("send_refused"));
          save();
          render();
          continue;
        }
        receive(await res.json());
      }
    } finally {
      state.busy = false;
    }
  }

  function receive(answer) {
    const id = newMessageId();
    (answer.replies || []).forEach((reply) => remember({ who: "bot", reply: reply, answer: id }));
    save();
    if (answer.language_chosen && answer.language !== state.lang) setLanguage(answer.language);
    render();
    focusAnswer();
  }

  // -- notifications -------------------------------------------------------------------------------

  // The id of the newest notice this page holds: the server keeps anything newer until we say so.
  function lastNotice() {
    return state.seen.length ? Math.max.apply(null, state.seen) : 0;
  }

  function deliver(message) {
    if (!message || state.seen.includes(message.id)) return;
    state.seen.push(message.id);
    remember({ who: "bot", reply: message.reply, notice: true });
    save();
    render();
  }

  async function fetchInbox() {
    try {
      const res = await fetch("/chat/inbox?client_id=" + clientId + "&after=" + lastNotice(), { cache: "no-store" });
      if (!res.ok) return;
      const data = await res.json();
      (data.messages || []).forEach(deliver);
    } catch (e) {
      /* offline: the next try brings them */
    }
  }

  function listen() {
    if (!window.EventSource) {
      setInterval(fetchInbox, 30000);
      return;
    }
    const events = new EventSource("/chat/events?client_id=" + clientId + "&after=" + lastNotice());
    events.addEventListener("message", (event) => {
      try {
        deliver(JSON.parse(event.data));
      } catch (e) {
        /* ignore a malformed event */
      }
    });
  }

  // -- location, photos, text -------------------------------------------------------------------

  function shareLocation() {
    if (!navigator.geolocation) {
      note(t("location_failed"));
      return;
    }
    navigator.geolocation.getCurrentPosition(
      (position) => send(
        { kind: "location", latitude: position.coords.latitude, longitude: position.coords.longitude },
        t("my_location"),
      ),
      () => note(t("location_failed")),
      { enableHighAccuracy: true, timeout: 20000, maximumAge: 60000 },
    );
  }

  // Large camera pictures are scaled down in the browser before upload (long side 2560 px).
  async function shrink(file) {
    if (file.size <= 2.5 * 1024 * 1024 || !window.createImageBitmap) return file;
    try {
      const bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
      const scale = Math.min(1, 2560 / Math.max(bitmap.width, bitmap.height));
      const canvas = document.createElement("canvas");
      canvas.width = Math.round(bitmap.width * scale);
      canvas.height = Math.round(bitmap.height * scale);
      canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
      const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.85));
      return blob && blob.size < file.size ? blob : file;
    } catch (e) {
      return file;
    }
  }

  document.getElementById("attach").addEventListener("click", () => photoInput.click());
  photoInput.addEventListener("change", async () => {
    const file = photoInput.files && photoInput.files[0];
    photoInput.value = "";
    if (!file) return;
    if (file.type && !file.type.startsWith("image/")) {
      note(t("photo_unreadable"));
      return;
    }
    const blob = await shrink(file);
    if (blob.size > state.limits.photo_bytes) {
      note(t("photo_too_large"));
      return;
    }
    send({ kind: "photo" }, t("my_photo"), { blob: blob, image: URL.createObjectURL(blob) });
  });

  // -- voice messages: the browser's MediaRecorder (Opus in WebM, or Ogg) -----------------------

  const recordButton = document.getElementById("record");
  let recorder = null;
  let recordTimer = null;

  function recordingType() {
    const wanted = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/webm", "audio/mp4"];
    return wanted.find((type) => window.MediaRecorder && MediaRecorder.isTypeSupported(type)) || "";
  }

  async function startRecording() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia || !window.MediaRecorder) {
      note(t("microphone_failed"));
      return;
    }
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (e) {
      note(t("microphone_failed"));
      return;
    }
    const type = recordingType();
    const chunks = [];
    const started = Date.now();
    recorder = type ? new MediaRecorder(stream, { mimeType: type }) : new MediaRecorder(stream);
    recorder.addEventListener("dataavailable", (event) => {
      if (event.data && event.data.size) chunks.push(event.data);
    });
    recorder.addEventListener("stop", () => {
      stream.getTracks().forEach((track) => track.stop());
      clearTimeout(recordTimer);
      recordButton.classList.remove("recording");
      recordButton.setAttribute("aria-pressed", "false");
      recordButton.setAttribute("aria-label", t("record"));
      recorder = null;
      const blob = new Blob(chunks, { type: (type || "audio/webm").split(";")[0] });
      const seconds = (Date.now() - started) / 1000;
      if (!blob.size) {
        note(t("voice_unreadable"));
        return;
      }
      if (blob.size > (state.limits.voice_bytes || 5 * 1024 * 1024)) {
        note(t("voice_too_large"));
        return;
      }
      send({ kind: "voice", duration: seconds }, t("my_voice"), { blob: blob, audio: URL.createObjectURL(blob) });
    });
    recorder.start(1000);
    recordButton.classList.add("recording");
    recordButton.setAttribute("aria-pressed", "true");
    recordButton.setAttribute("aria-label", t("stop_recording"));
    // Stop by itself at the longest a voice message may be.
    recordTimer = setTimeout(() => recorder && recorder.stop(), (state.limits.voice_seconds || 180) * 1000);
  }

  recordButton.addEventListener("click", () => {
    if (recorder) recorder.stop();
    else startRecording();
  });

  function autosize() {
    textBox.style.height = "auto";
    textBox.style.height = Math.min(textBox.scrollHeight, 140) + "px";
  }

  function submitText() {
    const text = textBox.value.trim();
    if (!text) return;
    send({ kind: "text", text: text }, text);
    textBox.value = "";
    store.set("draft", "");
    autosize();
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submitText();
  });
  // Text typed but not sent survives a reload.
  textBox.value = store.get("draft", "");
  textBox.addEventListener("input", () => {
    autosize();
    store.set("draft", textBox.value);
  });
  textBox.addEventListener("keydown", (event) => {
    // Enter sends; Shift+Enter is a new line; Enter while an input method composes Chinese is not a send.
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
      event.preventDefault();
      submitText();
    }
  });

  document.getElementById("menu").addEventListener("click", () => send({ kind: "button", data: "menu:main" }, t("menu")));
  document.querySelectorAll(".lang").forEach((button) => {
    button.addEventListener("click", () => {
      const lang = button.dataset.lang;
      setLanguage(lang);
      send({ kind: "button", data: "lang:" + lang }, state.languages[lang] || button.textContent);
    });
  });
  window.addEventListener("online", pump);

  // -- start -----------------------------------------------------------------------------------

  const params = new URLSearchParams(location.search);
  const grid = params.get("grid");
  const gridCode = grid && /^[A-Za-z0-9_-]{1,32}$/.test(grid) ? grid : "";
  if (grid !== null) history.replaceState(null, "", location.pathname); // a reload does not open it again
  if (gridCode || (!state.log.length && !state.queue.length)) {
    send({ kind: "text", text: "/start" + (gridCode ? " grid_" + gridCode : "") }, "", { hidden: true });
  }
  loadStrings(state.lang);
  markEmoji();
  autosize();
  render();
  pump();
  fetchInbox().then(listen);
})();

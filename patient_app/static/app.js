// The patient's page: device states in words, and what is entered, queued on this phone until
// the server has it. Data only ever reaches the page through textContent, never as markup.
"use strict";

(function () {
  const base = document.body.dataset.base; // "/p/{token}", set (escaped) by the server
  const QUEUE_KEY = "vitals-app:queue:" + base;
  const HISTORY_KEY = "vitals-app:history:" + base;
  const SEQ_KEY = "vitals-app:seq";
  // Until when the server asked us to wait (429 or 503 with Retry-After), in ms since the
  // epoch: kept in storage, so that reopening the page does not send at once either.
  const HOLD_KEY = "vitals-app:hold:" + base;
  const HOLD_MAX_MS = 60 * 60 * 1000; // a Retry-After beyond an hour is not believed
  const RETRY_MS = 5000;
  const REFRESH_MS = 30000;
  const SILENT_MS = 10 * 60 * 1000; // a device silent this long is worth a look
  const HISTORY_MAX = 10;
  const WAITING = "saved on this phone, will be sent when online";

  const $ = (id) => document.getElementById(id);

  // --- storage: localStorage; if the browser refuses it (private mode, full), memory from
  // then on, for as long as the page is open, starting from what storage held -------------
  const memory = {};
  let inMemory = false;
  function toMemory() {
    for (const key of [QUEUE_KEY, HISTORY_KEY, SEQ_KEY, HOLD_KEY]) {
      if (key in memory) continue;
      try {
        const raw = window.localStorage.getItem(key);
        if (raw !== null) memory[key] = JSON.parse(raw);
      } catch (e) {
        /* nothing readable: start empty */
      }
    }
    inMemory = true;
  }
  function load(key, fallback) {
    if (!inMemory) {
      try {
        const raw = window.localStorage.getItem(key);
        return raw === null ? fallback : JSON.parse(raw);
      } catch (e) {
        toMemory();
      }
    }
    return key in memory ? memory[key] : fallback;
  }
  function store(key, value) {
    memory[key] = value;
    if (inMemory) return;
    try {
      window.localStorage.setItem(key, JSON.stringify(value));
    } catch (e) {
      toMemory();
    }
  }

  // The reading's `seq`: the time of submission in ms, and always more than the last one, so
  // it increases per device even if this phone's storage was cleared (ingest drops repeats).
  function nextSeq() {
    const now = Date.now();
    const seq = Math.max(now, Number(load(SEQ_KEY, 0)) + 1);
    store(SEQ_KEY, seq);
    return seq;
  }

  // --- messages -----------------------------------------------------------------------------
  // The live region (read out) and, beside the form it concerns, the same words on screen.
  function say(text, isError, form) {
    const places = [$("status")];
    if (form && $(form + "-result")) places.push($(form + "-result"));
    for (const el of places) {
      el.textContent = text;
      el.classList.toggle("error", Boolean(isError));
    }
  }

  function clock(ms) {
    const d = new Date(ms);
    const time = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    if (d.toDateString() === new Date().toDateString()) return time;
    return d.toLocaleDateString([], { day: "numeric", month: "short" }) + " " + time;
  }

  // --- the outbox: queued, then the latest results ------------------------------------------
  function renderOutbox() {
    const list = $("outbox");
    const rows = [];
    for (const item of load(QUEUE_KEY, [])) {
      rows.push(item.label + ", " + clock(item.body.ts) + ": " + WAITING);
    }
    for (const h of load(HISTORY_KEY, [])) {
      rows.push(h.label + ", " + clock(h.ts) + ": " + h.result);
    }
    list.replaceChildren();
    if (!rows.length) rows.push("Nothing yet.");
    for (const text of rows) {
      const li = document.createElement("li");
      li.textContent = text;
      list.appendChild(li);
    }
  }

  function remember(item, result) {
    const history = load(HISTORY_KEY, []);
    history.unshift({ label: item.label, ts: item.body.ts, result: result });
    store(HISTORY_KEY, history.slice(0, HISTORY_MAX));
  }

  // --- sending: oldest first; 2xx done, 4xx dropped (it would never be accepted), except 408
  // and 429 which, like being offline or a 5xx, keep it queued: tried again every few seconds
  // and when online, but never before the server's Retry-After -------------------------------
  function retryAfterMs(res) {
    const value = (res.headers.get("Retry-After") || "").trim();
    if (!value) return 0;
    const ms = /^\d+$/.test(value) ? Number(value) * 1000 : Date.parse(value) - Date.now();
    return Number.isFinite(ms) ? Math.min(Math.max(ms, 0), HOLD_MAX_MS) : 0;
  }

  let holdTimer = null;
  function hold(ms) {
    store(HOLD_KEY, Date.now() + ms);
    clearTimeout(holdTimer);
    holdTimer = setTimeout(flush, ms + 50);
  }

  function held() {
    const until = Number(load(HOLD_KEY, 0)) || 0;
    return until - Date.now() > HOLD_MAX_MS ? 0 : Math.max(0, until - Date.now());
  }

  function waitWords(ms) {
    if (ms <= 0) return "saved on this phone, will be sent when online";
    const min = Math.ceil(ms / 60000);
    return "saved on this phone, will be sent automatically in " +
      (ms < 60000 ? "less than a minute" : "about " + min + " minute" + (min > 1 ? "s" : ""));
  }

  let flushing = false;
  async function flush() {
    if (flushing) return;
    flushing = true;
    try {
      for (;;) {
        const queue = load(QUEUE_KEY, []);
        if (!queue.length) return;
        const item = queue[0];
        const wait = held();
        if (wait > 0) {
          say(item.label + ": " + waitWords(wait) + ".", false, item.form);
          clearTimeout(holdTimer); // one wake-up, at the end of the wait
          holdTimer = setTimeout(flush, wait + 50);
          return;
        }
        let res;
        try {
          res = await fetch(base + "/submit", {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify(item.body),
            cache: "no-store",
            credentials: "same-origin",
          });
        } catch (e) {
          say(item.label + ": saved on this phone, will be sent when online.", false, item.form);
          return;
        }
        if (res.status >= 500 || res.status === 408 || res.status === 429) {
          const ms = retryAfterMs(res);
          if (ms > 0) hold(ms);
          say(item.label + ": " + waitWords(ms) + ".", false, item.form);
          return;
        }
        let result = "sent";
        if (!res.ok) {
          let detail = "";
          try {
            const doc = await res.json();
            detail = String(doc.detail || doc.error || "");
          } catch (e) {
            detail = res.status === 404 ? "this link no longer works, ask your team for a new one"
              : "error " + res.status;
          }
          result = "not accepted: " + detail;
        }
        store(QUEUE_KEY, load(QUEUE_KEY, []).filter((x) => x.body.seq !== item.body.seq));
        remember(item, result);
        renderOutbox();
        say(item.label + ": " + result + ".", !res.ok, item.form);
        const next = load(QUEUE_KEY, [])[0];
        if (next && next.body.seq === item.body.seq) return; // never send one twice in a row
      }
    } finally {
      flushing = false;
      renderOutbox();
    }
  }

  function send(body, label, form) {
    const ts = Date.now();
    body.seq = nextSeq();
    body.ts = ts;
    const queue = load(QUEUE_KEY, []);
    queue.push({ body: body, label: label, form: form });
    store(QUEUE_KEY, queue);
    renderOutbox();
    say(label + ": sending…", false, form);
    flush();
  }

  // --- symptoms --------------------------------------------------------------------------------
  function labelOf(input) {
    const label = document.querySelector('label[for="' + input.id + '"]');
    return label ? label.textContent : input.value;
  }

  function setupSymptoms() {
    const form = $("symptoms-form");
    const who = () => form.querySelector('input[name="by"]:checked').value;
    const ticked = () => Array.from(form.querySelectorAll('input[name="symptom"]:checked'));
    const CALL = "You ticked something on the \"Call now\" list: please call your team now " +
      "as well. Sending this does not reach anyone at once.";

    $("nothing-new").addEventListener("click", () => {
      if (ticked().length) {
        say("You ticked some boxes: press \"Send check-in\" instead.", true, "symptoms");
        return;
      }
      $("call-prompt").textContent = "";
      send({ kind: "symptoms", by: who(), symptoms: [] }, "Check-in: nothing new", "symptoms");
    });

    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const boxes = ticked();
      const note = $("note").value.trim();
      const codes = boxes.map((b) => b.value);
      if (!codes.length) {
        say("Tick at least one box, or press \"Nothing new\".", true, "symptoms");
        return;
      }
      if (codes.includes("other") && !note) {
        say("Please say what \"Something else\" is in the note.", true, "symptoms");
        $("note").focus();
        return;
      }
      const body = { kind: "symptoms", by: who(), symptoms: codes };
      if (note) body.note = note;
      const urgent = boxes.some((b) => b.dataset.callNow === "1");
      $("call-prompt").textContent = urgent ? CALL : "";
      send(body, "Check-in: " + boxes.map(labelOf).join(", "), "symptoms");
      boxes.forEach((b) => { b.checked = false; });
      $("note").value = "";
    });
  }

  // --- the daily neuro check: each tick is a point, the score shown as it goes --------------
  function setupNeuro() {
    const form = $("neuro-form");
    const parts = Array.from(form.querySelectorAll("fieldset.ice"));
    const scores = () => {
      const ice = {};
      for (const fs of parts) ice[fs.dataset.part] = fs.querySelectorAll("input:checked").length;
      return ice;
    };
    const show = () => {
      const ice = scores();
      let total = 0;
      for (const [part, n] of Object.entries(ice)) {
        form.querySelector('[data-part-score="' + part + '"]').textContent = String(n);
        total += n;
      }
      $("ice-total").textContent = String(total);
      return total;
    };
    form.addEventListener("change", show);
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const total = show();
      send({ kind: "neuro_check", by: "caregiver", ice: scores() },
        "Thinking check: " + total + " of 10", "neuro");
      form.reset();
      show();
    });
  }

  // --- a temperature taken by hand --------------------------------------------------------------
  function setupTemperature() {
    const form = $("temp-form");
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const text = $("temp").value.trim().replace(",", ".");
      const temp = Number(text);
      if (!text || !Number.isFinite(temp) || temp < 30 || temp > 45) {
        say("Please type the temperature in °C, for example 37.2.", true, "temp");
        $("temp").focus();
        return;
      }
      const site = form.querySelector('input[name="site"]:checked').value;
      send({ kind: "temperature", temp: temp, site: site, flags: ["manual"] },
        "Temperature taken by hand", "temp");
      $("temp").value = "";
    });
  }

  // --- the devices, in words -----------------------------------------------------------------
  function deviceWords(d, now) {
    let words;
    const offline = d.state === "offline" && d.state_at !== null &&
      (d.last_reading === null || d.state_at >= d.last_reading);
    if (offline) {
      words = "went offline at " + clock(d.state_at);
    } else if (d.last_reading === null) {
      words = "no reading yet";
    } else if (now - d.last_reading > SILENT_MS) {
      const check = d.type === "oximeter" ? "check the finger clip"
        : d.type === "thermometer" ? "check it is on and in place" : "check it is switched on";
      words = "no reading since " + clock(d.last_reading) + " — " + check;
    } else {
      const min = Math.floor(Math.max(0, now - d.last_reading) / 60000);
      words = "last reading " + (min < 1 ? "less than a minute ago" : min + " min ago");
    }
    if (d.battery !== null) {
      words += ", battery " + d.battery + " %" + (d.battery <= 20 ? " — please charge it" : "");
    }
    return d.type + " " + d.device + ": " + words;
  }

  async function refreshDevices() {
    let doc;
    try {
      const res = await fetch(base + "/state", { cache: "no-store", credentials: "same-origin" });
      if (!res.ok) throw new Error(String(res.status));
      doc = await res.json();
    } catch (e) {
      $("devices-updated").textContent = "Could not check your devices just now (no " +
        "connection?). Trying again shortly.";
      return;
    }
    const list = $("devices");
    list.replaceChildren();
    for (const d of doc.devices) {
      const li = document.createElement("li");
      li.textContent = deviceWords(d, doc.now);
      list.appendChild(li);
    }
    if (!doc.devices.length) {
      const li = document.createElement("li");
      li.textContent = "No device has sent anything yet.";
      list.appendChild(li);
    }
    $("devices-updated").textContent = "Checked at " + clock(doc.now) + ".";
  }

  setupSymptoms();
  setupNeuro();
  setupTemperature();
  renderOutbox();
  refreshDevices();
  setInterval(refreshDevices, REFRESH_MS);
  setInterval(() => { if (load(QUEUE_KEY, []).length) flush(); }, RETRY_MS);
  window.addEventListener("online", flush);
  flush();
})();

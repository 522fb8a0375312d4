// The capture page's script: upload each photo as soon as it is taken (with a progress
// bar, retried after a dropped connection under the same Idempotency-Key, so a retry never
// makes a second photo), show its quick check, and follow the claim's status live.
// Without it the page still works: every form posts and the server redirects back.
"use strict";

(function () {
  const RETRIES = 6;

  function say(slot, text, kind) {
    const box = slot.querySelector(".feedback");
    box.replaceChildren();
    for (const line of [].concat(text)) {
      const p = document.createElement("p");
      p.className = kind;
      p.textContent = line;
      box.appendChild(p);
    }
  }

  function send(form, file, key, progress) {
    return new Promise((resolve, reject) => {
      const body = new FormData(form);
      body.set("file", file, file.name || "photo.jpg");
      const xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.setRequestHeader("X-CSRF-Token", form.elements.csrf_token.value);
      xhr.setRequestHeader("Idempotency-Key", key);
      xhr.upload.onprogress = (e) => { if (e.lengthComputable) progress.value = (100 * e.loaded) / e.total; };
      xhr.onload = () => {
        let answer = null;
        try { answer = JSON.parse(xhr.responseText); } catch (err) { answer = null; }
        resolve({ status: xhr.status, answer: answer });
      };
      xhr.onerror = () => reject(new Error("network"));
      xhr.ontimeout = () => reject(new Error("timeout"));
      xhr.timeout = 120000;
      xhr.send(body);
    });
  }

  function wait(ms) { return new Promise((r) => setTimeout(r, ms)); }

  async function upload(slot, form, file, words) {
    const progress = slot.querySelector(".progress");
    const key = self.crypto.randomUUID();  // one per photo taken, the same on every retry
    progress.hidden = false;
    progress.value = 0;
    say(slot, words.tUploading, "checking");
    for (let attempt = 0; attempt <= RETRIES; attempt += 1) {
      try {
        const { status, answer } = await send(form, file, key, progress);
        progress.hidden = true;
        if (answer && answer.photo_id) return { status, answer };  // stored, or the same file
        say(slot, (answer && answer.error && answer.error.message) || words.tFailed, "warn");
        return null;
      } catch (err) {
        say(slot, words.tRetrying, "warn");
        await wait(Math.min(8000, 500 * 2 ** attempt));
      }
    }
    progress.hidden = true;
    say(slot, words.tFailed, "warn");
    return null;
  }

  function show(slot, check, words) {
    if (check.state === "pending") say(slot, words.tChecking, "checking");
    else if (check.state === "failed") say(slot, words.tCheckFailed, "warn");
    else if (check.messages.length) say(slot, check.messages, "warn");
    else say(slot, words.tOk, "ok");
  }

  async function follow(slot, check, words) {
    show(slot, check, words);
    // No answer in a minute (no worker on the checks queue): say so rather than wait on.
    const giveUp = Date.now() + 60000;
    while (check.state === "pending") {
      if (Date.now() > giveUp) { say(slot, words.tCheckFailed, "warn"); return; }
      try {
        const r = await fetch(`/capture/claim/photos/${check.photo_id}/check?wait=10`, { headers: { Accept: "application/json" } });
        if (r.ok) check = await r.json();
        else await wait(1000);
      } catch (err) {
        await wait(2000);
      }
      show(slot, check, words);
    }
  }

  function taken(slot, form, file, answer, words) {
    const img = slot.querySelector(".thumb");
    img.src = URL.createObjectURL(file);  // the photo itself, as taken: nothing resized
    img.hidden = false;
    const drawing = slot.querySelector("svg.outline");
    if (drawing) drawing.remove();
    form.elements.replaces.value = answer.photo_id;
    slot.querySelector(".verb").textContent = words.tRetake;
    slot.querySelector("label.button").classList.remove("primary");
    const remove = slot.querySelector("form.remove");
    remove.action = `/capture/claim/photos/${answer.photo_id}/remove`;
    remove.hidden = false;
    slot.dataset.photo = answer.photo_id;
  }

  function shotList() {
    const list = document.getElementById("shots");
    if (!list) return;
    const words = list.dataset;
    for (const input of list.querySelectorAll("input.file")) {
      input.addEventListener("change", async () => {
        const file = input.files && input.files[0];
        if (!file) return;
        const form = input.form;
        const slot = form.closest(".shot");
        const done = await upload(slot, form, file, words);
        input.value = "";
        if (!done) return;
        if (done.status === 409) { show(slot, done.answer, words); return; }
        taken(slot, form, file, done.answer, words);
        follow(slot, done.answer, words);
      });
    }
  }

  async function liveStatus() {
    const section = document.getElementById("status");
    if (!section) return;
    for (;;) {
      const body = document.getElementById("status-body");
      const since = body.dataset.revision;
      try {
        const r = await fetch(`${section.dataset.url}?since_revision=${since}&wait=25`);
        if (!r.ok) { await wait(3000); continue; }
        const html = await r.text();
        const holder = document.createElement("div");
        holder.innerHTML = html;
        const fresh = holder.querySelector("#status-body");
        if (!fresh) { await wait(3000); continue; }
        if (fresh.dataset.mode !== section.dataset.mode) { location.reload(); return; }
        if (fresh.dataset.revision !== since) body.replaceWith(fresh);
      } catch (err) {
        await wait(3000);
      }
    }
  }

  function offlineBanner() {
    const banner = document.getElementById("offline");
    const update = () => { banner.hidden = navigator.onLine; };
    window.addEventListener("online", update);
    window.addEventListener("offline", update);
    update();
  }

  // The one-time link's secret travels in the fragment (never sent to a server): move it
  // into the form and out of the address bar and history.
  function linkSecret() {
    const form = document.getElementById("redeem");
    if (!form) return;
    const secret = location.hash.slice(1);
    history.replaceState(null, "", location.pathname);
    if (secret) form.elements.secret.value = secret;
    else {
      form.hidden = true;
      document.getElementById("link-incomplete").hidden = false;
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    linkSecret();
    offlineBanner();
    shotList();
    liveStatus();
    if ("serviceWorker" in navigator) navigator.serviceWorker.register("/capture/sw.js", { scope: "/capture/" });
  });
})();

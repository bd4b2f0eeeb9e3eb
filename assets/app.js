// semdock admin UI: progressive enhancement only. Every page works without this file.
"use strict";
document.addEventListener("click", (event) => {
  const copy = event.target.closest("[data-copy]");
  if (copy) {
    event.preventDefault();
    navigator.clipboard.writeText(copy.dataset.copy).then(() => {
      const text = copy.textContent;
      copy.textContent = "copied";
      setTimeout(() => { copy.textContent = text; }, 1200);
    });
  }
});
document.addEventListener("submit", (event) => {
  const message = event.target.dataset.confirm;
  if (message && !window.confirm(message)) {
    event.preventDefault();
  }
});
// Promotion forms: ask the server whether the target feed's policy accepts the tag.
for (const form of document.querySelectorAll("form[data-check-tag]")) {
  const feed = form.querySelector("[name=target_feed]");
  const name = form.querySelector("[name=target_name]");
  const tag = form.querySelector("[name=target_tag]");
  const out = form.querySelector(".check-msg");
  const button = form.querySelector("button");
  // One request per keystroke; answers may come back in any order, so only the answer to
  // the latest request counts (an older one is aborted, and ignored if it arrives anyway).
  let latest = 0;
  let pending = null;
  const check = async () => {
    const mine = ++latest;
    if (pending) { pending.abort(); }
    pending = null;
    if (!tag.value) { out.textContent = ""; return; }
    const query = new URLSearchParams({
      repository: `${feed.value}/${name.value}`, tag: tag.value, digest: form.dataset.digest,
    });
    const controller = new AbortController();
    pending = controller;
    let body;
    try {
      const res = await fetch(`/ui/check-tag?${query}`, {
        credentials: "same-origin", signal: controller.signal,
      });
      body = await res.json();
    } catch (e) {
      return; // aborted by a newer keystroke, or the network: the server checks on submit
    }
    if (mine !== latest) { return; }
    pending = null;
    out.textContent = body.ok ? "allowed" : body.message;
    out.className = `check-msg ${body.ok ? "good" : "bad"}`;
    button.disabled = !body.ok;
  };
  for (const input of [feed, name, tag]) { input.addEventListener("input", check); }
}

// hookgate console: progressive enhancement only. Every page works without this file.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // Times arrive as UTC (RFC 3339); show them in the reader's own time zone, keeping UTC in the title.
  for (const t of document.querySelectorAll("time[datetime]")) {
    const at = new Date(t.getAttribute("datetime"));
    if (!Number.isNaN(at.getTime())) {
      t.title = t.getAttribute("datetime");
      t.textContent = at.toLocaleString();
    }
  }
  // Disabling a target pauses its deliveries: ask first.
  for (const form of document.querySelectorAll('form[action$="/disable"]')) {
    form.addEventListener("submit", (e) => {
      if (!window.confirm("Pause every delivery to this target?")) e.preventDefault();
    });
  }
  // The overview follows the gateway: reload it every 10 s while it is visible.
  if (location.pathname === "/") {
    setInterval(() => {
      if (document.visibilityState === "visible") location.reload();
    }, 10000);
  }
});

// Plugins: upload the chosen (or dropped) file with a PUT, the CSRF token in a header, and show
// the gateway's answer: the plugin's digest, or why it was refused.
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("upload");
  if (!form) return;
  const file = document.getElementById("plugin-file");
  const name = document.getElementById("plugin-name");
  const drop = document.getElementById("drop");
  const result = document.getElementById("upload-result");
  for (const type of ["dragenter", "dragover"]) {
    drop.addEventListener(type, (e) => { e.preventDefault(); drop.classList.add("over"); });
  }
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer.files.length) {
      file.files = e.dataTransfer.files;
      if (!name.value) name.value = e.dataTransfer.files[0].name.replace(/\.wasm$/, "").replace(/_/g, "-");
    }
  });
  // Sends the chosen file to `path` with the CSRF token; hands a 2xx answer to `done`, shows a
  // refusal's reason or a failure.
  const send = async (method, path, [doing, noun], done) => {
    const chosen = file.files[0];
    result.className = "result";
    result.textContent = `${doing} ${chosen.size} bytes…`;
    const csrf = form.querySelector('input[name="csrf"]').value;
    try {
      const r = await fetch(path, {
        method,
        headers: { "x-csrf-token": csrf, "content-type": "application/wasm" },
        body: chosen,
      });
      const answer = await r.json().catch(() => ({}));
      if (r.ok) {
        done(answer);
      } else {
        result.className = "result error";
        result.textContent = `Refused (${r.status}): ${answer.error || r.statusText}`;
      }
    } catch (err) {
      result.className = "result error";
      result.textContent = `${noun} failed: ${err}`;
    }
  };
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!file.files[0]) return;
    const plugin = encodeURIComponent(name.value);
    await send("PUT", `/plugins/${plugin}`, ["Uploading", "Upload"], () => location.assign(`/plugins?uploaded=${plugin}`));
  });
  // Compare: the chosen file beside the active plugin on stored events; the answer is text.
  const compare = document.getElementById("compare");
  const diff = document.getElementById("diff");
  compare.addEventListener("click", async () => {
    const chosen = file.files[0];
    if (!chosen || !name.value) {
      result.className = "result error";
      result.textContent = "Choose a name and a .wasm file to compare.";
      return;
    }
    diff.hidden = true;
    await send("POST", `/plugins/${encodeURIComponent(name.value)}/diff`, ["Comparing", "Compare"], (answer) => {
      result.textContent = answer.changed ? "The upload would change what is sent:" : "The upload would change nothing that is sent.";
      diff.textContent = answer.text;
      diff.hidden = false;
    });
  });
});

// Playground: run the form as the user types (after a pause), swapping in the result the page
// would show; "Copy as TOML" copies the candidate route.
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("playground");
  if (!form) return;
  const result = document.getElementById("result");
  const csrf = form.querySelector('input[name="csrf"]').value;
  let timer = null;
  let sent = 0;
  let inFlight = null;
  const run = async () => {
    const mine = ++sent;
    // A newer run supersedes the one in flight: abort it, so the gateway stops waiting for it.
    if (inFlight) inFlight.abort();
    inFlight = new AbortController();
    result.setAttribute("aria-busy", "true");
    try {
      const r = await fetch("/playground", {
        method: "POST",
        headers: { "x-csrf-token": csrf, "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams(new FormData(form)),
        signal: inFlight.signal,
      });
      const page = new DOMParser().parseFromString(await r.text(), "text/html");
      const fresh = page.getElementById("result");
      // An older answer arriving late must not replace a newer one.
      if (mine !== sent) return;
      if (fresh) {
        result.replaceChildren(...fresh.childNodes);
      } else {
        result.textContent = `The gateway answered ${r.status}: ${page.body ? page.body.textContent.trim() : r.statusText}`;
      }
      showCopy();
    } catch (err) {
      if (mine === sent && err.name !== "AbortError") result.textContent = `The gateway did not answer: ${err}`;
    } finally {
      if (mine === sent) result.removeAttribute("aria-busy");
    }
  };
  const later = () => {
    clearTimeout(timer);
    timer = setTimeout(run, 400);
  };
  form.addEventListener("input", later);
  form.addEventListener("change", later);
  form.addEventListener("submit", (e) => { e.preventDefault(); clearTimeout(timer); run(); });
  const showCopy = () => {
    const button = document.getElementById("copy-toml");
    const toml = document.getElementById("toml");
    if (!button || !toml) return;
    button.hidden = false;
    button.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(toml.textContent);
        button.textContent = "Copied";
      } catch {
        // No clipboard (not a secure context): select the text for the user to copy.
        const range = document.createRange();
        range.selectNodeContents(toml);
        const sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(range);
        button.textContent = "Selected: press Ctrl+C";
      }
    });
  };
  showCopy();
});

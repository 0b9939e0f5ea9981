// Sign in by pasting an API key. The key is checked against GET /v1/me and then kept in this
// tab's sessionStorage only: closing the tab signs out, and nothing is stored on the server.

import { get, session } from "../api.js";
import { el } from "../format.js";

export function render(view, done) {
  const input = el("input", { type: "password", id: "key", name: "key", autocomplete: "off",
    placeholder: "ak_…", spellcheck: "false", required: true });
  const error = el("p", { class: "form-error", role: "alert", id: "signin-error" });
  const button = el("button", { type: "submit", class: "primary" }, "Sign in");
  const form = el("form", { class: "signin-form", onsubmit: async (event) => {
    event.preventDefault();
    error.textContent = "";
    const key = input.value.trim();
    if (!key.startsWith("ak_")) { error.textContent = "An Ainfera API key starts with ak_."; return; }
    button.disabled = true;
    try {
      const me = await get("/v1/me", { key });
      session.key = key;
      session.me = me;
      done();
    } catch (e) {
      error.textContent = e.status === 401 ? "This key is not valid, or it was revoked." : e.message;
    } finally {
      button.disabled = false;
    }
  } },
  el("label", { for: "key" }, "API key"), input, error, button);
  view.replaceChildren(el("div", { class: "signin" },
    el("section", { class: "card" },
      el("h1", {}, "Sign in to the console"),
      el("p", {}, "Paste an API key. A ", el("strong", {}, "tenant-admin key"),
        " sees the whole tenant and manages its agents, caps and keys; an ",
        el("strong", {}, "agent key"), " sees its own agent."),
      form,
      el("p", { class: "muted small" }, "The key stays in this browser tab (session storage) and is "
        + "sent only to this gateway; closing the tab signs you out. An operator makes the first "
        + "admin key with ", el("code", {}, "ainfera key create --tenant T --admin"), "."))));
  input.focus();
}

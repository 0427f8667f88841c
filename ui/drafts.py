"""A draft being typed survives a reload: `with ui.drafts.kept("name"): st.text_area(...)`.

The text lives in the browser (localStorage), written on every keystroke: fields inside a st.form send
nothing to the server until submitted, so only the browser has what was typed. Each draft is keyed by the
signed-in staff member and the draft's name, so another staff member signing in on the same browser finds
none of it; it is removed when the form's submit button is pressed (sent or saved), and restored into the
field when the page is shown again with that field empty or at its starting text.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st
import streamlit.components.v1 as components


@contextmanager
def kept(name: str) -> Iterator[None]:
    """The text field drawn inside this block keeps its draft across a reload (see the module doc). `name`
    tells drafts apart: one per form and field, e.g. "campaign-new-body"."""
    with st.container(key=f"draft-{name}"):
        yield
        # A constant script (no data in it): it finds its field through the container's st-key-draft-… class.
        components.html(
            """<script>
(() => {
  const doc = window.parent.document;
  const store = window.parent.localStorage;
  const box = window.frameElement && window.frameElement.closest('[class*="st-key-draft-"]');
  if (!box) return;
  const name = [...box.classList].find(c => c.startsWith("st-key-draft-")).slice("st-key-draft-".length);
  const field = () => box.querySelector("textarea, input[type=text]");
  const user = () => {
    const who = doc.querySelector('[data-testid="stSidebarUserContent"]');
    return ((who && who.innerText || "").match(/Signed in as (\\S+)/) || [])[1];
  };
  let tries = 0;
  const start = () => {  // the sidebar (who is signed in) may be drawn after this field: look again shortly
    const f = field(), u = user();
    if (!f || !u) { if (++tries < 100) setTimeout(start, 100); return; }
    const key = "liaison-draft|" + u + "|" + name;
    const saved = store.getItem(key);
    if (saved !== null && saved !== f.value) {
      const proto = f.tagName === "TEXTAREA" ? window.parent.HTMLTextAreaElement : window.parent.HTMLInputElement;
      Object.getOwnPropertyDescriptor(proto.prototype, "value").set.call(f, saved);
      f.dispatchEvent(new Event("input", {bubbles: true}));
    }
    else if (saved === null && f.value) store.setItem(key, f.value);  // typed before this script ran
    box.addEventListener("input", () => { const now = field(); if (now) store.setItem(key, now.value); });
    const form = box.closest('[data-testid="stForm"]');
    const submit = form && form.querySelector('[data-testid^="stBaseButton-"][data-testid$="FormSubmit"]');
    if (submit) submit.addEventListener("click", () => store.removeItem(key));
  };
  start();
})();
</script>""",
            height=0,
        )

"""What the outreach pages share: the timeline renderer and the duplicate warning. UI only.

Every name, note and tag here is user text: it goes through ui.md() or st.text, never raw markdown.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

import ui


def timeline(rows: list[dict[str, Any]], *, empty: str = "No interactions yet.") -> None:
    """Interactions newest first: when, type, who on staff logged it, with whom, notes, outcome, tags."""
    if not rows:
        st.caption(empty)
        return
    for row in rows:
        with st.container(border=True):
            when = ui.local(row["when"])
            st.markdown(f"**{ui.md(when)} · {ui.md(row['type'])}** · logged by {ui.md(row['logged_by'] or 'unknown')}")
            who = ", ".join(x for x in (row["organizations"], row["people"]) if x)
            if who:
                st.caption(ui.md(who))
            if row["notes"]:
                st.text(row["notes"])
            if row["outcome"]:
                st.markdown(f"Outcome: {ui.md(row['outcome'])}")
            details = []
            if row["tags"]:
                details.append(f"tags: {row['tags']}")
            if row["cards_issued"] or row["signups"]:
                details.append(f"{row['cards_issued']} cards issued, {row['signups']} sign-ups")
            if row["follow_up_on"]:
                details.append(f"follow up {row['follow_up_on']}{' (done)' if row['follow_up_done'] else ''}")
            if details:
                st.caption(ui.md(" · ".join(details)))


def duplicate_warning(name: str, matches: list[dict[str, Any]]) -> None:
    """Flag a record just created that looks like existing ones."""
    if matches:
        others = "; ".join(f"{m['name']} ({m['reason']})" for m in matches)
        st.warning(f"{ui.md(name)} may be a duplicate of: {ui.md(others)}. Compare and merge them under Outreach → Duplicates.", icon=":material/content_copy:")


def pick_new(values: list, known: dict) -> tuple[list[int], list[str]]:
    """Split a multiselect with new options into picked ids and newly typed names."""
    picked = [v for v in values if v in known]
    typed = [str(v).strip() for v in values if v not in known and str(v).strip()]
    return picked, typed

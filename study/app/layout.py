"""Page furniture shared by all participant pages: no Streamlit chrome, a progress line, test hooks."""

from __future__ import annotations

import streamlit as st

from study.engine import Position

# Participants get a plain page: no toolbar, menu, deploy button, header stripe or "Running…" widget.
# client.toolbarMode and client.showSidebarNavigation (see study/server.py) do most of this already; the CSS
# also covers `streamlit run` without our config.
_CSS = """
<style>
header[data-testid="stHeader"], [data-testid="stToolbar"], [data-testid="stDecoration"],
[data-testid="stMainMenu"], [data-testid="stAppDeployButton"], [data-testid="stStatusWidget"],
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"] { display: none !important; }
.block-container { max-width: 52rem; padding-top: 2.5rem; padding-bottom: 4rem; }
[data-testid="stImage"] img { max-width: 100%; height: auto; border-radius: 4px; }
#skingen-run { display: none; }
</style>
"""


def hide_chrome() -> None:
    st.html(_CSS)


def progress(position: Position) -> None:
    """'Case 3 of 8' on trials, and a bar over the whole study once its length is known."""
    step = position.step
    if step.kind == "trial" and step.trial_number and step.trials_total:
        st.caption(f"Case {step.trial_number} of {step.trials_total}")
    if position.total:
        st.progress(min(1.0, position.index / (position.total - 1)))


def run_counter() -> None:
    """Test hook: a hidden count of finished reruns, rendered last, that browser tests wait on."""
    runs = st.session_state.get("skingen.runs", 0) + 1
    st.session_state["skingen.runs"] = runs
    st.html(f'<div id="skingen-run">{runs}</div>')

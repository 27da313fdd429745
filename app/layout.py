"""Page furniture shared by all participant pages: no Streamlit chrome, a progress line, test hooks."""

from __future__ import annotations

import streamlit as st

from app.context import Visit
from app.i18n import _
from study.engine import Position
from study.path import expected_fields

# Participants get a plain page: no toolbar, menu, deploy button, header stripe or "Running…" widget.
# client.toolbarMode and client.showSidebarNavigation (see app/server.py) do most of this already; the CSS
# also covers `streamlit run` without our config.
_CSS = """
<style>
header[data-testid="stHeader"], [data-testid="stToolbar"], [data-testid="stDecoration"],
[data-testid="stMainMenu"], [data-testid="stAppDeployButton"], [data-testid="stStatusWidget"],
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"],
[data-testid="stElementToolbar"], [data-testid="stHeaderActionElements"] { display: none !important; }
.block-container { max-width: 52rem; padding-top: 2.5rem; padding-bottom: 4rem; }
[data-testid="stImage"] img { max-width: 100%; height: auto; border-radius: 4px; }
/* Questions stand out from their answer options. */
[data-testid="stRadio"] > label[data-testid="stWidgetLabel"] p,
[data-testid="stSelectbox"] label[data-testid="stWidgetLabel"] p,
[data-testid="stTextArea"] label[data-testid="stWidgetLabel"] p,
[data-testid="stNumberInput"] label[data-testid="stWidgetLabel"] p { font-size: 1rem; font-weight: 600; }
/* A rating scale: its points evenly spread over the row, each anchor label under its point. */
[data-testid="stRadio"] [role="radiogroup"][aria-orientation="horizontal"] {
  display: grid !important; grid-auto-flow: column; grid-auto-columns: minmax(0, 1fr);
  width: 100%; gap: 0.5rem; align-items: start; }
[role="radiogroup"][aria-orientation="horizontal"] > div { min-width: 0; }
[role="radiogroup"][aria-orientation="horizontal"] [data-testid="stCaptionContainer"] {
  word-break: normal; overflow-wrap: normal; hyphens: auto; }
/* Phones: one point per line, its anchor label beside it. */
@media (max-width: 640px) {
  [data-testid="stRadio"] [role="radiogroup"][aria-orientation="horizontal"] {
    grid-auto-flow: row; grid-auto-columns: auto; gap: 0.1rem; }
  [data-testid="stRadioCaptionSpacer"] { display: none; }
}
[data-testid="stForm"] [data-testid="stElementContainer"] { margin-bottom: 0.5rem; }
#skingen-run { display: none; }
[data-testid="stElementContainer"]:has(> [data-testid="stHtml"] script) { display: none; }
</style>
"""


def hide_chrome(top_of: str | None = None, language: str = "en") -> None:
    """The page CSS. With ``top_of`` (the id of the step shown) also a script that shows each new step from
    its top: Streamlit keeps the scroll position, so after "Next" at the bottom of a long case the following
    case would open half-way down, below its photo. One element for both: every element costs a message on
    every run (docs/performance.md). The script also sets the page's ``lang`` to the participant's
    ``language`` (a protocol or catalog code, ``[a-z]{2,3}``), so screen readers pronounce it as written."""
    if top_of is None:
        st.html(_CSS)
        return
    scroll = "document.querySelector('[data-testid=\"stMain\"]')?.scrollTo(0, 0);"
    lang = f"document.documentElement.lang = '{language}';"
    st.html(f"{_CSS}<script>/* {top_of} */ {scroll} {lang}</script>", unsafe_allow_javascript=True)


def progress(position: Position) -> None:
    """'Case 3 of 8' on trials, and a bar over the whole study once its length is known."""
    step = position.step
    case = None
    if step.kind == "trial" and step.trial_number and step.trials_total:
        case = _("Case {number} of {total}").format(number=step.trial_number, total=step.trials_total)
    if position.total:
        st.progress(min(1.0, position.index / (position.total - 1)), text=case)
    elif case:
        st.caption(case)


def run_counter(inputs: int) -> None:
    """Test hook: a hidden count of finished reruns, rendered last, that browser tests wait on.

    ``inputs`` is how many answer widgets the page holds: the browser loads each widget type's code on first
    use, so a widget can appear a moment after the counter; tests wait for both.
    """
    runs = st.session_state.get("skingen.runs", 0) + 1
    st.session_state["skingen.runs"] = runs
    st.html(f'<div id="skingen-run" data-inputs="{inputs}">{runs}</div>')


def input_count(visit: Visit) -> int:
    """Answer widgets on the visit's page: consent checkboxes, or one per expected answer field."""
    if visit.page == "consent" and visit.engine is not None:
        return len(visit.engine.protocol.consent.statements)
    if visit.page in {"questions", "trial"} and visit.position is not None:
        return len(expected_fields(visit.position.step))
    return 0

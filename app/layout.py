"""Page furniture shared by all participant pages: no Streamlit chrome, a progress line, test hooks."""

from __future__ import annotations

import streamlit as st

from app.context import Visit
from app.i18n import _
from study.engine import Position
from study.path import expected_fields

IMAGE_KEY = "skingen-image"
"""Key prefix of a trial image's container (its CSS class ``st-key-skingen-image-…``): the image and the
"Enlarge" button laid over it."""

# Participants get a plain page: no toolbar, menu, deploy button, header stripe or "Running…" widget.
# client.toolbarMode and client.showSidebarNavigation (see app/server.py) do most of this already; the CSS
# also covers `streamlit run` without our config.
_CSS = """
<style>
header[data-testid="stHeader"], [data-testid="stToolbar"], [data-testid="stDecoration"],
[data-testid="stMainMenu"], [data-testid="stAppDeployButton"], [data-testid="stStatusWidget"],
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"],
[data-testid="stElementToolbar"], [data-testid="stHeaderActionElements"] { display: none !important; }
.block-container { max-width: 52rem; padding-top: 1.5rem; padding-bottom: 4rem; }
[data-testid="stMarkdownContainer"] hr { margin: 1rem 0; }
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
  [data-testid="stRadio"] [role="radiogroup"][aria-orientation="horizontal"] > div {
    display: flex; flex-direction: row; align-items: center; gap: 0.6rem; }
  [role="radiogroup"][aria-orientation="horizontal"] [data-testid="stRadioCaption"] { margin: 0; padding: 0; }
}
[data-testid="stForm"] [data-testid="stElementContainer"] { margin-bottom: 0.5rem; }
/* Captions (progress, notes, rating anchors) in the text colour, lightened: Streamlit's own grey has a
   contrast of 3.9:1 on white, below WCAG AA's 4.5:1; this is 6.8:1 (and as readable on the dark theme). */
[data-testid="stCaptionContainer"] { color: inherit; opacity: 0.8; }
/* Keyboard users: wherever the focus is shows as a 2 px ring in the theme's blue (8.6:1 on white).
   Streamlit's own rings are pale (about 2.4:1, none at all for the page's scroll area, which it puts in the
   tab order), below the 3:1 WCAG 2.1 asks of what shows a state (1.4.11). Checkboxes and radio buttons
   hide their inputs: their labels carry the ring. The completion code's copy button is always there, not
   only under a mouse pointer (which also kept it out of the tab order). */
:is(a, button, input, textarea, select, [tabindex]):focus-visible {
  outline: 2px solid #1d4f91 !important; outline-offset: 2px; }
label:has(> span > input:focus-visible), label:has(> input:focus-visible) {
  outline: 2px solid #1d4f91; outline-offset: 2px; border-radius: 2px; }
[data-testid="stMain"]:focus-visible { outline-offset: -2px; }
[data-testid="stCode"] > div:has([data-testid="stElementToolbarButton"]) {
  opacity: 1 !important; visibility: visible !important; transition: none !important; }
/* A trial image: its "Enlarge" button lies over the whole image, so a tap or click anywhere on it enlarges
   it (and the server logs it). The button shows its magnifier in the image's corner; its label stays for
   screen readers. */
[class*="st-key-skingen-image-"] { position: relative; gap: 0; }
[class*="st-key-skingen-image-"] > [data-testid="stElementContainer"]:has([data-testid="stButton"]) {
  position: absolute; inset: 0; width: auto !important; margin: 0 !important; }
[class*="st-key-skingen-image-"] [data-testid="stButton"],
[class*="st-key-skingen-image-"] [data-testid="stButton"] > button { width: 100%; height: 100%; }
[class*="st-key-skingen-image-"] [data-testid="stButton"] > button {
  position: relative; padding: 0; min-height: 0; border-radius: 4px; background: transparent; }
[class*="st-key-skingen-image-"] button [data-testid="stIconMaterial"] {
  position: absolute; top: 0.35rem; right: 0.35rem; padding: 0.2rem; border-radius: 50%;
  background: rgba(255, 255, 255, 0.9); color: #31333f; box-shadow: 0 0 0 1px rgba(49, 51, 63, 0.3); }
[class*="st-key-skingen-image-"] [data-testid="stImageCaption"] p { font-size: 0.8rem; line-height: 1.35; }
/* A row of reference thumbnails shrinks with the page instead of scrolling sideways. */
[data-testid="stColumn"]:has(> [data-testid="stVerticalBlock"] > [data-testid="stLayoutWrapper"]
  > [class*="st-key-skingen-image-"]) { min-width: 0; }
[class*="st-key-skingen-image-"] button [data-testid="stMarkdownContainer"] {
  position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); white-space: nowrap; }
/* Phones: the case photo as a large thumbnail, the references in one row under the AI's words. */
@media (max-width: 640px) {
  .st-key-skingen-image-case_photo-1 { max-width: min(100%, 15rem); }
  [data-testid="stHorizontalBlock"] { row-gap: 1rem; }
}
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

"""Drive the participant app headless with Streamlit's AppTest, the way a participant clicks through it."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Widget

from app.context import widget_key

APP = Path(__file__).resolve().parents[1] / "app" / "main.py"
TICK_ALL = ("read_information", "voluntary", "agree_data")
TEXT_ELEMENTS = (
    "title",
    "header",
    "subheader",
    "markdown",
    "caption",
    "error",
    "warning",
    "success",
    "info",
    "code",
)


class AppParticipant:
    """One browser tab: an AppTest session that starts from a URL's query parameters."""

    def __init__(self, query: dict[str, str] | None = None) -> None:
        self.at = AppTest.from_file(str(APP), default_timeout=30)
        for key, value in (query or {}).items():
            self.at.query_params[key] = value
        self.at.run()
        self.check()

    # --- reading ------------------------------------------------------------------------------------------
    @property
    def token(self) -> str | None:
        value = self.at.query_params.get("token")
        return value[0] if isinstance(value, list) else value

    @property
    def page(self) -> str:
        return self.at.session_state["skingen.visit"].page

    @property
    def step_key(self) -> str | None:
        position = self.at.session_state["skingen.visit"].position
        return position.step.key if position else None

    def text(self) -> str:
        """All text the page shows (markdown, titles, captions, alerts, progress and widget labels)."""
        parts = []
        for kind in TEXT_ELEMENTS:
            parts += [str(e.value) for e in getattr(self.at, kind)]
        parts += [bar.proto.text for bar in self.at.get("progress") if bar.proto.text]
        for kind in ("radio", "checkbox", "selectbox", "text_area", "number_input", "slider"):
            parts += [w.label for w in getattr(self.at, kind)]
        return "\n".join(parts)

    def images(self) -> list:
        return list(self.at.get("image"))

    def check(self) -> None:
        assert not self.at.exception, [e.message for e in self.at.exception]

    # --- acting -------------------------------------------------------------------------------------------
    def consent(self, ticked=TICK_ALL) -> AppParticipant:
        for box in self.at.checkbox:
            if box.key.removeprefix("consent:") in ticked:
                box.check()
        self.at.button(key="consent.agree").click().run()
        self.check()
        return self

    def answer(
        self, value: int = 4, diagnosis: str = "psoriasis", skip: tuple[str, ...] = ()
    ) -> AppParticipant:
        """Answer every question on the page as its item kind's example answer leaning to ``value``, with
        ``diagnosis`` for diagnosis items (except answer fields named in ``skip``)."""
        position = self.at.session_state["skingen.visit"].position
        if position is None:
            return self
        step = position.step
        widgets = {node.key: node for node in self.at if isinstance(node, Widget) and node.key}
        for item in step.items:
            answer = item.example_answer(value) | ({item.id: diagnosis} if item.diagnoses else {})
            kept = {field: given for field, given in answer.items() if field not in skip}
            for name, state in item.widget_values(kept).items():
                if state is not None:
                    widgets[widget_key(step.key, name)].set_value(state)
        return self

    def submit(self) -> AppParticipant:
        self.at.button[-1].click().run()
        self.check()
        return self

    def advance(self, value: int = 4) -> AppParticipant:
        return self.answer(value).submit()

    def reload(self) -> AppParticipant:
        """A browser reload: a fresh session that only knows the URL."""
        query = {k: (v[0] if isinstance(v, list) else v) for k, v in self.at.query_params.items()}
        return AppParticipant(query)

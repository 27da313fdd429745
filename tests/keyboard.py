"""A participant with a keyboard and no mouse: Tab and Shift+Tab from control to control, Space, Enter and the
arrow keys to answer, Enter on the page's button to go on (the only script it runs on the page reads where the
focus is, and takes it away and back to see the control without it).

:meth:`KeyboardUser.answer_page` walks the page's tab order (round, as a browser's is) and answers each
question it lands on; with ``check_focus`` it also proves that every control shows where the focus is (enough
of the control's pixels change with the focus, by a contrast of 3:1) and that every control of the page is in
the tab order.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from tests.browser import RERUN_DONE

# What the focused element is, and the part of the page that shows it: a radio or checkbox input is
# visually hidden, its label is what a person sees.
_FOCUSED = """() => {
  const e = document.activeElement;
  if (!e || e === document.body) return null;
  const kind = e.type === 'radio' || e.type === 'checkbox' ? e.type
    : e.getAttribute('role') === 'combobox' ? 'combobox'
    : e.tagName === 'TEXTAREA' ? 'text'
    : e.tagName === 'BUTTON' || e.tagName === 'A' ? e.tagName.toLowerCase() : 'other';
  const shown = kind === 'radio' || kind === 'checkbox' ? e.closest('label') : e;
  const box = shown.getBoundingClientRect();
  const question = e.closest('[data-testid="stRadio"], [data-testid="stSelectbox"], [data-testid="stCheckbox"], '
    + '[data-testid="stTextArea"]');
  const label = question?.querySelector('[data-testid="stWidgetLabel"]')?.innerText
    || question?.innerText || '';
  const group = kind === 'radio' ? Array.from(document.getElementsByName(e.name)) : [];
  let id = e.dataset.kbd;
  if (!id) { id = String(window.__kbd = (window.__kbd || 0) + 1); e.dataset.kbd = id; }
  return {
    id: kind === 'radio' ? 'radio:' + e.name : id, kind, label: label.trim(),
    name: (e.getAttribute('aria-label') || e.innerText || '').trim(),
    answered: kind === 'radio' ? group.some(r => r.checked) : kind === 'checkbox' ? e.checked
      : kind === 'combobox' || kind === 'text' ? e.value !== '' : null,
    options: group.length,
    submit: e.dataset.testid === 'stBaseButton-primaryFormSubmit' || e.dataset.testid === 'stBaseButton-primary',
    box: {x: box.x, y: box.y, width: box.width, height: box.height},
  };
}"""

# Every control a person could operate on the page, each tagged with the id that ``_FOCUSED`` reports (radios
# by group): what the tab order must reach.
_CONTROLS = """() => {
  const main = document.querySelector('[data-testid="stMain"]');
  const ids = new Map();
  for (const e of main.querySelectorAll('button, input, textarea, select, a[href]')) {
    const shown = e.type === 'radio' || e.type === 'checkbox' ? e.closest('label') : e;
    if (!shown || shown.getClientRects().length === 0 || e.disabled || e.tabIndex < 0
        || e.closest('[aria-hidden="true"]') || getComputedStyle(shown).visibility === 'hidden') continue;
    if (!e.dataset.kbd) e.dataset.kbd = String(window.__kbd = (window.__kbd || 0) + 1);
    const what = e.closest('[data-testid^="st"]')?.dataset.testid + ' ' + (e.innerText || e.value || '').trim();
    ids.set(e.type === 'radio' ? 'radio:' + e.name : e.dataset.kbd, what);
  }
  return Object.fromEntries(ids);
}"""


def contrasting_pixels(first: bytes, second: bytes) -> int:
    """How many pixels of two same-sized screenshots (PNG) differ by a contrast ratio of at least 3:1 (WCAG's
    relative luminance of sRGB colours)."""
    images = [
        np.asarray(Image.open(io.BytesIO(shot)).convert("RGB"), dtype=float) / 255 for shot in (first, second)
    ]
    luminance = []
    for rgb in images:
        linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
        luminance.append(linear @ np.array([0.2126, 0.7152, 0.0722]))
    high, low = np.maximum(*luminance), np.minimum(*luminance)
    return int(((high + 0.05) / (low + 0.05) >= 3.0).sum())


@dataclass
class Stop:
    """One place the Tab key lands on."""

    id: str
    kind: str
    label: str
    name: str
    answered: bool | None
    options: int
    submit: bool
    box: dict


class KeyboardUser:
    """Drives ``page`` (a Streamlit participant page with the test hooks on) with the keyboard only."""

    MAX_STOPS = 60  # a hang guard: the longest demo page has about 15 stops
    RING = (
        6  # px round a control's box where its focus indicator may be drawn (an outline's offset and width)
    )

    def __init__(self, page) -> None:
        self.page = page

    def focused(self) -> Stop | None:
        found = self.page.evaluate(_FOCUSED)
        return Stop(**found) if found else None

    def tab(self, back: bool = False) -> Stop | None:
        self.page.keyboard.press("Shift+Tab" if back else "Tab")
        return self.focused()

    def runs(self) -> int:
        counter = self.page.locator("#skingen-run")
        return int(counter.text_content() or 0) if counter.count() else 0

    def press_and_wait(self, key: str) -> None:
        """Press ``key`` on the focused button and wait for the app's rerun to finish."""
        before = self.runs()
        self.page.keyboard.press(key)
        self.page.wait_for_function(RERUN_DONE, arg=[before])

    def answer(self, stop: Stop, option: int) -> None:
        """Answer the focused question: tick a checkbox, choose option ``option`` (1-based) of a radio group,
        the first entry of a selectbox, or type into a text box."""
        keys = self.page.keyboard
        if stop.kind == "checkbox":
            keys.press("Space")
        elif stop.kind == "radio":
            keys.press("Space")  # selects the option the focus is on: the first (none was chosen)
            for _ in range(option - 1):
                keys.press("ArrowDown")
        elif stop.kind == "combobox":
            keys.press("ArrowDown")  # opens the list on its first option
            self.page.get_by_role("listbox").wait_for()
            keys.press("Enter")
        elif stop.kind == "text":
            keys.type("Typed with the keyboard.")
        after = self.focused()
        assert after is not None and after.id == stop.id and after.answered, (
            f"the keyboard could not answer {stop.label!r}"
        )

    def focus_problem(self, stop: Stop) -> str | None:
        """What is wrong with how the focused control shows its focus, or None.

        The control's box and :data:`RING` pixels round it are compared with and without the focus (the
        test takes the focus away and gives it back by script: nothing a participant does, only to see the
        control both ways). Pixels whose two colours differ by a contrast of 3:1 or more are the visible
        focus indicator (WCAG 2.1's 3:1 for the visual information that shows a state, 1.4.11); there must
        be at least a one-pixel ring's worth round a square of the box's smaller side."""
        box = stop.box
        viewport = self.page.viewport_size
        x, y = max(box["x"] - self.RING, 0), max(box["y"] - self.RING, 0)
        right = min(box["x"] + box["width"] + self.RING, viewport["width"])
        bottom = min(box["y"] + box["height"] + self.RING, viewport["height"])
        clip = {"x": x, "y": y, "width": max(right - x, 1), "height": max(bottom - y, 1)}
        focused = self.page.screenshot(clip=clip, animations="disabled")
        self.page.evaluate(
            "() => { window.__kbdStop = document.activeElement; document.activeElement.blur(); }"
        )
        unfocused = self.page.screenshot(clip=clip, animations="disabled")
        self.page.evaluate("() => window.__kbdStop.focus()")
        back = self.focused()
        assert back is not None and back.id == stop.id, f"could not give the focus back to {stop.name!r}"
        changed = contrasting_pixels(focused, unfocused)
        wanted = 4 * round(min(box["width"], box["height"]))
        if changed >= wanted:
            return None
        what = (stop.name or stop.label)[:60]
        return f"{stop.kind} {what!r}: its focus shows in {changed} pixels at 3:1, wanted {wanted}"

    def answer_page(self, choose: Callable[[Stop], int], check_focus: bool = False) -> list[str]:
        """Tab round the page answering every question it meets (option ``choose(stop)`` of a radio group),
        then press Enter on the page's button. Returns what ``check_focus`` found wrong: controls without a
        visible focus indicator, and controls the tab order never reached."""
        problems: list[str] = []
        visited: list[Stop] = []
        controls = self.page.evaluate(_CONTROLS)  # before the first Tab: it tags them
        rounds: dict[str, bool] = {}  # submit buttons passed once with controls still unvisited
        for _ in range(self.MAX_STOPS):
            stop = self.tab()
            if stop is None:
                continue
            self.page.evaluate("() => document.activeElement.scrollIntoView({block: 'nearest'})")
            stop = self.focused() or stop  # its box where it is now on screen
            first_visit = stop.id not in {seen.id for seen in visited}
            problem = self.focus_problem(stop) if check_focus and first_visit else None
            if problem:
                problems.append(problem)
            if first_visit:
                visited.append(stop)
            if stop.answered is False:
                self.answer(stop, choose(stop))
            if stop.submit and self.unanswered() == 0:
                missed = {c: what for c, what in controls.items() if c not in {seen.id for seen in visited}}
                if check_focus and missed and not rounds.get(stop.id):
                    rounds[stop.id] = True  # once more round the page, to the controls before the start
                    continue
                if check_focus:
                    problems += [f"not reachable with Tab: {what}" for what in missed.values()]
                self.press_and_wait("Enter")
                return problems
        trail = ", ".join(f"{stop.kind} {stop.name or stop.label!r}" for stop in visited)
        raise AssertionError(f"no way to the page's button in {self.MAX_STOPS} Tab presses; met {trail}")

    def focus_round(self) -> list[str]:
        """Tab once round a page that asks nothing (the completion page): every control must be reached and
        show its focus. Returns what is wrong, as :meth:`answer_page` does."""
        controls = self.page.evaluate(_CONTROLS)
        problems: list[str] = []
        visited: set[str] = set()
        for _ in range(self.MAX_STOPS):
            stop = self.tab()
            if stop is None:
                continue
            if stop.id in visited:
                return problems + [
                    f"not reachable with Tab: {what}" for c, what in controls.items() if c not in visited
                ]
            visited.add(stop.id)
            problem = self.focus_problem(stop)
            if problem:
                problems.append(problem)
        raise AssertionError(f"the tab order did not come round in {self.MAX_STOPS} Tab presses")

    def unanswered(self) -> int:
        """Questions on the page without an answer (radio groups, selectboxes, consent checkboxes)."""
        return self.page.evaluate("""() => {
          const main = document.querySelector('[data-testid="stMain"]');
          const groups = Array.from(main.querySelectorAll('[role="radiogroup"]'))
            .filter(g => !g.querySelector('input:checked')).length;
          const boxes = Array.from(main.querySelectorAll('[role="combobox"]')).filter(e => e.value === '').length;
          const ticks = Array.from(main.querySelectorAll('[data-testid="stCheckbox"] input'))
            .filter(e => !e.checked).length;
          return groups + boxes + ticks;
        }""")

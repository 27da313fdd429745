"""axe-core (the npm package, pinned in tests/js/package.json) run inside a page of a real browser.

``scripts/test.sh`` installs it with ``npm ci --prefix tests/js``; the browser tests inject its
``axe.min.js`` into the page and ask for the WCAG 2.1 A and AA rules. Only serious and critical violations
fail a test: moderate and minor ones are advice (axe's own impact scale).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.conftest import require

AXE_JS = Path(__file__).resolve().parent / "js" / "node_modules" / "axe-core" / "axe.min.js"
WCAG_21_AA = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")
FAILING_IMPACTS = ("serious", "critical")

_RUN = """async (tags) => {
  const result = await axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']});
  return result.violations.map(v => ({
    rule: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map(n => ({target: n.target.join(' '), summary: n.failureSummary})),
  }));
}"""


@dataclass(frozen=True)
class Violation:
    """One axe rule that failed on a page, with the elements (CSS selectors) that fail it."""

    page: str
    rule: str
    impact: str
    help: str
    targets: tuple[str, ...]
    summary: str

    def __str__(self) -> str:
        shown = "\n      ".join(self.targets[:5])
        return f"{self.page}: {self.rule} ({self.impact}) {self.help}\n      {shown}\n      {self.summary}"


def require_axe() -> None:
    """Skip locally (fail in CI) when axe-core has not been installed from npm."""
    require(AXE_JS.exists(), f"{AXE_JS} is missing (npm ci --prefix tests/js)")


def violations(page, name: str) -> list[Violation]:
    """The serious and critical WCAG 2.1 A/AA violations of ``page`` as it is drawn now; ``name`` labels
    them in a test's report."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE_JS))
    found = page.evaluate(_RUN, list(WCAG_21_AA))
    return [
        Violation(
            name,
            v["rule"],
            v["impact"],
            v["help"],
            tuple(n["target"] for n in v["nodes"]),
            v["nodes"][0]["summary"] if v["nodes"] else "",
        )
        for v in found
        if v["impact"] in FAILING_IMPACTS
    ]

"""Diagnosis → prompt and negative prompt, from templates in ``data/prompt_templates.yaml``.

Variation is controlled, not random: skin tone (Fitzpatrick I–VI), body site and severity are explicit
arguments, and :meth:`PromptBuilder.variations` cycles body sites in a fixed order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from formats.taxonomy import UNKNOWN, Taxonomy
from skingen.errors import SkinGenError

DEFAULT_TEMPLATES = Path(__file__).parent / "data" / "prompt_templates.yaml"


@dataclass(frozen=True)
class Prompt:
    prompt: str
    negative_prompt: str
    condition: str
    skin_tone: str
    body_site: str
    severity: str


class PromptBuilder:
    """Fills the prompt templates for a taxonomy condition."""

    def __init__(self, taxonomy: Taxonomy, templates: dict[str, object]) -> None:
        self.taxonomy = taxonomy
        self.prompt_template = str(templates["prompt"])
        self.negative_prompt = str(templates.get("negative_prompt", ""))
        self.skin_tones: dict[str, str] = dict(templates["skin_tones"])
        self.severities: dict[str, str] = dict(templates["severities"])
        self.default_skin_tone = str(templates["default_skin_tone"])
        self.default_severity = str(templates["default_severity"])
        # Only captions of dataset images need these (DDI labels groups; many images have no tone label).
        self.skin_tone_groups: dict[str, str] = dict(templates.get("skin_tone_groups", {}))
        self.unknown_skin_tone: str | None = templates.get("unknown_skin_tone")

    @classmethod
    def load(cls, taxonomy: Taxonomy, path: str | Path | None = None) -> PromptBuilder:
        path = Path(path) if path is not None else DEFAULT_TEMPLATES
        try:
            return cls(taxonomy, yaml.safe_load(path.read_text(encoding="utf-8")))
        except OSError as exc:
            raise SkinGenError(f"prompt templates not readable: {path} ({exc.strerror})") from exc
        except (yaml.YAMLError, KeyError, TypeError) as exc:
            raise SkinGenError(f"prompt templates {path} are malformed: {exc!r}") from exc

    def build(
        self,
        condition: str,
        *,
        skin_tone: str | None = None,
        body_site: str | None = None,
        severity: str | None = None,
        trigger: str | None = None,
    ) -> Prompt:
        """The prompt for ``condition`` (a taxonomy id); unset options use the template defaults."""
        if condition == UNKNOWN:
            raise SkinGenError("cannot build a prompt for an 'unknown' diagnosis")
        entry = self.taxonomy.get(condition)
        skin_tone = skin_tone or self.default_skin_tone
        severity = severity or self.default_severity
        if skin_tone not in self.skin_tones:
            raise SkinGenError(f"skin_tone {skin_tone!r}: expected Fitzpatrick {', '.join(self.skin_tones)}")
        if severity not in self.severities:
            raise SkinGenError(f"severity {severity!r}: expected one of {', '.join(self.severities)}")
        body_site = body_site or entry.body_sites[0]
        text = self._fill(condition, self.skin_tones[skin_tone], body_site, severity, trigger)
        return Prompt(text, self.negative_prompt, condition, skin_tone, body_site, severity)

    def caption(self, condition: str, *, skin_tone: str, body_site: str | None) -> str:
        """The training caption of a dataset image: the prompt template of :meth:`build`, filled with what the
        dataset says about the image and nothing more.

        ``skin_tone`` is a Fitzpatrick type, a group ("V-VI", described by the templates' ``skin_tone_groups``)
        or "" for unknown (``unknown_skin_tone``); an unknown body site is "skin". The defaults of
        :meth:`build` (type III, the condition's first typical site) would caption images with what they may
        not show. Severity is the template default: the datasets do not grade it.
        """
        if skin_tone in self.skin_tones:
            description = self.skin_tones[skin_tone]
        elif skin_tone in self.skin_tone_groups:
            description = self.skin_tone_groups[skin_tone]
        elif not skin_tone and self.unknown_skin_tone is not None:
            description = str(self.unknown_skin_tone)
        else:
            key = f"skin_tone_groups.{skin_tone}" if skin_tone else "unknown_skin_tone"
            raise SkinGenError(f"prompt templates have no {key} to caption images of skin tone {skin_tone!r}")
        return self._fill(condition, description, body_site or "skin", self.default_severity, None)

    def _fill(
        self, condition: str, skin_tone: str, body_site: str, severity: str, trigger: str | None
    ) -> str:
        entry = self.taxonomy.get(condition)
        return self.prompt_template.format(
            trigger=f"{trigger} " if trigger else "",
            name=entry.display_name.lower(),
            morphology=entry.morphology,
            body_site=body_site,
            skin_tone=skin_tone,
            severity=self.severities[severity],
        )

    def variations(
        self,
        condition: str,
        count: int,
        *,
        skin_tone: str | None = None,
        severity: str | None = None,
        trigger: str | None = None,
    ) -> list[Prompt]:
        """``count`` prompts for ``condition``, cycling its typical body sites in order."""
        sites = self.taxonomy.get(condition).body_sites
        return [
            self.build(
                condition,
                skin_tone=skin_tone,
                body_site=sites[i % len(sites)],
                severity=severity,
                trigger=trigger,
            )
            for i in range(count)
        ]

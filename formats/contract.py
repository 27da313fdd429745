"""The export contract: the tables ``skingen-study export`` writes and ``skingen-analysis`` reads.

This is the only part of ``study`` the statistics depend on (docs/export-format.md documents every column),
so it imports nothing: no pandas, no database, no engine. The export builds its frames with these columns;
the analysis validates its input against them, whether the frames come from CSV files or straight from a
database export.
"""

from __future__ import annotations

from collections.abc import Iterable

# --- tables -------------------------------------------------------------------------------------------------
STUDY_COLUMNS = (
    "protocol_id",
    "version",
    "title",
    "design",
    "baseline",
    "visual",
    "conditions",
    "content_hash",
    "bundle_id",
    "bundle_version",
    "relevance_item",
    "exported_at",
    "prereg_hash",
    "prereg_hash_protocol",
    "prereg_changed",
    "planned_participants",
    "labels",
)
"""``labels``: JSON of what readers see instead of ids — ``conditions`` {id: label}, ``items`` {id: text} and
``anchors`` {id: {point: label}} of the questionnaire items, ``rating_items`` {id: text} and ``rating_anchors``;
``prereg_hash``: the preregistration stored at ``init``; ``prereg_hash_protocol``: the preregistration
regenerated from this version's protocol (they differ when the plan changed after preregistration);
``prereg_changed``: ';'-joined sections of the document that differ from the preregistered version's."""
RESPONSE_COLUMNS = (
    "participant_id",
    "stratum",
    "arm",
    "sequence",
    "period",
    "condition",
    "case_id",
    "ai_correct",
    "step",
    "item",
    "construct",
    "instrument",
    "subscale",
    "value",
    "reverse_coded",
    "scale_min",
    "scale_max",
    "attention_check",
    "shown_at",
    "submitted_at",
    "rt_ms",
)
PARTICIPANT_COLUMNS = (
    "participant_id",
    "protocol_version",
    "stratum",
    "arm",
    "sequence",
    "status",
    "current_step",
    "steps_total",
    "started_at",
    "completed_at",
    "duration_s",
    "attention_failures",
    "excluded",
    "exclusion_reasons",
    "language",
)
"""``language``: the language the participant took the study in (an ISO 639 code of the protocol's
``languages``, fixed at consent; the protocol's first language for participants enrolled before languages
existed). Added last: exports of earlier versions are the same byte for byte except for this column."""
# ``skin_condition`` is the condition the rater was told the image shows (a disease, not an experimental
# condition: that is ``condition`` in responses.csv). ``image_kind``: generated, retrieved (a real reference
# photo) or case_photo; ``generated`` is 1 for generated images.
RATING_COLUMNS = (
    "rater_id",
    "image_id",
    "case_id",
    "skin_condition",
    "generated",
    "image_kind",
    "item",
    "value",
    "rated_at",
    "closed_loop_diagnosis",
    "closed_loop_correct",
)
EVENT_COLUMNS = ("at", "participant_id", "kind", "step")
IMAGE_ENLARGE_EVENT = "image_enlarge"
"""events.csv ``kind`` of a participant enlarging an image of a trial (image_views.csv has the details)."""
# One row per image a participant enlarged on a trial (the app's "Enlarge" button; a server-side event each).
# ``image_kind``: case_photo, generated or retrieved; ``image``: 1-based position among the case's references
# of that kind as shown (1 for the case photo).
IMAGE_VIEW_COLUMNS = (
    "participant_id",
    "arm",
    "period",
    "condition",
    "case_id",
    "ai_correct",
    "step",
    "image_kind",
    "image",
    "at",
)
# One row per instrument the protocol includes: its construct (the item prefix) and the published scoring rule.
INSTRUMENT_COLUMNS = (
    "construct",
    "instrument",
    "name",
    "citation",
    "licence",
    "n_items",
    "items",
    "scale_min",
    "scale_max",
    "aggregate",
    "offset",
    "multiplier",
    "score_min",
    "score_max",
    "max_missing",
    "scoring_rule",
    "missing_rule",
    "subscales",
    "norms",
    "adapted",
    "adaptation",
)
"""``items``: ';'-joined item variables in order (each item's keying is ``reverse_coded`` in responses);
``subscales``: ``name=item,item;…``; ``norms``: the published norms as JSON ('' when none); ``adapted``: 0/1;
``adaptation``: what was changed and why."""
HYPOTHESIS_COLUMNS = (
    "hypothesis",
    "construct",
    "first",
    "second",
    "direction",
    "alpha",
    "correction",
    "statement",
    "sesoi",
)
"""The preregistered hypotheses: ``construct`` under condition ``first`` vs ``second`` in ``direction``
(greater, less, two_sided, equivalent, non_inferior), tested at ``alpha`` with ``correction`` across the
hypotheses; ``sesoi``: the smallest effect size of interest in construct-score points (equivalent /
non_inferior only, else empty)."""
WITHDRAW_EVENT = "withdraw"
"""events.csv ``kind`` of a withdrawal: the one row a withdrawn participant leaves (with no participant_id)."""
DECLINE_EVENT = "decline"
"""events.csv ``kind`` of someone who read the consent page and chose not to take part: content-free, one row
per decline (no participant_id, the day without a time), so the dashboard can count declines."""
IDENTIFIERS_SHOWN_EVENT = "identifiers_shown"
"""events.csv ``kind`` of a researcher having participants' recorded platform ids shown or downloaded."""
# Interactive conditions: one row per turn with the live model. ``mapped_condition`` is the taxonomy id the
# answer names ("unknown" when none); ``images`` the content-addressed cache keys shown, ";"-separated.
INTERACTION_COLUMNS = (
    "participant_id",
    "arm",
    "period",
    "condition",
    "case_id",
    "step",
    "turn",
    "kind",
    "question",
    "answer",
    "mapped_condition",
    "model_id",
    "latency_ms",
    "images",
    "asked_at",
    "answered_at",
)

# --- variable names ---------------------------------------------------------------------------------------
CONFIDENCE_SUFFIX = "_confidence"
"""``<item>_confidence``: the confidence rating that comes with a diagnosis item."""
INITIAL_SUFFIX = "_initial"
"""``<item>_initial``: judge–advisor trials (protocol ``trial.advice: after_initial``): a diagnosis item's answer
given before the AI's advice was shown, with its own ``_confidence``, ``__agrees_ai`` and ``__correct``; the
item itself holds the final answer, given after the advice."""
AGREES_AI = "__agrees_ai"
"""``<item>__agrees_ai``: derived 0/1, the participant's diagnosis equals the AI's."""
CORRECT = "__correct"
"""``<item>__correct``: derived 0/1, the participant's diagnosis equals the ground truth."""
AS_INTENDED = "__as_intended"
"""``<item>__as_intended``: derived 0/1, a manipulation check's answer is the one the protocol expects under
the participant's condition (between designs: their arm)."""
MANIPULATION_CONSTRUCT = "manipulation_check"

# Constructs of the derived 0/1 variables: the export writes them, the analysis reads them.
AGREEMENT_CONSTRUCT = "agreement_with_ai"
ACCURACY_CONSTRUCT = "diagnostic_accuracy"
# … and of the initial answers of judge–advisor trials (before the AI's advice).
INITIAL_AGREEMENT_CONSTRUCT = "initial_agreement_with_ai"
INITIAL_ACCURACY_CONSTRUCT = "initial_diagnostic_accuracy"
DERIVED_CONSTRUCTS = (
    AGREEMENT_CONSTRUCT,
    ACCURACY_CONSTRUCT,
    INITIAL_AGREEMENT_CONSTRUCT,
    INITIAL_ACCURACY_CONSTRUCT,
    MANIPULATION_CONSTRUCT,
)


def construct_order(constructs: Iterable[str]) -> list[str]:
    """The constructs a study compares, in the order every side lists and picks them (the analysis' family and
    report, the bots' planted construct, the preregistration's mixed models): by name, each once, the derived
    0/1 constructs left out (they are outcomes of diagnosis items, described per condition, not compared)."""
    return sorted({c for c in constructs if c and c not in DERIVED_CONSTRUCTS})

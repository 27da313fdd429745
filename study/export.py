"""Exports: long responses, participants, codebook, allocation table and audit log — de-identified by default.

The tables and their columns are the export contract (:mod:`formats.contract`, docs/export-format.md); the
analysis reads these frames directly (:func:`export_frames`) or from the CSV files (:func:`write_export`).
"""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import (
    AllocationSlot,
    Event,
    InteractionTurn,
    Participant,
    Rater,
    Rating,
    Response,
    StudyVersion,
    utcnow,
)
from db.session import Database
from formats.atomic import atomic_directory
from formats.contract import (
    AGREES_AI,
    AS_INTENDED,
    CONFIDENCE_SUFFIX,
    CORRECT,
    EVENT_COLUMNS,
    HYPOTHESIS_COLUMNS,
    IMAGE_ENLARGE_EVENT,
    IMAGE_VIEW_COLUMNS,
    INSTRUMENT_COLUMNS,
    INTERACTION_COLUMNS,
    PARTICIPANT_COLUMNS,
    RATING_COLUMNS,
    RESPONSE_COLUMNS,
    STUDY_COLUMNS,
    WITHDRAW_EVENT,
)
from formats.status import COMPLETED, status_at
from study.codebook import codebook, item_codebook
from study.exclusions import exclusion_reasons, failed_attention_checks
from study.items.diagnosis import UNSURE
from study.labelled import WIDE, WideTable, write_dta, write_sav
from study.path import ParticipantPath, PathCache, step_order
from study.prereg import changed_sections, document_hash
from study.prereg import document as prereg_document
from study.protocol.loading import LoadedProtocol
from study.protocol.model import Protocol
from study.rating import rating_images
from study.registry import RegistryError, active_version, check_schema, stored_protocol


def _iso(value: datetime | None) -> str:
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z") if value else ""


class _Version:
    """One registered version, with the lookups the export needs."""

    def __init__(self, study: StudyVersion) -> None:
        self.loaded: LoadedProtocol = stored_protocol(study)
        self.protocol = self.loaded.protocol
        self.version = study.version
        self.prereg_hash = study.prereg_hash
        self.items = self.protocol.items()
        self.variables = {v.variable: v for v in item_codebook(self.protocol)}
        self._paths = PathCache(self.loaded)

    def path(self, participant: Participant) -> ParticipantPath:
        return self._paths(participant.arm, participant.order_seed)


def _versions(
    db: Database, version_id: int | None, protocol_id: str | None
) -> tuple[dict[int, _Version], int]:
    """Every registered version of the chosen study (participants keep the version they enrolled in), and the
    key of the version whose protocol describes the export (``version_id``, else the active one)."""
    if version_id is None:
        chosen = active_version(db, protocol_id).id
    else:
        check_schema(db)
        chosen = version_id
    with db.read() as session:
        name = session.scalar(select(StudyVersion.protocol_id).where(StudyVersion.id == chosen))
        if name is None:
            raise RegistryError(f"{db.url} holds no registered study with key {chosen}")
        rows = session.scalars(select(StudyVersion).where(StudyVersion.protocol_id == name)).all()
    return {row.id: _Version(row) for row in rows}, chosen


def _response_rows(study: _Version, participant: Participant, responses: list[Response]) -> list[dict]:
    steps = {s.key: s for s in study.path(participant)}
    manifest = study.loaded.bundle.manifest
    rows = []
    for response in responses:
        step = steps.get(response.step_key)
        case = manifest.case(step.case_id) if step and step.case_id else None
        base = {
            "participant_id": participant.public_id,
            "stratum": participant.stratum or "",
            "arm": participant.arm or "",
            "sequence": participant.sequence or "",
            "period": step.period if step and step.period else "",
            "condition": step.condition if step and step.condition else "",
            "case_id": case.case_id if case else "",
            "ai_correct": int(case.ai_correct) if case else "",
            "step": response.step_key,
            "shown_at": _iso(response.shown_at),
            "submitted_at": _iso(response.submitted_at),
            "rt_ms": response.rt_ms,
        }
        values = [(response.item_id, response.value)]
        if response.item_id in study.items and study.items[response.item_id].diagnoses and case:
            chosen = response.value
            values += [
                (
                    response.item_id + AGREES_AI,
                    str(int(chosen != UNSURE and chosen == case.ai.skin_condition)),
                ),
                (response.item_id + CORRECT, str(int(chosen != UNSURE and chosen == case.ground_truth))),
            ]
        item = study.items.get(response.item_id)
        if item is not None and item.manipulation_check is not None:
            # the condition in force: the step's, or (post questions of a between design) the arm's
            condition = (step.condition if step else None) or (
                participant.arm if study.protocol.design == "between" else None
            )
            expected = item.manipulation_check.expected.get(condition or "")
            if expected is not None:
                values.append((response.item_id + AS_INTENDED, str(int(response.value == str(expected)))))
        for name, value in values:
            variable = study.variables.get(name)
            rows.append(
                {
                    **base,
                    "item": name,
                    "value": value,
                    "construct": variable.construct if variable else "",
                    "instrument": variable.instrument if variable else "",
                    "subscale": variable.subscale if variable else "",
                    "reverse_coded": int(variable.reverse_coded) if variable else 0,
                    "scale_min": variable.scale_min if variable and variable.scale_min is not None else "",
                    "scale_max": variable.scale_max if variable and variable.scale_max is not None else "",
                    "attention_check": int(variable.attention_check) if variable else 0,
                }
            )
    return rows


def _participant_row(
    study: _Version,
    participant: Participant,
    responses: list[Response],
    now: datetime,
    identifiers: list[str],
) -> dict:
    path = study.path(participant)
    completed = participant.status == COMPLETED
    status = status_at(
        participant.status, participant.last_activity_at, study.protocol.dropout_after_minutes, now
    )
    end = participant.completed_at
    duration = (end - participant.created_at).total_seconds() if end else None
    failures = failed_attention_checks(
        study.items, {r.item_id: r.value for r in responses if not r.item_id.endswith(CONFIDENCE_SUFFIX)}
    )
    reasons = exclusion_reasons(
        study.protocol.exclusions, completed=completed, duration_s=duration, attention_failures=failures
    )
    row = {
        "participant_id": participant.public_id,
        "protocol_version": study.version,
        "stratum": participant.stratum or "",
        "arm": participant.arm or "",
        "sequence": participant.sequence or "",
        "status": status,
        "current_step": path.current(participant.step_index).key,
        "steps_total": path.total or "",
        "started_at": _iso(participant.created_at),
        "completed_at": _iso(participant.completed_at),
        "duration_s": round(duration, 3) if duration is not None else "",
        "attention_failures": failures,
        "excluded": int(bool(reasons)),
        "exclusion_reasons": ";".join(reasons),
        "language": participant.language or study.protocol.languages[0],
    }
    for name in identifiers:
        row[name] = participant.url_params.get(name, "")
    return row


def export_frames(
    db: Database,
    *,
    version_id: int | None = None,
    protocol_id: str | None = None,
    include_identifiers: bool = False,
) -> dict[str, pd.DataFrame]:
    """All export tables as DataFrames, keyed ``study``, ``responses``, ``participants``, ``codebook``,
    ``allocation``, ``events``, ``image_views`` (and ``ratings`` when the protocol has a rating task,
    ``instruments`` and ``hypotheses`` when it includes instruments or declares hypotheses, ``interactions``
    when a condition is interactive).

    The study is the registered version ``version_id`` (e.g. a running engine's), else the active version of
    ``protocol_id``, else the only active study; every version of its protocol id is exported, described by
    that version's protocol.
    """
    studies, chosen = _versions(db, version_id, protocol_id)
    active = studies[chosen]
    identifiers = list(active.protocol.url_parameters) if include_identifiers else []
    now = utcnow()
    response_rows: list[dict] = []
    participant_rows: list[dict] = []
    with db.read() as session:
        # withdrawn participants are left out everywhere; only their content-free withdraw event stays
        participants = session.scalars(
            select(Participant)
            .where(Participant.version_id.in_(studies), Participant.withdrawn_at.is_(None))
            .order_by(Participant.id)
        ).all()
        by_participant: dict[int, list[Response]] = {p.id: [] for p in participants}
        for response in session.scalars(
            select(Response)
            .join(Participant)
            .where(Participant.version_id.in_(studies), Participant.withdrawn_at.is_(None))
            .order_by(Response.participant_id, Response.id)
        ):
            by_participant[response.participant_id].append(response)
        public = {p.id: p.public_id for p in participants}
        for participant in participants:
            study = studies[participant.version_id]
            responses = by_participant[participant.id]
            response_rows += _response_rows(study, participant, responses)
            participant_rows.append(_participant_row(study, participant, responses, now, identifiers))
        slots = session.scalars(
            select(AllocationSlot)
            .where(AllocationSlot.version_id.in_(studies))
            .order_by(AllocationSlot.version_id, AllocationSlot.stratum, AllocationSlot.position)
        ).all()
        allocation = [
            {
                "protocol_version": studies[s.version_id].version,
                "stratum": s.stratum,
                "position": s.position,
                "block": s.block,
                "block_size": s.block_size,
                "arm": s.arm,
                "claimed": int(s.participant_id is not None),
                **({"participant_id": public.get(s.participant_id, "")} if include_identifiers else {}),
            }
            for s in slots
        ]
        logged = [
            e
            for e in session.scalars(select(Event).where(Event.version_id.in_(studies)).order_by(Event.id))
            if e.participant_id is None or e.participant_id in public or e.kind == WITHDRAW_EVENT
        ]
        events = [
            {
                "at": _iso(e.at),
                "participant_id": public.get(e.participant_id, "") if e.participant_id else "",
                "kind": e.kind,
                "step": e.step_key or "",
            }
            for e in logged
        ]
        image_views = _image_view_rows(logged, studies, {p.id: p for p in participants})
        ratings = _rating_rows(session, active)
        interactions = _interaction_rows(session, studies, {p.id: p for p in participants})
    protocol = active.protocol
    frames = {
        "study": pd.DataFrame(
            [
                {
                    "protocol_id": protocol.study.id,
                    "version": protocol.study.version,
                    "title": protocol.study.title,
                    "design": protocol.design,
                    "baseline": protocol.baseline,
                    "visual": protocol.compared,  # the export's column keeps its published name
                    "conditions": ";".join(protocol.condition_ids),
                    "content_hash": active.loaded.content_hash,
                    "bundle_id": active.loaded.bundle.manifest.bundle_id,
                    "bundle_version": active.loaded.bundle.manifest.version,
                    "relevance_item": (protocol.rating and protocol.rating.relevance_item) or "",
                    "exported_at": _iso(now),
                    **_prereg_columns(studies, active),
                    "labels": json.dumps(reader_labels(protocol), ensure_ascii=False),
                }
            ],
            columns=list(STUDY_COLUMNS),
        ),
        "responses": pd.DataFrame(response_rows, columns=list(RESPONSE_COLUMNS)),
        "participants": pd.DataFrame(participant_rows, columns=[*PARTICIPANT_COLUMNS, *identifiers]),
        "codebook": pd.DataFrame([asdict(v) for v in codebook(active.protocol)]).replace({True: 1, False: 0}),
        "allocation": pd.DataFrame(allocation),
        "events": pd.DataFrame(events, columns=list(EVENT_COLUMNS)),
        "image_views": pd.DataFrame(image_views, columns=list(IMAGE_VIEW_COLUMNS)),
    }
    if protocol.instruments:
        frames["instruments"] = pd.DataFrame(_instrument_rows(protocol), columns=list(INSTRUMENT_COLUMNS))
    if protocol.hypotheses:
        frames["hypotheses"] = pd.DataFrame(_hypothesis_rows(protocol), columns=list(HYPOTHESIS_COLUMNS))
    if ratings is not None:
        frames["ratings"] = pd.DataFrame(ratings, columns=list(RATING_COLUMNS))
    if protocol.interactive_conditions:
        frames["interactions"] = pd.DataFrame(interactions, columns=list(INTERACTION_COLUMNS))
    return frames


def reader_labels(protocol: Protocol) -> dict:
    """What a report shows instead of ids: condition labels, item texts and scale anchors (study.csv ``labels``)."""
    items = list(protocol.items().values())
    ratings = list(protocol.rating.items) if protocol.rating else []

    def anchors(of: list) -> dict:
        return {
            i.id: {str(code): label for code, label in i.value_labels().items()}
            for i in of
            if i.value_labels()
        }

    return {
        "conditions": {c.id: c.label for c in protocol.conditions},
        "items": {i.id: i.text for i in items},
        "anchors": anchors(items),
        "rating_items": {i.id: i.text for i in ratings},
        "rating_anchors": anchors(ratings),
    }


def _prereg_columns(studies: dict[int, _Version], active: _Version) -> dict:
    """The stored preregistration hash, the one regenerated from the exported version's protocol, and which
    sections changed against the registered version whose document has the stored hash (when one has)."""
    stored = active.prereg_hash or ""
    current_text = prereg_document(active.protocol)
    current = document_hash(current_text)
    changed: list[str] = []
    if stored and stored != current:
        documents = [prereg_document(s.protocol) for s in studies.values()]
        original = next((d for d in documents if document_hash(d) == stored), None)
        changed = (
            changed_sections(original, current_text) if original else ["(preregistered document not known)"]
        )
    plan = active.protocol.preregistration.sample_size
    return {
        "prereg_hash": stored,
        "prereg_hash_protocol": current,
        "prereg_changed": ";".join(changed),
        "planned_participants": plan.participants if plan else "",
    }


def _instrument_rows(protocol: Protocol) -> list[dict]:
    """One row per included instrument: the scoring rule the analysis applies, and any adaptation."""
    rows = []
    for use in protocol.instruments:
        instrument, scoring = use.instrument, use.instrument.scoring
        items = [i for i in protocol.items().values() if i.instrument and i.construct == use.construct]
        adaptation = ""
        if use.adapt is not None:
            adaptation = (
                f"wording changed: {', '.join(use.adapt.wording) or 'none'}; "
                f"dropped: {', '.join(use.adapt.drop) or 'none'}; reason: {use.adapt.reason}"
            )
        rows.append(
            {
                "construct": use.construct,
                "instrument": instrument.id,
                "name": instrument.name,
                "citation": instrument.citation,
                "licence": instrument.licence_name,
                "n_items": len(instrument.items),
                "items": ";".join(i.id for i in items),
                "scale_min": 1,
                "scale_max": instrument.scale.points,
                "aggregate": scoring.aggregate,
                "offset": scoring.offset,
                "multiplier": scoring.multiplier,
                "score_min": scoring.range[0],
                "score_max": scoring.range[1],
                "max_missing": scoring.max_missing,
                "scoring_rule": scoring.rule,
                "missing_rule": scoring.missing,
                "subscales": ";".join(
                    f"{name}=" + ",".join(i.id for i in items if i.instrument.subscale == name)
                    for name in instrument.subscales
                ),
                "norms": instrument.norms.model_dump_json() if instrument.norms else "",
                "adapted": int(use.adapted),
                "adaptation": adaptation,
            }
        )
    return rows


def _image_view_rows(
    events: list[Event], studies: dict[int, _Version], participants: dict[int, Participant]
) -> list[dict]:
    """One row per image enlarged on a trial (the engine's ``image_enlarge`` events), with the trial's
    condition and case, so engagement can be compared by condition."""
    rows = []
    for event in events:
        participant = participants.get(event.participant_id) if event.participant_id else None
        if event.kind != IMAGE_ENLARGE_EVENT or participant is None:
            continue
        study = studies[participant.version_id]
        step = study.path(participant).step(event.step_key or "")
        case = study.loaded.bundle.manifest.case(step.case_id) if step and step.case_id else None
        rows.append(
            {
                "participant_id": participant.public_id,
                "arm": participant.arm or "",
                "period": step.period if step and step.period else "",
                "condition": step.condition if step and step.condition else "",
                "case_id": case.case_id if case else "",
                "ai_correct": int(case.ai_correct) if case else "",
                "step": event.step_key or "",
                "image_kind": event.detail.get("image_kind", ""),
                "image": event.detail.get("image", ""),
                "at": _iso(event.at),
            }
        )
    return rows


def _interaction_rows(
    session: Session, studies: dict[int, _Version], participants: dict[int, Participant]
) -> list[dict]:
    """One row per turn with the live model (no photo: the case photo is the bundle's, by case_id)."""
    rows = []
    turns = session.scalars(
        select(InteractionTurn)
        .where(InteractionTurn.participant_id.in_(participants))
        .order_by(InteractionTurn.participant_id, InteractionTurn.step_key, InteractionTurn.turn)
    )
    for turn in turns:
        participant = participants[turn.participant_id]
        step = studies[participant.version_id].path(participant).step(turn.step_key)
        rows.append(
            {
                "participant_id": participant.public_id,
                "arm": participant.arm or "",
                "period": step.period if step and step.period else "",
                "condition": step.condition if step and step.condition else "",
                "case_id": step.case_id if step and step.case_id else "",
                "step": turn.step_key,
                "turn": turn.turn,
                "kind": turn.kind,
                "question": turn.question,
                "answer": turn.answer,
                "mapped_condition": turn.condition or "",
                "model_id": turn.model_id or "",
                "latency_ms": turn.latency_ms if turn.latency_ms is not None else "",
                "images": ";".join(turn.images),
                "asked_at": _iso(turn.asked_at),
                "answered_at": _iso(turn.answered_at),
            }
        )
    return rows


def _hypothesis_rows(protocol: Protocol) -> list[dict]:
    correction = protocol.preregistration.correction
    return [
        {
            "hypothesis": h.id,
            "construct": h.construct,
            "first": h.comparison[0],
            "second": h.comparison[1],
            "direction": h.direction,
            "alpha": h.alpha,
            "correction": correction,
            "statement": h.statement,
            "sesoi": "" if h.sesoi is None else h.sesoi,
        }
        for h in protocol.hypotheses
    ]


def _rating_rows(session: Session, study: _Version) -> list[dict] | None:
    """One row per rating answer; ``generated`` and ``image_kind`` say what the image was (raters never see it)."""
    if study.protocol.rating is None:
        return None
    images = {image.image_id: image for image in rating_images(study.loaded)}
    raters = {
        r.id: r.public_id
        for r in session.scalars(select(Rater).where(Rater.protocol_id == study.protocol.study.id))
    }
    rows = []
    for rating in session.scalars(select(Rating).where(Rating.rater_id.in_(raters)).order_by(Rating.id)):
        image = images.get(rating.image_id)
        check = image.closed_loop if image else None
        rows.append(
            {
                "rater_id": raters[rating.rater_id],
                "image_id": rating.image_id,
                "case_id": image.case_id if image else "",
                "skin_condition": image.skin_condition if image else "",
                "generated": int(image.generated) if image else "",
                "image_kind": image.kind if image else "",
                "item": rating.item_id,
                "value": rating.value,
                "rated_at": _iso(rating.rated_at),
                "closed_loop_diagnosis": check.diagnosed if check else "",
                "closed_loop_correct": int(check.correct) if check else "",
            }
        )
    return rows


def exported_steps(
    db: Database, *, version_id: int | None = None, protocol_id: str | None = None
) -> tuple[str, ...]:
    """The step order (:func:`study.path.step_order`) of the version :func:`export_frames` describes with the
    same arguments: the wide table's column order."""
    versions, chosen = _versions(db, version_id, protocol_id)
    return step_order(versions[chosen].loaded)


def export_files(frames: dict[str, pd.DataFrame], wide: WideTable | None = None) -> dict[str, bytes]:
    """Every file of an export, by name: ``<name>.csv`` per frame, and with ``wide``
    ``responses_wide.csv`` / ``.sav`` (SPSS) / ``.dta`` (Stata) — the same table, labelled from the codebook."""
    files = {f"{name}.csv": frame.to_csv(index=False).encode("utf-8") for name, frame in frames.items()}
    if wide is not None:
        # numbers as written (4, not the 4.0 of a float column with missing answers), to 15 significant digits
        files[f"{WIDE}.csv"] = wide.frame.to_csv(index=False, float_format="%.15g").encode("utf-8")
        with tempfile.TemporaryDirectory() as folder:  # pyreadstat writes to paths only
            for suffix, write in ((".sav", write_sav), (".dta", write_dta)):
                path = Path(folder) / f"{WIDE}{suffix}"
                write(wide, path)
                files[path.name] = path.read_bytes()
    return files


def write_export(
    frames: dict[str, pd.DataFrame], out: Path, *, overwrite: bool = False, wide: WideTable | None = None
) -> list[Path]:
    """Write :func:`export_files` into the folder ``out``, which appears complete or not at all."""
    files = export_files(frames, wide)
    with atomic_directory(out, overwrite=overwrite) as staging:
        for name, data in files.items():
            (staging / name).write_bytes(data)
    return [out / name for name in files]


def export_zip(files: dict[str, bytes]) -> bytes:
    """One zip of an export's files (:func:`export_files`, plus e.g. a report), for one download."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()

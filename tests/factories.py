"""Small on-disk fixtures: a minimal stimulus bundle and protocol files built from the shipped examples."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml
from PIL import Image

from formats.bundle import (
    AIOutput,
    BundleManifest,
    Case,
    ClosedLoopCheck,
    ReferenceImage,
    RetrievalProvenance,
    RetrievedImage,
    SkinConditionEntry,
    write_manifest,
)
from skingen.bundle.writing import retrieved_caption
from study.crossover import williams_orders
from study.instruments import load_instrument

EXAMPLES = Path(__file__).resolve().parents[1] / "app" / "demo"
CONDITIONS = ("psoriasis", "eczema", "acne", "vitiligo")


def make_bundle(
    root: Path,
    n_cases: int = 6,
    wrong: tuple[int, ...] = (1, 4),
    retrieved: int = 0,
    *,
    closed_loop: bool = False,
) -> Path:
    """A bundle of ``n_cases`` 8×8 images; cases whose index is in ``wrong`` get a wrong AI diagnosis; with
    ``retrieved``, each case also gets that many "retrieved" real references (as ``--retrieve`` makes). With
    ``closed_loop``, each generated reference carries a closed-loop check: the first of each case passes, the
    second fails (as if ``skingen bundle build --evaluate`` had run)."""
    (root / "cases").mkdir(parents=True)
    cases = []
    for index in range(n_cases):
        truth = CONDITIONS[index % len(CONDITIONS)]
        said = CONDITIONS[(index + 1) % len(CONDITIONS)] if index in wrong else truth
        case_id = f"c{index + 1:02d}"
        Image.new("RGB", (8, 8), (200, 150 - index, 120)).save(root / "cases" / f"{case_id}.png")
        refs = []
        for r in range(2):
            path = root / "references" / case_id / f"{r}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (8, 8), (180, 120, 100 + r)).save(path)
            check = ClosedLoopCheck(diagnoser="test", diagnosed=said if r == 0 else "unknown", correct=r == 0)
            refs.append(
                ReferenceImage(
                    image=f"references/{case_id}/{r}.png",
                    caption=f"Example of {said}",
                    skin_condition=said,
                    closed_loop=check if closed_loop else None,
                )
            )
        cases.append(
            Case(
                case_id=case_id,
                image=f"cases/{case_id}.png",
                ground_truth=truth,
                ai=AIOutput(skin_condition=said, display_name=said.title(), text=f"It is {said}."),
                references=tuple(refs),
                retrieved=tuple(_retrieved(root, case_id, said, n) for n in range(retrieved)),
            )
        )
    manifest = BundleManifest(
        bundle_id="test",
        version="1",
        retrieval=_RETRIEVAL if retrieved else None,
        skin_conditions=tuple(SkinConditionEntry(id=c, display_name=c.title()) for c in CONDITIONS),
        cases=tuple(cases),
    )
    write_manifest(root, manifest)
    return root


_RETRIEVAL = RetrievalProvenance(
    data="DATA", data_sha256="0" * 64, features="clip", k=2, phash_distance=4, same_patient_excluded=False
)


def _retrieved(root: Path, case_id: str, condition: str, rank: int) -> RetrievedImage:
    relative = f"references/{case_id}/retrieved_{rank}.png"
    Image.new("RGB", (8, 8), (90, 60 + rank, 40)).save(root / relative)
    source, licence, attribution = "Atlas", "CC BY 4.0", f"photo by Dr. Example {rank}"
    return RetrievedImage(
        image=relative,
        caption=retrieved_caption(condition.title(), source, licence, attribution),
        skin_condition=condition,
        source=source,
        licence=licence,
        attribution=attribution,
        dataset_file=f"images/{condition}/{case_id}-{rank}.png",
        sha256="a" * 64,
        rank=rank + 1,
        distance=0.1 * (rank + 1),
    )


def example_protocol(design: str = "between", *, languages: bool = False) -> dict:
    """The demo protocol of ``design`` as data: in English only (as it was before it had languages, so tests
    that edit its texts with plain strings keep working), or with ``languages`` as shipped (English, German)."""
    data = yaml.safe_load((EXAMPLES / f"{design}.yaml").read_text(encoding="utf-8"))
    return data if languages else in_one_language(data, "en")


def in_one_language(data: dict, language: str) -> dict:
    """A protocol of several languages as a protocol of ``language`` alone: each ``{language: text}`` mapping
    becomes its text, and ``languages`` and the instruments' translations are dropped."""
    offered = set(data.get("languages", ()))

    def pick(value: object) -> object:
        if isinstance(value, dict):
            if offered and set(value) == offered:
                return value[language]
            return {k: pick(v) for k, v in value.items() if k != "translations"}
        if isinstance(value, list):
            return [pick(v) for v in value]
        return value

    return {k: pick(v) for k, v in data.items() if k != "languages"}


EXTRA_ARMS = (
    {"id": "retrieved_photos", "label": "Text and real example photos", "references": "retrieved"},
    {"id": "both_images", "label": "Generated and real examples", "references": ["generated", "retrieved"]},
)


def multi_arm_protocol(design: str, k: int) -> dict:
    """The example protocol with ``k`` (2..4) conditions: the demo's two plus retrieved / both-kinds arms.

    Block sizes are the smallest valid ones (one or two full rounds of the arms); the bundle needs retrieved
    references (``make_bundle(..., retrieved=1)``) once k > 2.
    """
    data = example_protocol(design)
    data["conditions"] = [*data["conditions"], *copy.deepcopy(EXTRA_ARMS[: k - 2])]
    rounds = len(williams_orders(k)) * k if design == "within" else k  # sequences or arms
    data["randomization"]["block_sizes"] = [rounds] if design == "within" else [rounds, 2 * rounds]
    return data


def write_protocol(
    directory: Path, data: dict, bundle: Path | None = None, name: str = "protocol.yaml"
) -> Path:
    """Write ``data`` as a protocol file in ``directory`` (its bundle path set to ``bundle`` if given)."""
    if bundle is not None:
        data = {**data, "cases": {**data["cases"], "bundle": str(bundle)}}
    path = directory / name
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


INSTRUMENT_FILL = {"explanation_satisfaction": {"system": "AI system"}}
JIAN_WORDING = {str(k): f"Statement {k} of the obtained checklist." for k in range(1, 13)}


def use_of(instrument_id: str, show: str = "post_block", **extra) -> dict:
    """An ``instruments:`` entry for ``instrument_id`` with what its file needs (fill, template wording)."""
    entry: dict = {"id": instrument_id, "show": show, **extra}
    if instrument_id in INSTRUMENT_FILL:
        entry["fill"] = INSTRUMENT_FILL[instrument_id]
    if load_instrument(instrument_id).is_template:
        entry["wording"] = JIAN_WORDING
    return entry


VISUAL = "skingen_visual"  # the interactive condition of interactive_conditions()


def interactive_conditions(questions: int = 2, references: int = 2) -> list[dict]:
    """A text baseline and a visual condition with the live model (``questions`` follow-ups, ``references``
    generated pictures): the conditions of every interactive-study test, engine, AppTest or browser."""
    return [
        {"id": "baseline_text", "label": "Text explanation", "references": False},
        {
            "id": VISUAL,
            "label": "Text, references and the live model",
            "references": True,
            "interactive": True,
            "follow_up_questions": questions,
            "live_references": references,
        },
    ]

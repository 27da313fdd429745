"""The analysis split by language: analysed participants and construct scores per language and condition,
checked against a plain recount of the same rows; a study in one language has no such block."""

from __future__ import annotations

import statistics

import pytest

from analysis.document import document
from analysis.load import build_study_data
from analysis.pipeline import AnalysisConfig, run_analysis
from analysis.render import render_markdown
from tests.analysis_data import BASELINE, make_study


def analysed(participants, languages=None):
    responses, participants, ratings = participants
    if languages is not None:
        participants = participants.assign(language=languages(participants))
    data = build_study_data(responses, participants, ratings, design="between", baseline=BASELINE)
    return run_analysis(data, AnalysisConfig(n_boot=0, simulate=False, full=False))


@pytest.fixture(scope="module")
def study():
    return make_study(n=24, design="between", seed=3, n_excluded=2)


def test_scores_by_language_match_a_recount(study):
    german = lambda p: ["de" if i % 3 == 0 else "en" for i in range(len(p))]  # noqa: E731
    result = analysed(study, german)
    block = result.results["by_language"]
    responses, participants, _ = study
    language = dict(zip(participants["participant_id"], german(participants), strict=True))
    kept = {
        pid
        for pid, excluded in zip(participants["participant_id"], participants["excluded"], strict=True)
        if excluded == "0"
    }
    # the recount: a participant's construct score is the mean of their answers in that construct, reverse-coded
    # items turned round on their scale (docs/analysis.md)
    per_participant: dict[tuple[str, str, str], list[float]] = {}
    for row in responses.itertuples(index=False):
        if row.participant_id in kept and row.construct == "trust" and row.condition:
            value = float(row.value)
            if float(row.reverse_coded) == 1:
                value = float(row.scale_min) + float(row.scale_max) - value
            per_participant.setdefault((row.participant_id, row.condition, row.construct), []).append(value)
    for record in block["scores"]:
        if record["construct"] != "trust":
            continue
        scores = [
            statistics.fmean(values)
            for (pid, condition, _construct), values in per_participant.items()
            if condition == record["condition"] and language[pid] == record["language"]
        ]
        assert record["n"] == len(scores)
        assert record["mean"] == pytest.approx(statistics.fmean(scores), abs=1e-12)
        assert record["sd"] == pytest.approx(statistics.stdev(scores), abs=1e-12)
    assert block["n_analysed"] == {
        lang: sum(1 for pid in kept if language[pid] == lang) for lang in ("de", "en")
    }
    markdown = render_markdown(document(result.results))
    assert "### Participants by language" in markdown and f"{block['n_analysed']['de']} in de" in markdown


def test_a_study_in_one_language_reports_as_before(study):
    before = analysed(study)
    one_language = analysed(study, lambda p: ["en"] * len(p))
    assert "by_language" not in before.results and "by_language" not in one_language.results
    assert render_markdown(document(before.results)) == render_markdown(document(one_language.results))

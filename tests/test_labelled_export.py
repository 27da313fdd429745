"""The export's SPSS (.sav) and Stata (.dta) files, read back by other readers than their writer.

pyreadstat writes them (ReadStat). R's `foreign::read.spss` (its own SPSS reader) and pandas' `read_stata`
(its own Stata reader) read them back, and every value and value label must equal what the long
responses.csv, participants.csv and codebook.csv say — parsed here independently of `study.labelled`.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import zipfile

import pandas as pd
import pyreadstat
import pytest

from app.study_command import main
from study.export import export_files, export_frames, export_zip
from study.labelled import MAX_NAME, PARTICIPANT_VARIABLES, wide_table
from study.path import step_order
from study.simulate import Policy, simulate


@pytest.fixture(scope="module")
def exported(tmp_path_factory, bundle_dir, module_database_url):
    """A between study of 8 bots (some drop out, one never finishes) exported by `skingen-study export`."""
    from db.session import Database
    from study.engine import StudyEngine
    from study.protocol.loading import load_protocol
    from study.registry import register
    from tests.factories import example_protocol, write_protocol

    directory = tmp_path_factory.mktemp("labelled")
    path = write_protocol(directory, example_protocol("between"), bundle_dir)
    db = Database(module_database_url)
    register(db, load_protocol(path))
    engine = StudyEngine.open(db, str(path))
    simulate(engine, 8, seed=3, policy=Policy(dropout_rate=0.3), progress=False)
    out = directory / "export"
    assert main(["export", "--db", module_database_url, "--out", str(out)]) == 0
    return engine, out


def _codebook_labels(out) -> dict[str, dict[int, str]]:
    """value_labels of codebook.csv, split the plain way (the test protocol's labels hold no "; ")."""
    codebook = pd.read_csv(out / "codebook.csv", dtype=str, keep_default_na=False)
    return {
        row.variable: {int(p.split("=", 1)[0]): p.split("=", 1)[1] for p in row.value_labels.split("; ")}
        for row in codebook.itertuples()
        if row.value_labels and row.source != "design"
    }


def _check_against_csv(
    frame: pd.DataFrame, labels: dict[str, dict[int, str]], variable_labels: dict[str, str], out
) -> int:
    """Every answer of responses.csv is in ``frame`` (one row per participant) in the column whose variable
    label starts with ``[<step>__<item>]``, as a number where the codebook labels the item; ``labels``
    (column → code → label) equal the codebook's. Returns the number of labelled columns checked."""
    codebook = _codebook_labels(out)
    participants = pd.read_csv(out / "participants.csv", dtype=str, keep_default_na=False)
    for column in ("participant_id", "status", "arm", "stratum"):
        assert frame[column].tolist() == participants[column].tolist(), column
    keyed = {
        label[1:].split("]", 1)[0]: column
        for column, label in variable_labels.items()
        if label.startswith("[")
    }
    rows = {pid: i for i, pid in enumerate(frame["participant_id"])}
    responses = pd.read_csv(out / "responses.csv", dtype=str, keep_default_na=False)
    assert len(responses) > 100
    for r in responses.itertuples():
        cell = frame[keyed[f"{r.step}__{r.item}"]].iloc[rows[r.participant_id]]
        if r.item in codebook:
            assert float(cell) == float(r.value), (r.participant_id, r.step, r.item)
        else:
            assert str(cell) == r.value, (r.participant_id, r.step, r.item)
    assert len(keyed) == len(set(zip(responses["step"], responses["item"], strict=True)))
    assert all(len(c) <= MAX_NAME for c in frame.columns)
    checked = 0
    for key, column in keyed.items():
        item = key.split("__", 1)[1]
        if item in codebook:
            assert labels[column] == codebook[item], key
            checked += 1
        else:
            assert column not in labels, key
    assert labels["excluded"] == {0: "no", 1: "yes"}
    return checked


def test_the_export_writes_the_wide_table_three_ways(exported):
    _, out = exported
    names = {p.name for p in out.iterdir()}
    assert {"responses_wide.csv", "responses_wide.sav", "responses_wide.dta"} <= names
    wide = pd.read_csv(out / "responses_wide.csv", dtype=str, keep_default_na=False)
    sav, meta = pyreadstat.read_sav(str(out / "responses_wide.sav"))
    assert list(sav.columns) == list(wide.columns)
    assert meta.column_names_to_labels["p1_t01__trust_1"].startswith("[p1.t01__trust_1] ")
    labels = meta.variable_value_labels
    assert _check_against_csv(sav, labels, meta.column_names_to_labels, out) > 20
    assert _check_against_csv(wide, labels, meta.column_names_to_labels, out) > 20  # the CSV is the same


def test_r_foreign_reads_the_spss_file_with_the_codebook_labels(exported, tmp_path):
    """foreign::read.spss is R's own SPSS reader (no ReadStat inside): its values and label tables must
    equal the CSV and codebook."""
    if shutil.which("Rscript") is None:
        pytest.skip("R is not installed")
    if subprocess.run(["Rscript", "-e", "library(foreign)"], capture_output=True).returncode:
        pytest.skip("R package foreign is not installed (Debian: r-cran-foreign)")
    _, out = exported
    script = tmp_path / "read.R"
    script.write_text(
        r"""
        library(foreign)
        args <- commandArgs(trailingOnly = TRUE)
        d <- read.spss(args[1], to.data.frame = FALSE, use.value.labels = FALSE, reencode = "UTF-8")
        write.csv(as.data.frame(d, stringsAsFactors = FALSE), args[2], row.names = FALSE)
        labels <- attr(d, "label.table")
        out <- file(args[3], "w", encoding = "UTF-8")
        for (name in names(labels)) if (!is.null(labels[[name]])) {
          table <- labels[[name]]
          for (i in seq_along(table)) writeLines(paste(name, trimws(table[[i]]), names(table)[i], sep = "\t"), out)
        }
        close(out)
        variables <- attr(d, "variable.labels")
        writeLines(paste(names(variables), variables, sep = "\t"), args[4], useBytes = TRUE)
        """,
        encoding="utf-8",
    )
    values, label_file, names_file = (tmp_path / name for name in ("values.csv", "labels.tsv", "names.tsv"))
    files = [out / "responses_wide.sav", values, label_file, names_file]
    run = subprocess.run(["Rscript", str(script), *map(str, files)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    frame = pd.read_csv(values, dtype=str, keep_default_na=False)
    frame = frame.apply(lambda column: column.str.strip())  # SPSS pads text to its declared width
    labels: dict[str, dict[int, str]] = {}
    for line in label_file.read_text(encoding="utf-8").splitlines():
        name, code, label = line.split("\t")
        labels.setdefault(name, {})[int(float(code))] = label
    lines = names_file.read_text(encoding="utf-8").splitlines()
    variable_labels = dict(line.split("\t", 1) for line in lines)
    assert _check_against_csv(frame, labels, variable_labels, out) > 20


def test_pandas_reads_the_stata_file_with_the_codebook_labels(exported):
    """pandas' read_stata is its own Stata reader (pure Python): values, label sets and variable labels come
    from it; only which set belongs to which variable is taken from pyreadstat (pandas keeps that private)."""
    _, out = exported
    with pd.io.stata.StataReader(out / "responses_wide.dta") as reader:
        frame = reader.read(convert_categoricals=False)
        sets = reader.value_labels()
        variable_labels = reader.variable_labels()
    _, meta = pyreadstat.read_dta(str(out / "responses_wide.dta"), metadataonly=True)
    labels = {name: {int(k): v for k, v in sets[s].items()} for name, s in meta.variable_to_label.items()}
    assert variable_labels["p1_t01__trust_1"].startswith("[p1.t01__trust_1] ")
    assert all(len(label.encode()) <= 80 for label in variable_labels.values())
    assert _check_against_csv(frame, labels, variable_labels, out) > 20


def test_download_all_zip_holds_every_export_file(exported):
    engine, out = exported
    frames = export_frames(engine.db)
    files = export_files(frames, wide_table(frames, step_order(engine.loaded)))
    with zipfile.ZipFile(io.BytesIO(export_zip(files))) as archive:
        names = set(archive.namelist())
        codebook = archive.read("codebook.csv")
    assert names == {p.name for p in out.iterdir()} and codebook == (out / "codebook.csv").read_bytes()
    assert {"responses.csv", "codebook.csv", "responses_wide.sav", "responses_wide.dta"} <= names


def test_cut_and_clashing_names_are_numbered_and_labels_keep_the_key():
    """A judge–advisor step key with a long item id is longer than Stata allows: cut, numbered, distinct."""
    participants = pd.DataFrame(
        [{"participant_id": "P00001", "protocol_version": 1, "stratum": "", "arm": "a", "sequence": "",
          "status": "completed", "attention_failures": 0, "excluded": 0, "language": "en"}]
    )  # fmt: skip
    long_item = "diagnosis_of_the_lesion_initial_confidence"
    responses = pd.DataFrame(
        [
            {"participant_id": "P00001", "step": "p1.t01.initial", "item": long_item, "value": "3"},
            {"participant_id": "P00001", "step": "p1.t02.initial", "item": long_item, "value": "4"},
            {"participant_id": "P00001", "step": "p1_t01", "item": "x", "value": "a"},
            {"participant_id": "P00001", "step": "p1.t01", "item": "x", "value": "b"},
            {"participant_id": "P00001", "step": "p1.t01", "item": "own_diagnosis__agrees_ai", "value": "1"},
        ]
    )
    codebook = pd.DataFrame(
        [
            {
                "variable": long_item,
                "label": "How sure?",
                "type": "ordinal",
                "value_labels": "1=low; 3=mid; 4=x",
            }
        ]
    )
    table = wide_table({"participants": participants, "responses": responses, "codebook": codebook}, ())
    names = list(table.frame.columns[len(PARTICIPANT_VARIABLES) :])
    assert len(set(names)) == 5 and all(len(n) <= MAX_NAME for n in names)
    assert "p1_t01__own_diagnosis_agr" in names  # 32 characters: the derived suffix is shortened first
    assert sorted(table.keys.values()) == sorted(f"{r.step}__{r.item}" for r in responses.itertuples())
    cut = [n for n in names if table.keys[n].endswith(long_item)]
    assert [table.frame[n].iloc[0] for n in cut] == [3.0, 4.0]
    assert all(table.value_labels[n] == {1: "low", 3: "mid", 4: "x"} for n in cut)
    assert table.variable_labels[cut[0]] == f"[p1.t01.initial__{long_item}] How sure?"


def test_a_study_nobody_has_joined_exports_empty_typed_files(protocol_file, make_engine, tmp_path):
    engine = make_engine(protocol_file())
    frames = export_frames(engine.db)
    files = export_files(frames, wide_table(frames, step_order(engine.loaded)))
    (tmp_path / "empty.dta").write_bytes(files["responses_wide.dta"])
    (tmp_path / "empty.sav").write_bytes(files["responses_wide.sav"])
    for read in (pyreadstat.read_dta, pyreadstat.read_sav):
        frame, meta = read(str(tmp_path / f"empty.{'dta' if read is pyreadstat.read_dta else 'sav'}"))
        assert frame.empty and meta.variable_value_labels == {"excluded": {0: "no", 1: "yes"}}

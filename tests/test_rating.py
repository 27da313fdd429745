"""The rating panel: balanced assignment, per-rater order, saving and resuming, export, CLI."""

from __future__ import annotations

import io
from collections import Counter

import pytest
from sqlalchemy import func, select

from app.study_command import main
from db.models import Rater, Rating, RatingAssignment
from formats.contract import RATING_COLUMNS
from study.export import export_frames
from study.monitor import rater_table
from study.path import AnswerError
from study.protocol.loading import ProtocolError, load_protocol
from study.rating import RatingError, RatingPanel, rating_images, slot_images
from tests.factories import make_bundle

ANSWERS = {"relevant": 1, "realism": 4, "show_patient": 0, "comment": ""}


def _kind_of_file(path: str) -> str:
    """What a bundle file shows, by where tests/factories.py's make_bundle draws it (the truth the export's
    image kinds are checked against): cases/<case>.png the case photo, references/<case>/retrieved_<n>.png a
    retrieved real image, references/<case>/<r>.png a generated reference."""
    folder, name = path.split("/")[0], path.rsplit("/", 1)[-1]
    if folder == "cases":
        return "case_photo"
    return "retrieved" if name.startswith("retrieved_") else "generated"


@pytest.fixture
def panel(protocol_file, make_engine):
    engine = make_engine(protocol_file())
    return RatingPanel(engine.db, engine.loaded)


def test_images_are_references_plus_blind_case_photos(panel):
    images = rating_images(panel.loaded)
    assert len(images) == 6 * 2 + 6
    assert sum(not i.generated for i in images) == 6
    photo = next(i for i in images if i.image_id == "c02.photo")
    assert (
        photo.skin_condition == "eczema" and photo.image == "cases/c02.png"
    )  # case photos show the ground truth


def test_each_image_gets_k_raters_and_raters_get_equal_shares(panel):
    shares = [slot_images(panel.loaded, slot) for slot in range(panel.rating.raters)]
    per_image = Counter(i for share in shares for i in share)
    assert set(per_image.values()) == {panel.rating.raters_per_image}
    assert len(per_image) == 18 and {len(s) for s in shares} == {9}


def test_add_raters_until_the_panel_is_full_then_replace(panel):
    raters = [panel.add_rater(f"derm{i}")[0] for i in range(4)]
    assert sorted(r.slot for r in raters) == [0, 1, 2, 3]
    with pytest.raises(RatingError, match="panel is full"):
        panel.add_rater("derm5")
    with pytest.raises(RatingError, match="already exists"):
        panel.add_rater("derm0")
    first = raters[0]
    task = panel.next_task(first.id)
    panel.submit(first.id, task.image.image_id, ANSWERS)
    substitute, _ = panel.add_rater("substitute", replace=first.id)
    assert substitute.slot == first.slot
    assert panel.progress(substitute.id) == (0, 8)  # the 9 images of the slot minus the one already rated


def test_own_order_progress_resume_and_idempotency(panel):
    a, _ = panel.add_rater("a")
    b, _ = panel.add_rater("b")
    first = panel.next_task(a.id)
    assert (first.number, first.total) == (1, 9)
    assert first.skin_condition_name in {"Psoriasis", "Eczema", "Acne", "Vitiligo"}
    order_a = [panel.next_task(a.id).image.image_id]
    panel.submit(a.id, first.image.image_id, ANSWERS)
    again = panel.submit(a.id, first.image.image_id, {**ANSWERS, "realism": 1})  # replay: ignored
    assert again.number == 2
    fresh = RatingPanel(panel.db, panel.loaded)  # another process resumes at the same image
    assert fresh.next_task(a.id) == again
    with panel.db.read() as session:
        assert session.scalar(select(func.count()).select_from(Rating)) == 3  # empty comment not stored
        assert session.scalar(select(Rating.value).where(Rating.item_id == "realism")) == "4"
    assert order_a[0] == first.image.image_id
    with panel.db.read() as session:
        orders = [
            list(
                session.scalars(
                    select(RatingAssignment.image_id)
                    .where(RatingAssignment.rater_id == r.id)
                    .order_by(RatingAssignment.position)
                )
            )
            for r in (a, b)
        ]
    # slots 0 and 1 share their images (round-robin pairs) but each rater has their own order
    assert sorted(orders[0]) == sorted(orders[1]) and orders[0] != orders[1]


def test_refusals_write_nothing(panel):
    a, _ = panel.add_rater("a")
    panel.add_rater("b")
    c, _ = panel.add_rater("c")
    not_mine = next(
        i for i in slot_images(panel.loaded, c.slot) if i not in slot_images(panel.loaded, a.slot)
    )
    with pytest.raises(RatingError, match="not assigned to this rater"):
        panel.submit(a.id, not_mine, ANSWERS)
    task = panel.next_task(a.id)
    with pytest.raises(AnswerError) as info:
        panel.submit(a.id, task.image.image_id, {"relevant": 3})
    assert set(info.value.errors) == {"relevant", "realism", "show_patient"}
    with panel.db.read() as session:
        assert session.scalar(select(func.count()).select_from(Rating)) == 0


def test_ratings_export_is_pseudonymous_and_says_what_was_generated(panel):
    rater, _ = panel.add_rater("Dr. Jane Example", email="jane@example.org")
    shown: dict[str, str] = {}  # image id -> the bundle file the rater saw
    task = panel.next_task(rater.id)
    while task is not None:
        shown[task.image.image_id] = task.image.image
        task = panel.submit(rater.id, task.image.image_id, ANSWERS)
    ratings = export_frames(panel.db)["ratings"]
    assert list(ratings.columns) == list(RATING_COLUMNS)
    assert len(ratings) == 9 * 3 and set(ratings["rater_id"]) == {rater.public_id}
    kinds = {image_id: _kind_of_file(path) for image_id, path in shown.items()}
    assert set(kinds.values()) == {"generated", "case_photo"}  # the share holds both, so each check can fail
    exported = ratings.drop_duplicates("image_id").set_index("image_id")
    assert exported["image_kind"].to_dict() == kinds
    assert exported["generated"].to_dict() == {i: int(kind == "generated") for i, kind in kinds.items()}
    assert "Jane" not in ratings.to_csv() and "example.org" not in ratings.to_csv()


def test_cli_raters(protocol_file, make_engine, capsys, monkeypatch):
    engine = make_engine(protocol_file())
    url = engine.db.url
    assert main(["raters", "add", "derm1", "--db", url, "--base-url", "https://study.example.org"]) == 0
    out = capsys.readouterr().out
    assert "9 images to rate" in out and "https://study.example.org/?invite=1." in out
    assert main(["raters", "list", "--db", url]) == 0
    listing = capsys.readouterr().out
    assert "derm1" in listing and "0/9" in listing and "invited" in listing
    assert "sign-in name: derm1 (any capitalisation)" in out
    assert main(["raters", "add", "derm1", "--db", url]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["raters", "add", " DERM1", "--db", url]) == 2  # the same name, typed otherwise
    assert "a rater named 'derm1' already exists (R001)" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    assert main(["admin-hash", "--stdin"]) == 0
    assert capsys.readouterr().out.startswith("$argon2id$")


def test_listing_and_dashboard_name_raters_and_their_status_alike(panel, capsys):
    """`raters list` reads Rater objects, the dashboard an aggregate query: one rule names both."""
    invited, _ = panel.add_rater("derm1")
    signed_up, _ = panel.add_rater("derm2")
    replacement, _ = panel.add_rater("derm3", replace=signed_up.id)  # derm2 leaves: inactive
    first, _ = panel.add_rater("derm4")
    with panel.db.write() as session:
        session.get(Rater, first.id).password_hash = "argon2-hash"  # derm4 used the sign-in link
    table = rater_table(panel.db, panel.protocol_id).set_index("name")
    expected = {"derm1": "invited", "derm2": "inactive", "derm3": "invited", "derm4": "active"}
    assert table["status"].to_dict() == expected
    assert table.loc["derm1", "rater_id"] == invited.public_id == f"R{invited.id:03d}"
    assert main(["raters", "list", "--db", panel.db.url]) == 0
    listing = {
        line.split()[1]: line.split() for line in capsys.readouterr().out.splitlines() if "derm" in line
    }
    assert {name: row[-1] for name, row in listing.items()} == expected
    assert {name: row[0] for name, row in listing.items()} == table["rater_id"].to_dict()
    assert replacement.replaces_id == signed_up.id


@pytest.fixture
def retrieval_panel(protocol_file, make_engine, tmp_path):
    """The test protocol on a bundle with 2 retrieved real references per case, mixed into the rating task."""
    bundle = make_bundle(tmp_path / "retrieval-bundle", retrieved=2)
    engine = make_engine(protocol_file(cases__bundle=str(bundle), rating__include_retrieved=True))
    return RatingPanel(engine.db, engine.loaded)


def test_retrieved_references_are_rated_beside_generated_ones(retrieval_panel):
    images = rating_images(retrieval_panel.loaded)
    assert Counter(i.kind for i in images) == {"generated": 12, "retrieved": 12, "case_photo": 6}
    real = next(i for i in images if i.image_id == "c02.x1")
    case = retrieval_panel.loaded.bundle.manifest.case("c02")
    # a wrong-AI case: the real reference shows the AI's diagnosis, as the generated ones do
    assert real.skin_condition == case.ai.skin_condition != case.ground_truth and not real.generated
    assert real.image == case.retrieved[1].image
    shares = [slot_images(retrieval_panel.loaded, slot) for slot in range(retrieval_panel.rating.raters)]
    assert set(Counter(i for share in shares for i in share).values()) == {2} and {
        len(s) for s in shares
    } == {15}


def test_the_ratings_export_says_each_image_kind(retrieval_panel):
    rater, _ = retrieval_panel.add_rater("derm")
    shown: dict[str, str] = {}  # image id -> the bundle file the rater saw
    task = retrieval_panel.next_task(rater.id)
    while task is not None:
        shown[task.image.image_id] = task.image.image
        task = retrieval_panel.submit(rater.id, task.image.image_id, ANSWERS)
    ratings = export_frames(retrieval_panel.db)["ratings"]
    assert list(ratings.columns) == list(RATING_COLUMNS)
    expected = {image_id: _kind_of_file(path) for image_id, path in shown.items()}
    assert set(expected.values()) >= {"retrieved", "generated"}  # the rater's share holds both
    exported = ratings.drop_duplicates("image_id").set_index("image_id")
    assert exported["image_kind"].to_dict() == expected
    assert (ratings["generated"] == (ratings["image_kind"] == "generated").astype(int)).all()


def test_include_retrieved_needs_a_bundle_with_retrieved_images(protocol_file):
    with pytest.raises(ProtocolError) as info:
        load_protocol(protocol_file(rating__include_retrieved=True))
    [problem] = info.value.problems
    assert problem.startswith("rating.include_retrieved: the bundle has no retrieved images")

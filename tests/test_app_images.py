"""Bundle images are encoded once per process into what st.image sends, and a submit stamps the next step."""

from __future__ import annotations

import io

from PIL import Image
from sqlalchemy import select

from app import images
from db.models import Participant
from tests.app_driver import AppParticipant


def _write(path, mode: str, size: tuple[int, int], fmt: str):
    Image.new(mode, size, (10, 200, 30, 128)[: len(mode)]).save(path, format=fmt)
    return path


def test_photos_become_jpeg_transparent_images_png_wide_ones_shrink_and_each_is_encoded_once(tmp_path):
    photo = _write(tmp_path / "photo.png", "RGB", (64, 48), "PNG")
    data, fmt = images.encoded(photo)
    assert fmt == "JPEG" and Image.open(io.BytesIO(data)).format == "JPEG"
    assert images.encoded(photo)[0] is data  # cached: the second run encodes nothing

    clear = _write(tmp_path / "clear.png", "RGBA", (64, 48), "PNG")
    assert images.encoded(clear) == (clear.read_bytes(), "PNG")  # already what the browser gets
    jpeg = _write(tmp_path / "small.jpg", "RGB", (64, 48), "JPEG")
    assert images.encoded(jpeg) == (jpeg.read_bytes(), "JPEG")

    wide = _write(tmp_path / "wide.png", "RGB", (images.MAX_WIDTH * 2, 100), "PNG")
    shrunk = Image.open(io.BytesIO(images.encoded(wide)[0]))
    assert shrunk.size == (images.MAX_WIDTH, 50)


def test_a_submit_stamps_when_the_next_step_was_shown(protocol_file, make_engine, monkeypatch, tmp_path):
    path = protocol_file("between")
    url = f"sqlite:///{tmp_path}/stamp.db"
    engine = make_engine(path, url)
    monkeypatch.setenv("SKINGEN_DB_URL", url)
    monkeypatch.setenv("SKINGEN_PROTOCOL", str(path))
    calls = []
    monkeypatch.setattr(type(engine), "mark_shown", lambda self, *a: calls.append(a))
    p = AppParticipant().consent()
    assert len(calls) == 1  # the first page after consent: stamped by mark_shown
    p.advance(value=2)
    with engine.db.read() as session:
        participant = session.scalars(select(Participant)).one()
    assert participant.step_index == 2 and participant.step_shown_at is not None
    assert len(calls) == 1  # the page the submit led to: stamped by the submit, no second transaction


def test_a_bundles_images_are_encoded_ahead_in_the_background(bundle_dir, tmp_path, monkeypatch):
    from formats.bundle import load_bundle

    bundle = load_bundle(bundle_dir)
    paths = bundle.images()
    cases = bundle.manifest.cases
    named = [c.image for c in cases] + [i.image for c in cases for i in (*c.references, *c.retrieved)]
    assert sorted(str(p.relative_to(bundle.root)) for p in paths) == sorted(set(named)) and len(paths) > len(
        cases
    )
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    images.warm([broken, *paths]).join(timeout=120)  # a broken file is logged, the others still encoded
    misses = images.encoded.cache_info().misses
    for path in paths:
        images.encoded(path)
    assert images.encoded.cache_info().misses == misses  # all there already: a page encodes nothing

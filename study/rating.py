"""The dermatologists' rating task: which images, who rates what in which order, and saving ratings.

The images are each case's generated references, plus (blind, as the design says) the case photos and the real
reference photos retrieved for the case (``include_retrieved``): raters see only the image and the condition it
is meant to show, so real and generated references are rated alike; the export says which kind each was.

Images are split over the protocol's planned panel (``rating.raters`` = P slots) round-robin: image i (in a
seeded shuffled order) goes to slots ik, ik+1, …, ik+k−1 (mod P). Every image gets exactly k different raters
and every slot ⌊n·k/P⌋ or ⌈n·k/P⌉ images. Each rater sees their images in their own seeded, stored order.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import func, insert, select, update

from db.models import Event, Rater, Rating, RatingAssignment, utcnow
from db.session import Database
from formats.bundle import ClosedLoopCheck
from study.auth import INVITE_SECRET_BYTES, hash_secret, rater_named
from study.path import Step, validate_answers
from study.protocol.loading import LoadedProtocol


class RatingError(ValueError):
    """A refused rating request; nothing was written."""


ImageKind = Literal["generated", "retrieved", "case_photo"]
"""What an image to rate is (never shown to raters; exported as ``image_kind``)."""


@dataclass(frozen=True)
class RatingImage:
    image_id: str
    image: str  # path relative to the bundle
    skin_condition: str  # the one the rater is told it shows
    kind: ImageKind
    case_id: str
    closed_loop: ClosedLoopCheck | None = None  # what a diagnoser saw in it (bundle build --evaluate)

    @property
    def generated(self) -> bool:
        return self.kind == "generated"


@dataclass(frozen=True)
class RatingTask:
    image: RatingImage
    skin_condition_name: str
    number: int  # 1-based position in the rater's list
    total: int
    step: Step


@dataclass(frozen=True)
class Invitation:
    """A new rater and their one-time link (shown once: only the secret's hash is stored)."""

    rater_id: str  # pseudonymous, R001
    name: str  # as they sign in with it
    slot: int  # 1-based panel slot
    images: int
    link: str

    def describe(self) -> str:
        return f"rater {self.rater_id} ({self.name}): {self.images} images to rate (panel slot {self.slot})"


def invite_link(base_url: str, code: str) -> str:
    """The link that opens the rater page's set-password form for the invite ``code``."""
    return f"{base_url.rstrip('/')}/?invite={code}"


def rating_images(loaded: LoadedProtocol) -> list[RatingImage]:
    """Every image to rate: each case's generated references, plus its retrieved real references and its
    photo where the design mixes them in. Ids: ``<case>.r<i>``, ``<case>.x<i>`` and ``<case>.photo``."""
    rating = loaded.protocol.rating
    if rating is None:
        raise RatingError(
            f"protocol {loaded.protocol.study.id!r} declares no rating task ('rating:' section)"
        )
    images = []
    for case_id in loaded.case_ids():
        case = loaded.bundle.manifest.case(case_id)
        images += [
            RatingImage(
                f"{case_id}.r{index}", ref.image, ref.skin_condition, "generated", case_id, ref.closed_loop
            )
            for index, ref in enumerate(case.references)
        ]
        if rating.include_retrieved:
            images += [
                RatingImage(f"{case_id}.x{index}", ref.image, ref.skin_condition, "retrieved", case_id)
                for index, ref in enumerate(case.retrieved)
            ]
        if rating.include_case_photos:
            images.append(
                RatingImage(f"{case_id}.photo", case.image, case.ground_truth, "case_photo", case_id)
            )
    return images


def slot_images(loaded: LoadedProtocol, slot: int) -> list[str]:
    """The image ids of one panel slot (see the module docstring for the design)."""
    rating = loaded.protocol.rating
    assert rating is not None
    ids = [image.image_id for image in rating_images(loaded)]
    random.Random(f"{rating.seed}:images").shuffle(ids)
    panel, k = rating.raters, rating.raters_per_image
    return [image_id for i, image_id in enumerate(ids) if (slot - i * k) % panel < k]


class RatingPanel:
    def __init__(self, db: Database, loaded: LoadedProtocol, clock: Callable[[], datetime] = utcnow) -> None:
        if loaded.protocol.rating is None:
            raise RatingError(
                f"protocol {loaded.protocol.study.id!r} declares no rating task ('rating:' section)"
            )
        self.db = db
        self.loaded = loaded
        self.rating = loaded.protocol.rating
        self.protocol_id = loaded.protocol.study.id
        self.clock = clock
        self.images = {image.image_id: image for image in rating_images(loaded)}
        self._step = Step("rating", "questions", "rating", self.rating.items)

    def add_rater(self, name: str, email: str | None = None, replace: int | None = None) -> tuple[Rater, str]:
        """Create a rater with their images and a one-time invite code (``"<id>.<secret>"``).

        ``replace`` hands an inactive or departing rater's panel slot — and their images not yet rated — to
        the new rater, so a dropout doesn't leave images short of ratings.
        """
        secret = secrets.token_urlsafe(INVITE_SECRET_BYTES)
        now = self.clock()
        name = " ".join(name.split())
        if not name:
            raise RatingError("a rater needs a name (they sign in with it)")
        with self.db.write() as session:
            same = rater_named(session, self.protocol_id, name, active_only=False)
            if same is not None:  # names are matched case-insensitively at sign-in (study.auth.rater_key)
                raise RatingError(f"a rater named {same.name!r} already exists ({same.public_id})")
            if replace is not None:
                old = session.get(Rater, replace)
                if old is None or old.protocol_id != self.protocol_id:
                    raise RatingError(f"no rater with id {replace} in study {self.protocol_id!r}")
                old.active = False
                slot = old.slot
                done = set(
                    session.scalars(
                        select(RatingAssignment.image_id).where(
                            RatingAssignment.rater_id == old.id, RatingAssignment.rated_at.is_not(None)
                        )
                    )
                )
                image_ids = [i for i in slot_images(self.loaded, slot) if i not in done]
            else:
                used = (
                    session.scalar(
                        select(func.count(Rater.id)).where(
                            Rater.protocol_id == self.protocol_id, Rater.replaces_id.is_(None)
                        )
                    )
                    or 0
                )
                if used >= self.rating.raters:
                    raise RatingError(
                        f"the rating panel is full (rating.raters = {self.rating.raters}): raise it in the "
                        "protocol, or hand a departing rater's slot over with --replace RATER_ID"
                    )
                slot = used
                image_ids = slot_images(self.loaded, slot)
            rater = Rater(
                protocol_id=self.protocol_id,
                name=name,
                email=email,
                slot=slot,
                order_seed=secrets.randbits(31),
                invite_hash=hash_secret(secret),
                replaces_id=replace,
                created_at=now,
            )
            session.add(rater)
            session.flush()
            random.Random(rater.order_seed).shuffle(image_ids)
            if image_ids:
                session.execute(
                    insert(RatingAssignment),
                    [
                        {"rater_id": rater.id, "image_id": image_id, "position": position}
                        for position, image_id in enumerate(image_ids)
                    ],
                )
            session.add(
                Event(
                    at=now,
                    kind="rater_added",
                    detail={"rater_id": rater.id, "slot": slot, "images": len(image_ids)},
                )
            )
            return rater, f"{rater.id}.{secret}"

    def invite(
        self, name: str, base_url: str, email: str | None = None, replace: int | None = None
    ) -> Invitation:
        """Add a rater (:meth:`add_rater`) and make their one-time sign-in link on the server ``base_url``:
        what ``skingen-study raters add`` prints and the dashboard's rater page shows."""
        rater, code = self.add_rater(name, email, replace)
        _, images = self.progress(rater.id)
        return Invitation(rater.public_id, rater.name, rater.slot + 1, images, invite_link(base_url, code))

    def next_task(self, rater_id: int) -> RatingTask | None:
        """The first image in the rater's order not yet rated; None when they are done."""
        with self.db.read() as session:
            assignments = session.scalars(
                select(RatingAssignment)
                .where(RatingAssignment.rater_id == rater_id)
                .order_by(RatingAssignment.position)
            ).all()
        pending = next((a for a in assignments if a.rated_at is None), None)
        if pending is None:
            return None
        image = self.images[pending.image_id]
        done = sum(a.rated_at is not None for a in assignments)
        name = self.loaded.bundle.manifest.skin_condition_name(image.skin_condition)
        return RatingTask(image, name, done + 1, len(assignments), self._step)

    def progress(self, rater_id: int) -> tuple[int, int]:
        with self.db.read() as session:
            rows = session.scalars(
                select(RatingAssignment.rated_at).where(RatingAssignment.rater_id == rater_id)
            )
            stamps = list(rows)
        return sum(s is not None for s in stamps), len(stamps)

    def mark_shown(self, rater_id: int, image_id: str) -> None:
        with self.db.write() as session:
            session.execute(
                update(RatingAssignment)
                .where(
                    RatingAssignment.rater_id == rater_id,
                    RatingAssignment.image_id == image_id,
                    RatingAssignment.shown_at.is_(None),
                )
                .values(shown_at=self.clock())
            )

    def submit(self, rater_id: int, image_id: str, answers: dict[str, object]) -> RatingTask | None:
        """Save one image's ratings (all or nothing); a repeat of an already rated image changes nothing."""
        now = self.clock()
        stored = validate_answers(self._step, answers, set())
        with self.db.write() as session:
            assignment = session.scalar(
                select(RatingAssignment)
                .where(RatingAssignment.rater_id == rater_id, RatingAssignment.image_id == image_id)
                .with_for_update()
            )
            if assignment is None:
                raise RatingError(f"image {image_id!r} is not assigned to this rater")
            if assignment.rated_at is None:
                shown = assignment.shown_at or now
                if stored:
                    session.execute(
                        insert(Rating),
                        [
                            {
                                "rater_id": rater_id,
                                "image_id": image_id,
                                "item_id": a.item,
                                "value": a.value,
                                "value_num": a.number,
                                "shown_at": shown,
                                "rated_at": now,
                            }
                            for a in stored
                        ],
                    )
                assignment.rated_at = now
                session.execute(update(Rater).where(Rater.id == rater_id).values(last_activity_at=now))
                session.add(Event(at=now, kind="rating", detail={"rater_id": rater_id, "image_id": image_id}))
        return self.next_task(rater_id)

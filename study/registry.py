"""Registering a protocol version in a database (``skingen-study init``) and finding it again."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.migrate import current_revision, head_revision, upgrade
from db.models import AllocationSlot, Event, Participant, StudyVersion
from db.session import Database
from study.allocation import allocation_table
from study.prereg import document as prereg_document
from study.prereg import document_hash
from study.protocol.loading import LoadedProtocol, load_stored_protocol


class RegistryError(RuntimeError):
    """The database and the protocol don't fit together; the message says what to do."""


def register(
    db: Database, loaded: LoadedProtocol, *, allow_change: bool = False, prereg_hash: str | None = None
) -> StudyVersion:
    """Create/upgrade the schema and register ``loaded`` as the active version of its study.

    Registering the same file again is a no-op (but for a given ``prereg_hash``). A *different* version of a
    study that already has participants is refused unless ``allow_change``: changing a protocol mid-study
    must be a decision.

    The version's preregistration hash is ``prereg_hash`` (the document as preregistered), else the one of
    the study's latest earlier version — so a protocol changed after preregistration is still analysed
    against the plan, and reported as a deviation —, else the hash of this protocol's own document.
    """
    upgrade(db.engine)
    protocol = loaded.protocol
    with db.write() as session:
        versions = session.scalars(
            select(StudyVersion)
            .where(StudyVersion.protocol_id == protocol.study.id)
            .order_by(StudyVersion.id)
        ).all()
        same = next((s for s in versions if s.content_hash == loaded.content_hash), None)
        others = [s for s in versions if s is not same and s.active]
        if others:
            enrolled = session.scalar(
                select(func.count(Participant.id)).where(Participant.version_id.in_([s.id for s in others]))
            )
            if enrolled and not allow_change:
                current = others[0]
                raise RegistryError(
                    f"study {protocol.study.id!r} already runs version {current.version!r} "
                    f"(hash {current.content_hash[:12]}) with {enrolled} participant(s); refusing to switch to "
                    f"version {protocol.study.version!r} (hash {loaded.content_hash[:12]}). "
                    "Pass --allow-protocol-change to register it anyway (new participants get the new version)."
                )
            for other in others:
                other.active = False
        inherited = next((s.prereg_hash for s in reversed(versions) if s.prereg_hash), None)
        if same is None:
            same = StudyVersion(
                prereg_hash=prereg_hash or inherited or document_hash(prereg_document(protocol)),
                protocol_id=protocol.study.id,
                version=protocol.study.version,
                content_hash=loaded.content_hash,
                protocol_text=loaded.text,
                protocol_path=str(loaded.path.resolve()) if loaded.path else "",
                bundle_root=str(loaded.bundle.root.resolve()),
                bundle_hash=loaded.bundle.content_hash,
                bundle_manifest=loaded.bundle.manifest.model_dump_json(),
            )
            session.add(same)
            session.flush()
            _create_allocation_table(session, same, loaded)
            session.add(
                Event(version_id=same.id, kind="register", detail={"version": protocol.study.version})
            )
        elif prereg_hash is not None:
            same.prereg_hash = prereg_hash
        same.active = True
        return same


def _create_allocation_table(session: Session, study: StudyVersion, loaded: LoadedProtocol) -> None:
    size = loaded.protocol.randomization.table_size
    for stratum in loaded.protocol.strata:
        session.add_all(
            AllocationSlot(
                version_id=study.id,
                stratum=stratum,
                position=s.position,
                block=s.block,
                block_size=s.block_size,
                arm=s.arm,
            )
            for s in allocation_table(loaded.protocol, stratum, size)
        )


def extend_allocation_table(session: Session, version_id: int, loaded: LoadedProtocol, stratum: str) -> None:
    """Append the next blocks of a used-up stratum: the same sequence a larger table would have held."""
    have = (
        session.scalar(
            select(func.count(AllocationSlot.id)).where(
                AllocationSlot.version_id == version_id, AllocationSlot.stratum == stratum
            )
        )
        or 0
    )
    needed = max(have * 2, loaded.protocol.randomization.table_size)
    session.add_all(
        AllocationSlot(
            version_id=version_id,
            stratum=stratum,
            position=s.position,
            block=s.block,
            block_size=s.block_size,
            arm=s.arm,
        )
        for s in allocation_table(loaded.protocol, stratum, needed)[have:]
    )
    session.add(
        Event(version_id=version_id, kind="allocation_extended", detail={"stratum": stratum, "slots": needed})
    )


def check_schema(db: Database) -> None:
    """Refuse to work on a database that `skingen-study init` hasn't created or upgraded."""
    revision = current_revision(db.engine)
    if revision is None:
        raise RegistryError(f"{db.url} holds no study database: run `skingen-study init` first")
    if revision != head_revision():
        raise RegistryError(
            f"{db.url} has schema revision {revision}, this version needs {head_revision()}: "
            "run `skingen-study init` to upgrade it"
        )


def active_version(db: Database, protocol_id: str | None = None) -> StudyVersion:
    """The active registered study (the only one, or the one named ``protocol_id``)."""
    check_schema(db)
    with db.read() as session:
        query = select(StudyVersion).where(StudyVersion.active.is_(True))
        if protocol_id:
            query = query.where(StudyVersion.protocol_id == protocol_id)
        studies = session.scalars(query).all()
    if not studies:
        which = f" {protocol_id!r}" if protocol_id else ""
        raise RegistryError(f"no study{which} is registered in {db.url}: run `skingen-study init` first")
    if len(studies) > 1:
        names = ", ".join(sorted(s.protocol_id for s in studies))
        raise RegistryError(f"{db.url} holds several studies ({names}): name one with --study")
    return studies[0]


def stored_protocol(study: StudyVersion) -> LoadedProtocol:
    return load_stored_protocol(study.protocol_text, study.bundle_manifest, study.bundle_root)

"""``skingen-study``: set up, check, run, simulate and export a study from the command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from db.session import Database, database_url, open_existing
from formats.atomic import OutputExistsError
from study.protocol.loading import ProtocolError, load_protocol
from study.protocol.model import Protocol

if TYPE_CHECKING:
    from study.simulate import CaseEffects

DB_HELP = "SQLAlchemy database URL (default: $SKINGEN_DB_URL or sqlite:///var/study.db)"


def _existing_db(args: argparse.Namespace) -> Database:
    """``--db``'s database, which must exist: only init, serve --init/--demo and restore create one."""
    return open_existing(database_url(args.db))


EFFECT_FORMAT = "--effect expects CONSTRUCT=POINTS or CONDITION:CONSTRUCT=POINTS (e.g. trust=1.0)"


def _effects(values: list[str]) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """``--effect`` values → (shift under every non-baseline condition, shifts of named conditions)."""
    effects: dict[str, float] = {}
    per_condition: dict[str, dict[str, float]] = {}
    for value in values:
        target, sep, amount = value.partition("=")
        condition, _, name = target.rpartition(":")
        try:
            points = float(amount)
        except ValueError:
            raise SystemExit(f"{EFFECT_FORMAT}, got {value!r}") from None
        if not sep or not name or (":" in target and not condition):
            raise SystemExit(f"{EFFECT_FORMAT}, got {value!r}")
        (per_condition.setdefault(condition, {}) if condition else effects)[name] = points
    return effects, per_condition


CASE_FLAGS = (
    "case_sd",
    "case_condition_sd",
    "participant_condition_sd",
)  # flags named as CaseEffects' fields


def _case_effects(args: argparse.Namespace, constructs: Sequence[str]) -> dict[str, CaseEffects]:
    """``--case-sd``/``--case-condition-sd``/``--participant-condition-sd`` values ([CONSTRUCT=]SD; without a
    construct: every Likert construct of the protocol) → ``{construct: CaseEffects}``."""
    from study.simulate import CaseEffects

    chosen: dict[str, dict[str, float]] = {}
    for name in CASE_FLAGS:
        for value in getattr(args, name):
            target, sep, amount = value.rpartition("=")
            option = "--" + name.replace("_", "-")
            try:
                sd = float(amount)
            except ValueError:
                raise SystemExit(f"{option} expects [CONSTRUCT=]SD (e.g. trust=0.4), got {value!r}") from None
            if sep and target not in constructs:
                raise SystemExit(
                    f"{option}: unknown construct {target!r} (Likert constructs: {', '.join(constructs)})"
                )
            for construct in [target] if sep else constructs:
                chosen.setdefault(construct, {})[name] = sd
    try:
        return {construct: CaseEffects(**fields) for construct, fields in chosen.items()}
    except ValueError as error:
        raise SystemExit(f"case effects: {error}") from None


def live_model_note(protocol: Protocol) -> str:
    """Whether the study needs a live model: said before it starts, so no participant waits for a worker."""
    interactive = protocol.interactive_conditions
    if not interactive:
        return (
            "fixed stimuli only: no condition is interactive, so participants see the bundle's AI outputs and "
            "references and no live model or `skingen worker` is needed"
        )
    return (
        f"interactive condition(s) {', '.join(interactive)}: participants talk with a live model — start "
        "`skingen worker --db URL` (a VLM; --sd for references) on the study database before they arrive"
    )


def cmd_validate(args: argparse.Namespace) -> int:
    status = 0
    for path in args.files:
        try:
            loaded = load_protocol(path)
        except ProtocolError as exc:
            print(exc, file=sys.stderr)
            status = 1
            continue
        p = loaded.protocol
        print(
            f"{path}: valid — study {p.study.id!r} v{p.study.version}, {p.design} design, "
            f"{len(loaded.case_ids())} cases, {p.n_arms} arms, strata: {', '.join(s for s in p.strata if s) or '-'}"
            + (f", instruments: {', '.join(u.construct for u in p.instruments)}" if p.instruments else "")
            + (f", hypotheses: {', '.join(h.id for h in p.hypotheses)}" if p.hypotheses else "")
        )
        print(f"  {live_model_note(p)}")
        print(f"  {language_note(p)}")
    return status


def language_note(protocol: Protocol) -> str:
    """The protocol's languages, and any the app's own words (buttons, messages) have no catalog for."""
    from app.catalogs import languages

    missing = [code for code in protocol.languages if code not in languages()]
    note = f"languages: {', '.join(protocol.languages)}"
    if missing:
        note += (
            f" — the app's own words have no catalog for {', '.join(missing)}: those participants read buttons "
            f"and messages in English (add app/locale/<language>/LC_MESSAGES/app.po; docs/app.md)"
        )
    return note


def _read_text(path: str, flag: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{flag} {path}: cannot read the file ({exc})") from None


def cmd_init(args: argparse.Namespace) -> int:
    from study import prereg
    from study.registry import register

    loaded = load_protocol(args.protocol)
    given = prereg.document_hash(_read_text(args.prereg, "--prereg")) if args.prereg else None
    db = Database(database_url(args.db))
    study = register(db, loaded, allow_change=args.allow_protocol_change, prereg_hash=given)
    print(
        f"{db.url}: study {study.protocol_id!r} v{study.version} registered (hash {study.content_hash[:12]}, "
        f"preregistration {study.prereg_hash[:12] if study.prereg_hash else 'none'})"
    )
    own = prereg.document_hash(prereg.document(loaded.protocol))
    if study.prereg_hash and study.prereg_hash != own:
        print(
            "note: this protocol's preregistration document differs from the preregistered one "
            f"({own[:12]} ≠ {study.prereg_hash[:12]}): the analysis report will state it as a deviation",
            file=sys.stderr,
        )
    return 0


def cmd_prereg(args: argparse.Namespace) -> int:
    from study import prereg

    text = prereg.document(load_protocol(args.protocol).protocol)
    digest = prereg.document_hash(text)
    if args.out is None:
        print(text, end="")
        print(f"sha256 {digest}", file=sys.stderr)
        return 0
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise ValueError(f"--out {out} exists: pass --overwrite to replace it")
    checksum = out.with_name(out.name + ".sha256")
    staging = out.with_name(f".{out.name}.partial")
    staging.write_text(text, encoding="utf-8")
    checksum.write_text(f"{digest}  {out.name}\n", encoding="utf-8")
    staging.replace(out)
    print(f"{out}: preregistration written (sha256 {digest}; also in {checksum.name})")
    print(f"register the study with it: skingen-study init --protocol {args.protocol} --prereg {out}")
    return 0


def cmd_instruments(args: argparse.Namespace) -> int:
    from study import instruments

    if args.show is None:
        for instrument_id in instruments.instrument_ids():
            print(instruments.summary_line(instruments.load_instrument(instrument_id)))
        return 0
    if args.show != "show" or not args.id:
        raise ValueError("usage: skingen-study instruments [show ID]")
    print(instruments.describe(instruments.load_instrument(args.id)), end="")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from study.engine import StudyEngine
    from study.simulate import Policy, simulate

    effects, condition_effects = _effects(args.effect)
    engine = StudyEngine.open(_existing_db(args), args.protocol)
    likert = sorted({i.construct for i in engine.protocol.items().values() if i.planted and i.construct})
    case_effects = _case_effects(args, likert)
    policy = Policy(
        kind="effect" if args.policy == "effect" or args.effect or case_effects else "random",
        effects=effects,
        condition_effects=condition_effects,
        case_effects=case_effects,
        case_seed=args.seed,
        noise_sd=args.noise,
        person_sd=args.person_sd,
        attention_fail_rate=args.attention_fail_rate,
        dropout_rate=args.dropout_rate,
    )
    outcomes = simulate(engine, args.n, seed=args.seed, policy=policy, progress=not args.quiet)
    done = sum(o.completed for o in outcomes)
    print(
        f"{len(outcomes)} bots: {done} completed, {len(outcomes) - done} dropped out, "
        f"{sum(o.inattentive for o in outcomes)} inattentive"
    )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from study.export import export_frames, exported_steps, write_export
    from study.labelled import wide_table

    protocol_id = load_protocol(args.protocol).protocol.study.id if args.protocol else args.study
    db = _existing_db(args)
    frames = export_frames(db, protocol_id=protocol_id, include_identifiers=args.include_identifiers)
    wide = wide_table(frames, exported_steps(db, protocol_id=protocol_id))
    for path in write_export(frames, Path(args.out), overwrite=args.overwrite, wide=wide):
        rows = len(frames[path.stem]) if path.stem in frames else len(wide.frame)
        print(f"wrote {path} ({rows} rows)")
    return 0


def cmd_demo_bundle(args: argparse.Namespace) -> int:
    from skingen.bundle.demo import writer

    bundle = writer.build_demo_bundle(
        Path(args.out), seed=args.seed, n_references=args.references, size=args.size, overwrite=args.overwrite
    )
    print(f"wrote {len(bundle.manifest.cases)} cases to {bundle.root} (sha256 {bundle.content_hash[:12]})")
    return 0


def _engine(args: argparse.Namespace):
    """The engine of ``--db``'s study picked by ``--protocol`` (default: the only active one)."""
    from study.engine import StudyEngine

    return StudyEngine.open(_existing_db(args), args.protocol)


def _panel(args: argparse.Namespace):
    from study.rating import RatingPanel

    engine = _engine(args)
    return RatingPanel(engine.db, engine.loaded)


def cmd_raters_add(args: argparse.Namespace) -> int:
    invitation = _panel(args).invite(args.name, args.base_url, args.email, args.replace)
    print(invitation.describe())
    print(f"sign-in name: {invitation.name} (any capitalisation)")
    print("one-time sign-in link (shown only now; it sets the rater's password):")
    print(f"  {invitation.link}")
    return 0


def cmd_raters_list(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from db.models import Rater

    panel = _panel(args)
    with panel.db.read() as session:
        raters = session.scalars(
            select(Rater).where(Rater.protocol_id == panel.protocol_id).order_by(Rater.id)
        ).all()
    print(f"{'id':6} {'name':24} {'slot':>4} {'rated':>9} {'status':10}")
    for rater in raters:
        done, total = panel.progress(rater.id)
        print(
            f"{rater.public_id:6} {rater.name:24} {rater.slot + 1:>4} {f'{done}/{total}':>9} {rater.status:10}"
        )
    return 0


def cmd_admin_hash(args: argparse.Namespace) -> int:
    import getpass

    from study.auth import ADMIN_HASH_ENV, MIN_PASSWORD_LENGTH, hash_secret

    password = sys.stdin.readline().rstrip("\n") if args.stdin else getpass.getpass("admin password: ")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"choose a password of at least {MIN_PASSWORD_LENGTH} characters")
    print(hash_secret(password))
    print(
        f"# put this in {ADMIN_HASH_ENV} or as admin_password_hash in .streamlit/secrets.toml",
        file=sys.stderr,
    )
    return 0


def _demo_welcome(host: str, port: int, db_url: str) -> None:
    """Demo only: a random researcher password, printed once, and the next commands as they work when pasted
    (the demo's own --db). Real studies configure a hash (admin-hash)."""
    import os
    import secrets

    from app.demo import next_steps
    from study.auth import ADMIN_HASH_ENV, hash_secret

    base_url = f"http://{host}:{port}"
    if not os.environ.get(ADMIN_HASH_ENV):
        password = secrets.token_urlsafe(12)
        os.environ[ADMIN_HASH_ENV] = hash_secret(password)
        print(f"Researcher dashboard: {base_url}/?area=admin  —  demo password: {password}", flush=True)
    print(f"Rating panel: {base_url}/?area=rate — then, in another terminal:", flush=True)
    for command in next_steps(db_url, base_url):
        print(f"  {command}", flush=True)


def cmd_serve(args: argparse.Namespace) -> int:
    from contextlib import nullcontext

    from app.demo import check_not_running, demo_dir, prepare_demo, running
    from app.server import check_port, serve
    from formats.bundle import bundle_file_problems
    from study.data_rights import purge_identifiers
    from study.engine import StudyEngine
    from study.registry import register

    # 1. Check the arguments, whether the demo already runs, and the port: before any file, database or
    #    password is made (a second `serve --demo` must not print a password for a server it never starts).
    if args.demo and args.protocol:
        raise ValueError("--demo runs the shipped demo protocol; leave out --protocol")
    if args.demo_dir and not args.demo:
        raise ValueError("--demo-dir goes with --demo")
    if args.init and not args.protocol and not args.demo:
        raise ValueError("--init needs --protocol FILE")
    folder = demo_dir(args.demo_dir) if args.demo else None
    if folder is not None:
        check_not_running(folder)
    check_port(args.host, args.port)
    # 2. The study: the demo drawn and registered, a protocol registered, or the existing database's study.
    url = database_url(args.db)
    if folder is not None:
        args.protocol, args.init = str(prepare_demo(folder)), True
    db = Database(url) if args.init else open_existing(url)
    if args.init:
        register(db, load_protocol(args.protocol))
    engine = StudyEngine.open(db, args.protocol)  # fail here, not in the participant's browser
    problems = bundle_file_problems(engine.loaded.bundle)  # the registered bundle, as it is on disk now
    if problems:
        raise ValueError(
            f"the study's bundle {engine.loaded.bundle.root} is not servable: " + "; ".join(problems)
        )
    purged = purge_identifiers(engine)
    if purged:
        print(
            f"purged the identifiers of {purged} participants (retention_days: {engine.protocol.retention_days:g})"
        )
    db.dispose()
    _sweep_left_jobs(url, args)
    # 3. Serve (the demo marks its folder as served meanwhile).
    marker = nullcontext()
    if folder is not None:
        _demo_welcome(args.host, args.port, url)
        marker = running(folder, f"http://{args.host}:{args.port}", url)
    with marker:
        serve(
            url,
            args.protocol,
            host=args.host,
            port=args.port,
            tuned=not args.default_streamlit,
            explorer_open=args.explorer_open,
            explorer_photos=args.explorer_photos,
            job_ttl=args.job_ttl,
            job_hold=args.job_hold,
            nice=args.nice,
        )
    return 0


def _sweep_left_jobs(url: str, args: argparse.Namespace) -> None:
    """Sweep the model jobs once before serving, and keep sweeping in this process while jobs from before this
    start are open or held: their pages may have gone with an old server, and no worker may be running."""
    from app.context import configured_queue
    from study.live import start_sweeper

    queue = configured_queue(Database(url), ttl=args.job_ttl, hold=args.job_hold)
    queue.sweep()
    if queue.sweepable():
        start_sweeper(queue)


def cmd_withdraw(args: argparse.Namespace) -> int:
    from study.data_rights import withdraw

    done = withdraw(_engine(args), token=args.token, label=args.label)
    print(
        f"{done.participant_id} withdrawn: {done.answers_removed} answers, the consent record, URL parameters "
        "and label removed (a content-free 'withdraw' event stays in the audit log)"
    )
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    from study.data_rights import purge_identifiers

    engine = _engine(args)
    days = engine.protocol.retention_days
    if days is None:
        print("the protocol sets no retention_days: identifiers are kept")
        return 0
    print(f"purged the identifiers of {purge_identifiers(engine)} participants (retention {days:g} days)")
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    from db.backup import backup

    url = database_url(args.db)
    _existing_db(args).dispose()  # names the resolved path or server it tried
    print(f"backed up {url} to {backup(url, Path(args.out))}")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from db.backup import restore

    url = database_url(args.db)
    restore(Path(args.backup), url)
    print(f"restored {args.backup} into {url}")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from study.audit import audit
    from study.engine import StudyEngine

    report = audit(StudyEngine.open(_existing_db(args), args.protocol))
    for problem in report.problems:
        print(problem, file=sys.stderr)
    verdict = "every row explained" if report.ok else f"{len(report.problems)} problem(s)"
    print(
        f"{report.participants} participants, {report.responses} answers, {report.events} events: {verdict}"
    )
    return 0 if report.ok else 1


def cmd_deploy_nginx(args: argparse.Namespace) -> int:
    from study.deploy import Deployment, write_deployment

    protocol = Path(args.protocol).resolve()
    load_protocol(protocol)  # a deployment of a protocol that doesn't load would fail in every replica
    deployment = Deployment(
        replicas=args.replicas,
        port=args.port,
        db_url=database_url(args.db),
        protocol=protocol,
        out=Path(args.out).resolve(),
        host=args.host,
        first_replica_port=args.replica_port,
        explorer_port=args.explorer_port,
    )
    for path in write_deployment(deployment, overwrite=args.overwrite):
        print(f"wrote {path}")
    ports = ", ".join(map(str, deployment.replica_ports))
    print(f"nginx on http://{deployment.host}:{deployment.port} in front of replicas on {ports}")
    if deployment.explorer_port is not None:
        print(
            f"the explorer on http://{deployment.host}:{deployment.explorer_port}/?area=explore "
            f"(its own server on {deployment.explorer_server_port}, open to anyone who reaches it)"
        )
    print(f"run it: {deployment.out / 'start.sh'}   (see docs/deployment.md for systemd)")
    return 0


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0 seconds, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="skingen-study", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="check protocol files; print every problem with its field path")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("init", help="create/upgrade the database schema and register a protocol")
    p.add_argument("--db", help=DB_HELP)
    p.add_argument("--protocol", required=True, metavar="FILE")
    p.add_argument(
        "--allow-protocol-change",
        action="store_true",
        help="register a new protocol version although participants exist under another",
    )
    p.add_argument(
        "--prereg",
        metavar="FILE",
        help="the preregistration document as registered (from `skingen-study prereg`); its hash is stored "
        "(default: the study's earlier version's, else this protocol's own document)",
    )
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("prereg", help="write the preregistration document of a protocol, and its hash")
    p.add_argument("protocol", metavar="PROTOCOL")
    p.add_argument("--out", metavar="FILE", help="write FILE and FILE.sha256 (default: print to stdout)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing FILE")
    p.set_defaults(func=cmd_prereg)

    p = sub.add_parser(
        "instruments", help="list the shipped questionnaires; `instruments show ID` prints one"
    )
    p.add_argument("show", nargs="?", choices=["show"], help="print one instrument")
    p.add_argument("id", nargs="?", metavar="ID")
    p.set_defaults(func=cmd_instruments)

    p = sub.add_parser("simulate", help="run bot participants through the real study engine")
    p.add_argument(
        "--protocol", metavar="FILE", help="registered protocol (default: the database's only study)"
    )
    p.add_argument("--db", help=DB_HELP)
    p.add_argument("-n", type=int, default=20, help="number of bots (default 20)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--policy",
        choices=["random", "effect"],
        default="random",
        help="uniformly random answers, or a planted effect (see --effect)",
    )
    p.add_argument(
        "--effect",
        action="append",
        default=[],
        metavar="[CONDITION:]CONSTRUCT=POINTS",
        help="shift of a construct's Likert items under every non-baseline condition (trust=1.0), or under "
        "one condition (skingen_visual:trust=1.0); repeatable",
    )
    p.add_argument("--noise", type=float, default=1.0, help="SD of per-answer noise in Likert points")
    p.add_argument(
        "--person-sd", type=float, default=1.0, help="SD of the bots' latent levels (participant intercepts)"
    )
    for flag, what in (
        ("--case-sd", "case intercepts (photos trusted more or less in every condition)"),
        ("--case-condition-sd", "case × condition effects (the condition's effect differs between cases)"),
        ("--participant-condition-sd", "participants' own condition effects (random slopes)"),
    ):
        p.add_argument(
            flag,
            action="append",
            default=[],
            metavar="[CONSTRUCT=]SD",
            help=f"SD in Likert points of {what}; without CONSTRUCT: every Likert construct; repeatable "
            "(default 0: every case alike; docs/simulation in docs/analysis.md)",
        )
    p.add_argument("--attention-fail-rate", type=float, default=0.05, help="share of inattentive bots")
    p.add_argument("--dropout-rate", type=float, default=0.1, help="share of bots that leave midway")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("export", help="write responses/participants/codebook CSVs (de-identified by default)")
    p.add_argument("--db", help=DB_HELP)
    p.add_argument("--out", required=True, metavar="DIR", help="export folder (must be new or empty)")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out folder")
    p.add_argument("--protocol", metavar="FILE", help="pick the study by its protocol file")
    p.add_argument("--study", metavar="ID", help="pick the study by its protocol id")
    p.add_argument(
        "--include-identifiers",
        action="store_true",
        help="also write recorded URL parameters (e.g. PROLIFIC_PID): identifiable data",
    )
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("demo-bundle", help="draw the synthetic demo stimulus bundle (no downloads, no torch)")
    p.add_argument("out", metavar="DIR", help="bundle directory to create")
    p.add_argument("--seed", type=int, default=2024, help="the same seed gives identical files")
    p.add_argument("--references", type=int, default=3, help="reference images per case")
    p.add_argument("--size", type=int, default=384, help="image width and height in pixels")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty DIR")
    p.set_defaults(func=cmd_demo_bundle)

    raters = sub.add_parser("raters", help="manage the dermatologist rating panel").add_subparsers(
        dest="raters_command", required=True
    )
    p = raters.add_parser("add", help="create a rater and print their one-time sign-in link")
    p.add_argument("name")
    p.add_argument("--email")
    p.add_argument(
        "--replace",
        type=int,
        metavar="RATER_ID",
        help="take over a departing rater's panel slot and unrated images (numeric id)",
    )
    p.add_argument("--base-url", default="http://127.0.0.1:8501", help="where the app is served")
    p.set_defaults(func=cmd_raters_add)
    p = raters.add_parser("list", help="raters with their progress")
    p.set_defaults(func=cmd_raters_list)
    for p in (raters.choices["add"], raters.choices["list"]):
        p.add_argument("--db", help=DB_HELP)
        p.add_argument("--protocol", metavar="FILE", help="registered protocol (default: the only study)")

    p = sub.add_parser("admin-hash", help="hash a researcher password for the dashboard (Argon2id)")
    p.add_argument("--stdin", action="store_true", help="read the password from standard input")
    p.set_defaults(func=cmd_admin_hash)
    p = sub.add_parser("withdraw", help="remove a participant's answers, consent and identifiers on request")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument(
        "--token",
        help="the token of the participant's study link (write --token=T: a token may begin with '-')",
    )
    who.add_argument(
        "--label",
        help="the participant's label (the protocol's participant_label, e.g. PROLIFIC_PID; --label=L)",
    )
    p.set_defaults(func=cmd_withdraw)
    p = sub.add_parser(
        "purge", help="purge identifiers older than the protocol's retention_days (serve does it at start)"
    )
    p.set_defaults(func=cmd_purge)
    for p in (sub.choices["withdraw"], sub.choices["purge"]):
        p.add_argument("--db", help=DB_HELP)
        p.add_argument("--protocol", metavar="FILE", help="registered protocol (default: the only study)")
    p = sub.add_parser(
        "backup", help="an online, consistent copy of the database (SQLite backup API / pg_dump)"
    )
    p.add_argument("--db", help=DB_HELP)
    p.add_argument("--out", required=True, metavar="FILE", help="backup file to create (must not exist)")
    p.set_defaults(func=cmd_backup)
    p = sub.add_parser(
        "restore", help="restore a backup into a new database (new SQLite file / empty PostgreSQL db)"
    )
    p.add_argument("backup", metavar="FILE", help="a file written by `skingen-study backup`")
    p.add_argument("--db", help=DB_HELP)
    p.set_defaults(func=cmd_restore)
    p = sub.add_parser("serve", help="run the participant app (Streamlit, tuned for many participants)")
    p.add_argument("--db", help=DB_HELP)
    p.add_argument(
        "--protocol", metavar="FILE", help="registered protocol (default: the database's only study)"
    )
    p.add_argument("--init", action="store_true", help="register --protocol first (like `init`)")
    p.add_argument(
        "--demo",
        action="store_true",
        help="the packaged between-subjects demo study: copied into --demo-dir with its demo bundle drawn "
        "beside it if missing, then registered; prints a one-time researcher password unless one is configured",
    )
    p.add_argument(
        "--demo-dir",
        metavar="DIR",
        help="with --demo: where the demo protocol is copied and its bundle drawn (default: $SKINGEN_DEMO_DIR, "
        "else the user data folder, e.g. ~/.local/share/skingen-study/demo)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8501, help="port (default 8501)")
    p.add_argument(
        "--explorer-open",
        action="store_true",
        help="open the explorer (/?area=explore: try SkinGEN on your own photo) to anyone with the link; "
        "without it, only signed-in researchers can use it",
    )
    p.add_argument(
        "--explorer-photos",
        metavar="DIR",
        help="keep explorer photos here, only when their user ticks consent (default: photos are never stored)",
    )
    p.add_argument(
        "--job-ttl",
        type=_positive_seconds,
        metavar="SECONDS",
        help="a model job (explorer, interactive trials) not done by a worker within this time fails, its photo "
        "erased (default: $SKINGEN_JOB_TTL, else 600)",
    )
    p.add_argument(
        "--job-hold",
        type=_positive_seconds,
        metavar="SECONDS",
        help="an explorer photo and the answers about it are erased this long after its page was left "
        "(default: $SKINGEN_JOB_HOLD, else 120)",
    )
    p.add_argument(
        "--nice",
        type=int,
        default=0,
        metavar="N",
        help="lower this server's CPU priority by N (like `nice -n N`): a server that may wait, e.g. an explorer "
        "open to all beside a paid study's servers (`deploy nginx --explorer-port` gives it 10)",
    )
    p.add_argument(
        "--default-streamlit",
        action="store_true",
        help="stock Streamlit performance settings (GC after every run, file watcher, no TCP_NODELAY); "
        "for benchmarks only",
    )
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "audit", help="replay the event log against the tables; list every row it can't explain"
    )
    p.add_argument("--db", help=DB_HELP)
    p.add_argument(
        "--protocol", metavar="FILE", help="registered protocol (default: the database's only study)"
    )
    p.set_defaults(func=cmd_audit)

    deploy = sub.add_parser("deploy", help="write the configs that run several app servers").add_subparsers(
        dest="deploy_command", required=True
    )
    p = deploy.add_parser(
        "nginx",
        help="nginx (sticky sessions, websockets, security headers) in front of N `serve` replicas, "
        "run by supervisor (start.sh) or systemd",
    )
    p.add_argument(
        "--replicas", type=int, default=2, help="app server processes (default 2; about one per core)"
    )
    p.add_argument("--port", type=int, default=8501, help="nginx's port (default 8501)")
    p.add_argument(
        "--host", default="127.0.0.1", help="nginx's address (default 127.0.0.1; see TLS in the docs)"
    )
    p.add_argument(
        "--replica-port",
        type=int,
        metavar="PORT",
        help="first replica's port (default --port + 1, then +1 each)",
    )
    p.add_argument(
        "--explorer-port",
        type=int,
        metavar="PORT",
        help="also serve the explorer, open to all, from a server of its own behind nginx on this port "
        "(its users then never slow a participant's server)",
    )
    p.add_argument("--db", help=DB_HELP + "; all replicas share it: use PostgreSQL")
    p.add_argument("--protocol", required=True, metavar="FILE")
    p.add_argument("--out", required=True, metavar="DIR", help="deployment folder (must be new or empty)")
    p.add_argument(
        "--overwrite", action="store_true", help="replace a non-empty --out folder (logs included)"
    )
    p.set_defaults(func=cmd_deploy_nginx)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from db.backup import BackupError
    from study.auth import AuthError
    from study.rating import RatingError
    from study.refusals import EngineError
    from study.registry import RegistryError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (
        ProtocolError,
        RegistryError,
        EngineError,
        RatingError,
        AuthError,
        OutputExistsError,
        BackupError,
        ValueError,
    ) as exc:
        print(f"skingen-study {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

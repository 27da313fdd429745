"""``skingen-study``: set up, check, run, simulate and export a study from the command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from db.session import Database, database_url
from skingen.atomic import OutputExistsError
from study.protocol import Protocol, ProtocolError, load_protocol

DB_HELP = "SQLAlchemy database URL (default: $SKINGEN_DB_URL or sqlite:///var/study.db)"


def _effects(values: list[str]) -> dict[str, float]:
    effects = {}
    for value in values:
        name, sep, amount = value.partition("=")
        try:
            effects[name] = float(amount)
        except ValueError:
            raise SystemExit(f"--effect expects CONSTRUCT=POINTS (e.g. trust=1.0), got {value!r}") from None
        if not sep or not name:
            raise SystemExit(f"--effect expects CONSTRUCT=POINTS (e.g. trust=1.0), got {value!r}")
    return effects


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
        )
        print(f"  {live_model_note(p)}")
    return status


def cmd_init(args: argparse.Namespace) -> int:
    from study.registry import register

    loaded = load_protocol(args.protocol)
    db = Database(database_url(args.db))
    study = register(db, loaded, allow_change=args.allow_protocol_change)
    print(
        f"{db.url}: study {study.protocol_id!r} v{study.version} registered (hash {study.content_hash[:12]})"
    )
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from study.engine import StudyEngine
    from study.simulate import Policy, simulate

    policy = Policy(
        kind="effect" if args.policy == "effect" or args.effect else "random",
        effects=_effects(args.effect),
        noise_sd=args.noise,
        attention_fail_rate=args.attention_fail_rate,
        dropout_rate=args.dropout_rate,
    )
    db = Database(database_url(args.db))
    engine = StudyEngine.open(db, args.protocol)
    outcomes = simulate(engine, args.n, seed=args.seed, policy=policy, progress=not args.quiet)
    done = sum(o.completed for o in outcomes)
    print(
        f"{len(outcomes)} bots: {done} completed, {len(outcomes) - done} dropped out, "
        f"{sum(o.inattentive for o in outcomes)} inattentive"
    )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from study.export import export_frames, write_export

    protocol_id = load_protocol(args.protocol).protocol.study.id if args.protocol else args.study
    frames = export_frames(
        Database(database_url(args.db)), protocol_id=protocol_id, include_identifiers=args.include_identifiers
    )
    for path in write_export(frames, Path(args.out), overwrite=args.overwrite):
        print(f"wrote {path} ({len(frames[path.stem])} rows)")
    return 0


def cmd_demo_bundle(args: argparse.Namespace) -> int:
    from skingen.bundle.demo import writer

    bundle = writer.build_demo_bundle(
        Path(args.out), seed=args.seed, n_references=args.references, size=args.size, overwrite=args.overwrite
    )
    print(f"wrote {len(bundle.manifest.cases)} cases to {bundle.root} (sha256 {bundle.content_hash[:12]})")
    return 0


def _panel(args: argparse.Namespace):
    from study.engine import StudyEngine
    from study.rating import RatingPanel

    engine = StudyEngine.open(Database(database_url(args.db)), args.protocol)
    return RatingPanel(engine.db, engine.loaded)


def cmd_raters_add(args: argparse.Namespace) -> int:
    panel = _panel(args)
    rater, invite = panel.add_rater(args.name, args.email, args.replace)
    _, total = panel.progress(rater.id)
    print(f"rater {rater.public_id} ({rater.name}): {total} images to rate (panel slot {rater.slot + 1})")
    print("one-time sign-in link (shown only now; it sets the rater's password):")
    print(f"  {args.base_url.rstrip('/')}/?invite={invite}")
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
        status = "inactive" if not rater.active else ("invited" if rater.password_hash is None else "active")
        print(f"{rater.public_id:6} {rater.name:24} {rater.slot + 1:>4} {f'{done}/{total}':>9} {status:10}")
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


def _demo_admin_password(host: str, port: int) -> None:
    """Demo only: a random researcher password, printed once. Real studies configure a hash (admin-hash)."""
    import os
    import secrets

    from study.auth import ADMIN_HASH_ENV, hash_secret

    if os.environ.get(ADMIN_HASH_ENV):
        return
    password = secrets.token_urlsafe(12)
    os.environ[ADMIN_HASH_ENV] = hash_secret(password)
    print(f"Researcher dashboard: http://{host}:{port}/?area=admin  —  demo password: {password}", flush=True)
    print(
        f"Rating panel (add raters with `skingen-study raters add NAME`): http://{host}:{port}/?area=rate",
        flush=True,
    )


def cmd_serve(args: argparse.Namespace) -> int:
    from study.engine import StudyEngine
    from study.registry import register
    from study.server import serve

    if args.demo:
        from study.demo import demo_dir, prepare_demo

        if args.protocol:
            raise ValueError("--demo runs the shipped demo protocol; leave out --protocol")
        args.protocol, args.init = str(prepare_demo(demo_dir(args.demo_dir))), True
    elif args.demo_dir:
        raise ValueError("--demo-dir goes with --demo")
    url = database_url(args.db)
    db = Database(url)
    if args.init:
        if not args.protocol:
            raise ValueError("--init needs --protocol FILE")
        register(db, load_protocol(args.protocol))
    StudyEngine.open(db, args.protocol)  # fail here, not in the participant's browser
    db.dispose()
    if args.demo:
        _demo_admin_password(args.host, args.port)
    serve(
        url,
        args.protocol,
        host=args.host,
        port=args.port,
        tuned=not args.default_streamlit,
        explorer_open=args.explorer_open,
        explorer_photos=args.explorer_photos,
    )
    return 0


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
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("simulate", help="run bot participants through the real flow engine")
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
        metavar="CONSTRUCT=POINTS",
        help="shift of the visual condition on a construct's Likert items, e.g. trust=1.0 (repeatable)",
    )
    p.add_argument("--noise", type=float, default=1.0, help="SD of per-answer noise in Likert points")
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
        "--default-streamlit",
        action="store_true",
        help="stock Streamlit performance settings (GC after every run, file watcher, no TCP_NODELAY); "
        "for benchmarks only",
    )
    p.set_defaults(func=cmd_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from study.auth import AuthError
    from study.engine import EngineError
    from study.rating import RatingError
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
        ValueError,
    ) as exc:
        print(f"skingen-study {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

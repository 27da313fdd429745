"""``skingen-analysis report``: every statistic, table and figure of the paper in one command.

Outputs are built in a staging folder next to ``--out`` and swapped into place only when everything
succeeded (:func:`formats.atomic.atomic_directory`), so a failed run never leaves partial results.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from analysis.config import AnalysisConfig
from analysis.load import DESIGNS, AnalysisInputError, StudyData, load_csv, load_export
from analysis.power import LikertGenerator
from analysis.report import build_report
from app.sources import LoadedProtocol, bots_of, load_db, read_protocol
from formats.atomic import OutputExistsError, atomic_directory, check_output_dir

DEFAULTS = AnalysisConfig()
"""The flags' defaults are the analysis' own (the dashboard runs with them too)."""


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _names(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="skingen-analysis", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("report", help="compute results.json, report.md/html, tables.tex and figures")
    src = rep.add_argument_group("input (the database, the export folder, or the export's CSV files)")
    src.add_argument("--db", metavar="URL", help="SQLAlchemy URL of the study database")
    src.add_argument(
        "--export",
        metavar="DIR",
        type=Path,
        help="export folder of `skingen-study export`: reads its responses, participants, ratings and study "
        "CSVs (design, baseline and compared condition from study.csv)",
    )
    src.add_argument(
        "--protocol",
        metavar="FILE",
        help="protocol file: with --db, picks the study (design and baseline); with --simulate, the study "
        "engine's bots run it for the simulated power curve",
    )
    src.add_argument("--responses", metavar="CSV", help="responses.csv of the export (long format)")
    src.add_argument(
        "--ratings", metavar="CSV", help="ratings.csv: rater_id, image_id, item, value[, condition]"
    )
    src.add_argument(
        "--participants",
        metavar="CSV",
        help="participants.csv of the export: applies exclusions and builds the participant flow",
    )
    des = rep.add_argument_group("design")
    des.add_argument(
        "--design",
        choices=DESIGNS,
        help="within or between subjects (default: the study's, else from the data)",
    )
    des.add_argument(
        "--baseline",
        help="baseline condition id (default: the study's, from --db or --export's study.csv; "
        "required with --responses)",
    )
    des.add_argument(
        "--compared",
        "--visual",  # its first name, kept for existing scripts
        dest="compared",
        help="the condition compared with the baseline in a two-condition study (default: the study's, else the "
        "one other condition)",
    )
    des.add_argument(
        "--conditions",
        type=_names,
        metavar="A,B,C",
        help="compare these k > 2 conditions (omnibus test and every pair; default: the study's from study.csv "
        "or --db; needs --baseline among them with --responses)",
    )
    des.add_argument(
        "--constructs",
        type=_names,
        metavar="A,B",
        help="confirmatory constructs (default: all except derived 0/1 constructs)",
    )
    des.add_argument("--scale-min", type=float, help="scale minimum when the export has no scale_min column")
    des.add_argument("--scale-max", type=float, help="scale maximum when the export has no scale_max column")
    des.add_argument(
        "--trust-construct", default=DEFAULTS.trust_construct, help="construct used for trust calibration"
    )
    opt = rep.add_argument_group("statistics")
    opt.add_argument(
        "--confidence", type=float, default=DEFAULTS.confidence, help="confidence level of all CIs"
    )
    opt.add_argument("--alpha", type=float, default=DEFAULTS.alpha, help="significance level for power")
    opt.add_argument("--power", type=float, default=DEFAULTS.power, help="target power")
    opt.add_argument(
        "--target-effect", type=float, default=DEFAULTS.target_effect, help="effect size for the a-priori n"
    )
    opt.add_argument(
        "--rating-threshold",
        type=float,
        help="ratings ≥ this count as positive on ordinal items (default: top two scale points)",
    )
    opt.add_argument(
        "--relevance-item",
        help="rating item compared with each image's closed-loop check (default: the protocol's "
        "rating.relevance_item, from the export's study.csv)",
    )
    opt.add_argument(
        "--mixed-backend",
        choices=["python", "r"],
        default=DEFAULTS.mixed_backend,
        help="backend of the crossed mixed models of per-case items: python (default; the same numbers on every "
        "machine) or r (lme4/lmerTest through Rscript; an error names what is missing)",
    )
    opt.add_argument(
        "--position",
        action="store_true",
        help="add the trial position (learning over cases) to the mixed model of per-case items; reported",
    )
    opt.add_argument(
        "--bootstrap", type=int, default=DEFAULTS.n_boot, help="bootstrap resamples over images (0: none)"
    )
    opt.add_argument("--seed", type=int, default=DEFAULTS.seed, help="random seed (bootstrap, simulation)")
    sim = rep.add_argument_group("simulation-based power")
    sim.add_argument(
        "--simulate",
        action="store_true",
        help="add a simulated power curve (planted effects): the study engine's bots when the protocol is "
        "known (--db or --protocol), else the built-in Likert generator",
    )
    sim.add_argument(
        "--sim-sizes",
        type=_ints,
        default=DEFAULTS.sim_sizes,
        metavar="N,N",
        help="participants per simulated study",
    )
    sim.add_argument(
        "--sim-effects",
        type=_floats,
        default=DEFAULTS.sim_effects,
        metavar="D,D",
        help="planted standardized effects",
    )
    sim.add_argument("--sim-reps", type=int, default=DEFAULTS.sim_reps, help="simulated studies per point")
    sim.add_argument(
        "--sim-population",
        type=int,
        metavar="N",
        help="study-engine bots run per planted effect, sampled into simulated studies "
        "(default: max(4 × largest --sim-sizes, 200))",
    )
    out = rep.add_argument_group("output")
    out.add_argument("--out", required=True, type=Path, help="output folder (must be empty or new)")
    out.add_argument("--overwrite", action="store_true", help="replace an existing non-empty --out folder")
    out.add_argument("--no-static", action="store_true", help="skip PNG/SVG export (HTML figures only)")
    out.add_argument("--no-figures", action="store_true", help="skip all figures")
    out.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def check_args(args: argparse.Namespace) -> None:
    """Cross-field checks of the flags, before any data is read."""
    sources = [args.db, args.export, args.responses or args.ratings or args.participants]
    if sum(bool(s) for s in sources) > 1:
        raise AnalysisInputError("give one input: --db, --export or --responses/--ratings/--participants")
    if not (args.db or args.export or args.responses or args.ratings or args.simulate):
        raise AnalysisInputError(
            "no input: give --db URL, --export DIR, --responses CSV and/or --ratings CSV (or --simulate)"
        )
    if args.protocol and not (args.db or args.simulate):
        raise AnalysisInputError("--protocol is only used with --db or --simulate")
    if args.compared and args.conditions:
        raise AnalysisInputError("give --compared (two conditions) or --conditions (more), not both")
    if args.conditions and len(args.conditions) < 3:
        raise AnalysisInputError(
            f"--conditions names {len(args.conditions)}; for two use --baseline/--compared"
        )
    if not 0 < args.confidence < 1:
        raise AnalysisInputError(f"--confidence must be between 0 and 1, got {args.confidence}")
    if args.bootstrap < 0 or args.sim_reps < 1:
        raise AnalysisInputError("--bootstrap must be ≥ 0 and --sim-reps ≥ 1")
    if args.sim_population is not None and args.sim_population < 2:
        raise AnalysisInputError(f"--sim-population must be at least 2, got {args.sim_population}")
    try:
        check_output_dir(args.out, overwrite=args.overwrite)
    except OutputExistsError as exc:
        raise AnalysisInputError(f"--out: {exc}") from None


def given_protocol(args: argparse.Namespace) -> LoadedProtocol | None:
    """The protocol, read once: ``--protocol FILE`` (picks the study in ``--db``; the bots run it), else for
    ``--simulate`` the study registered in ``--db``; None otherwise (CSV input, or no simulation)."""
    if args.protocol:
        return read_protocol(args.protocol, None)
    if args.simulate and args.db:
        return read_protocol(None, args.db)
    return None


def load(args: argparse.Namespace, protocol: LoadedProtocol | None = None) -> StudyData:
    design = {
        "design": args.design,
        "baseline": args.baseline,
        "compared": args.compared,
        "conditions": args.conditions,
    }
    if args.db:
        protocol_id = protocol.protocol.study.id if args.protocol and protocol is not None else None
        return load_db(args.db, protocol_id, **design)
    if args.export:
        return load_export(args.export, **design)
    if args.responses or args.ratings:
        return load_csv(args.responses, args.ratings, args.participants, **design)
    planned = protocol.protocol if protocol is not None else None  # power planning from a protocol file
    baseline = args.baseline or (planned.baseline if planned else LikertGenerator.baseline)
    listed = args.conditions or (planned.condition_ids if planned else ())
    conditions = (baseline, *(c for c in listed if c != baseline))
    multi = len(conditions) > 2 and not args.compared
    compared = "" if multi else args.compared or (planned.compared if planned else LikertGenerator.compared)
    return StudyData(
        None,
        None,
        None,
        args.design or (planned.design if planned else "within"),
        baseline,
        compared,
        ("no study data: power simulation only",),
        conditions if multi else (baseline, compared),
    )


def config_from(args: argparse.Namespace) -> AnalysisConfig:
    return AnalysisConfig(
        constructs=args.constructs,
        scale_min=args.scale_min,
        scale_max=args.scale_max,
        confidence=args.confidence,
        alpha=args.alpha,
        power=args.power,
        target_effect=args.target_effect,
        trust_construct=args.trust_construct,
        rating_threshold=args.rating_threshold,
        relevance_item=args.relevance_item,
        n_boot=args.bootstrap,
        seed=args.seed,
        simulate=args.simulate,
        sim_sizes=args.sim_sizes,
        sim_effects=args.sim_effects,
        sim_reps=args.sim_reps,
        sim_population=args.sim_population,
        mixed_backend=args.mixed_backend,
        position=args.position,
    )


def report(args: argparse.Namespace) -> int:
    # 1. Check flags and load + validate the data (all input errors surface here)
    check_args(args)
    protocol = given_protocol(args)
    data = load(args, protocol)
    # 2. Compute every statistic and figure
    bot_source = bots_of(protocol) if protocol is not None else None
    report = build_report(
        data, config_from(args), bot_source=bot_source, figures=not args.no_figures, progress=not args.quiet
    )
    # 3. Write everything into a staging folder that replaces --out only when complete
    with atomic_directory(args.out, overwrite=args.overwrite) as staging:
        report.write(staging, static=not args.no_static)
    for warning in report.results["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"report written to {args.out}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``skingen-analysis``; returns the exit status (2: unusable input or flags)."""
    try:
        args = parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help (0) and on bad flags (2)
        return int(exc.code or 0)
    try:
        return report(args)
    except AnalysisInputError as exc:
        print(f"skingen-analysis: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

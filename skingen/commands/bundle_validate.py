"""``skingen bundle validate BUNDLE``: check a bundle's manifest and files; one JSON summary line (needs no
extra: the study's side runs it too)."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from formats.bundle import BundleError, load_bundle
from skingen.commands.command import register
from skingen.errors import SkinGenError


@dataclass(frozen=True)
class BundleValidateConfig:
    bundle: Path


def add_parser(bundle_commands: argparse._SubParsersAction) -> None:
    parser = bundle_commands.add_parser("validate", help="check a bundle's manifest and files")
    parser.add_argument("bundle", type=Path, metavar="BUNDLE")
    register(parser, check, run)


def check(args: argparse.Namespace) -> BundleValidateConfig:
    return BundleValidateConfig(args.bundle)


def run(config: BundleValidateConfig) -> int:
    try:
        bundle = load_bundle(config.bundle)
    except BundleError as exc:
        raise SkinGenError(f"invalid bundle: {exc}") from exc
    manifest = bundle.manifest
    print(
        json.dumps(
            {
                "bundle": str(config.bundle),
                "bundle_id": manifest.bundle_id,
                "version": manifest.version,
                "cases": len(manifest.cases),
                "references": sum(len(case.references) for case in manifest.cases),
                "retrieved": sum(len(case.retrieved) for case in manifest.cases),
                "sha256": bundle.content_hash,
            }
        )
    )
    return 0

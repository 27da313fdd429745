"""The dataset formats ``skingen data prepare --format`` reads: name, licence string, reader."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from skingen.data_prepare import ddi, fitzpatrick17k, folder, scin
from skingen.data_prepare.records import RawDataset
from skingen.errors import SkinGenError


@dataclass(frozen=True)
class DatasetFormat:
    name: str
    licence: str
    read: Callable[[Path, Path], RawDataset]  # (SRC, images folder) → records


FORMATS = {
    module.NAME: DatasetFormat(module.NAME, module.LICENCE, module.read)
    for module in (fitzpatrick17k, ddi, scin, folder)
}


def get_format(name: str) -> DatasetFormat:
    try:
        return FORMATS[name]
    except KeyError:
        raise SkinGenError(f"--format {name!r} is not known; use one of {', '.join(FORMATS)}") from None

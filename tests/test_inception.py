"""``--inception-weights``: the standard Inception FID, equal to clean-fid's on the same images.

The real weights file is not downloaded here: a stand-in network with the interface of clean-fid's TorchScript
``inception-2015-12-05.pt`` (a ``layers`` module taking (x − 128)/128 at 299×299 and giving 2048 features) is
scripted into a temporary file and loaded by skingen and by clean-fid's own ``InceptionV3W`` and ``make_resizer``
(installed with --no-deps: those two modules need no torchvision). The stand-in's features vary in 8 of the
2048 dimensions (the rest 0), so the covariances are well conditioned with a few dozen images and the FD
reference (clean-fid's formula: numpy covariances, SciPy ``sqrtm``) is exact on those 8.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from skingen.cli import main
from tests.image_sets import write_sets
from tests.skingen_fixtures import tiny_models

pytestmark = [
    pytest.mark.ml,
    # the stand-in is written as TorchScript (the real file's format), which torch 2.13 deprecates; clean-fid's
    # InceptionV3W (the reference) loads it with torch.jit.load
    pytest.mark.filterwarnings(
        r"ignore:`torch\.jit\.(trace|trace_method|save|load)` is deprecated:DeprecationWarning"
    ),
]
torch = pytest.importorskip("torch")
scipy_linalg = pytest.importorskip("scipy.linalg")
clean_resize = pytest.importorskip("cleanfid.resize")
clean_inception = pytest.importorskip("cleanfid.inception_torchscript")

ACTIVE = 8


class _Layers(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 5, stride=8)
        self.pool = torch.nn.AdaptiveAvgPool2d(2)
        self.linear = torch.nn.Linear(16, ACTIVE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        active = self.linear(torch.tanh(self.pool(self.conv(x))).flatten(1))
        return torch.nn.functional.pad(active, [0, 2048 - 8])[:, :, None, None]


class _StandIn(torch.nn.Module):
    """clean-fid's interface: a ``layers`` module on normalised 299² input (all its "clean" mode calls)."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = _Layers()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers((x - 128) / 128)


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("inception") / "inception-2015-12-05.pt"
    example = torch.rand(2, 3, 299, 299) * 255
    torch.jit.save(torch.jit.trace(_StandIn().eval(), example), str(path))
    return path


def _clean_fid_features(paths: list[Path], weights: Path) -> np.ndarray:
    """What clean-fid's ``get_files_features(mode="clean")`` computes for these files (its own code)."""
    resize = clean_resize.make_resizer("PIL", False, "bicubic", (299, 299))
    model = clean_inception.InceptionV3W(str(weights.parent), download=False, resize_inside=False)
    batch = torch.stack(
        [torch.tensor(resize(np.array(Image.open(p).convert("RGB"))).transpose((2, 0, 1))) for p in paths]
    )
    with torch.no_grad():
        return model(batch).numpy().astype(np.float64)


def _clean_fid_distance(real: np.ndarray, fake: np.ndarray) -> float:
    """clean-fid's ``fid_from_feats`` → ``frechet_distance`` (np.cov, SciPy sqrtm), on the active dimensions
    (the constant-zero ones add exactly 0)."""
    real, fake = real[:, :ACTIVE], fake[:, :ACTIVE]
    sigma1, sigma2 = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    covmean = scipy_linalg.sqrtm(sigma1.dot(sigma2)).real
    diff = real.mean(0) - fake.mean(0)
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def test_fid_equals_clean_fid_on_the_same_images(weights: Path, tmp_path_factory) -> None:
    from skingen.evaluation.inception import InceptionFeatures

    models = tiny_models(tmp_path_factory)
    data, generated = write_sets(tmp_path_factory.mktemp("sets"))
    real_paths = sorted((data / "images").glob("*.png"), key=lambda p: int(p.stem))
    fake_paths = sorted(generated.glob("*.png"))
    ours = InceptionFeatures(weights, device="cpu", batch_size=7)(fake_paths).double().numpy()
    reference = _clean_fid_features(fake_paths, weights)
    assert np.abs(ours - reference).max() <= 1e-5 * np.abs(reference).max()
    assert (reference[:, ACTIVE:] == 0).all() and reference[:, :ACTIVE].std(0).min() > 0

    out = tmp_path_factory.mktemp("eval") / "report"
    code = main([str(a) for a in ("evaluate", "--real", data, "--generated", generated, "--features", models.clip,
                                  "--inception-weights", weights, "--out", out, "--bootstrap", 20,
                                  "--device", "cpu")])  # fmt: skip
    assert code == 0
    result = json.loads((out / "metrics.json").read_text())
    assert result["feature_spaces"] == ["clip", "inception"]
    assert result["distances"]["inception"] == {"fd": "fid", "fd_inf": "fid_inf", "fd_equal_n": "fid_equal_n",
                                                 "kd": "kid", "dim": 2048}  # fmt: skip
    expected = _clean_fid_distance(_clean_fid_features(real_paths, weights), reference)
    assert result["fid"] == pytest.approx(expected, rel=1e-5)
    low, high = result["fid_inf_ci"]
    assert low <= result["fid_inf"] <= high
    assert result["kid"] is not None and result["fd_clip"] is not None  # both spaces, side by side
    assert result["inputs"]["inception_weights"] == str(weights)


def test_a_state_dict_or_other_file_is_refused_by_name(tmp_path: Path) -> None:
    from skingen.errors import SkinGenError
    from skingen.evaluation.inception import InceptionFeatures

    state_dict = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, state_dict)
    with pytest.raises(SkinGenError, match=r"--inception-weights: .*pt_inception.*not a TorchScript archive"):
        InceptionFeatures(state_dict, device="cpu")
    with pytest.raises(SkinGenError, match=r"--inception-weights: .* not found"):
        InceptionFeatures(tmp_path / "missing.pt", device="cpu")

"""Drawing the demo's synthetic skin images: numpy + Pillow painters, byte-for-byte reproducible from a seed.

Images are float32 arrays (H, W, 3) in [0, 1]; coordinates run from -1 to 1. :func:`render_image` draws
unaffected skin of one :class:`SkinTone`, paints one condition into it (a function of :data:`PAINTERS`) and
burns the same SYNTHETIC stamp into every image's corner. What is drawn (conditions, tones, cases) is data:
``material.yaml``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

RGB = tuple[float, float, float]
Painter = Callable[[np.ndarray, "SkinTone", np.random.Generator], np.ndarray]


@dataclass(frozen=True)
class SkinTone:
    """A Fitzpatrick type as drawn: the unaffected skin colour and how redness shows on it."""

    fitzpatrick: str
    base: RGB
    erythema: RGB


# ---------------------------------------------------------------------------------------------------------
# Drawing primitives. Images are float32 arrays (H, W, 3) in [0, 1]; coordinates run from -1 to 1.
# ---------------------------------------------------------------------------------------------------------


def _coords(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in [-1, 1] as a row (x) and a column (y), to broadcast instead of allocate."""
    axis = ((np.arange(size, dtype=np.float32) + 0.5) / size) * 2 - 1
    return axis[None, :], axis[:, None]


def _upsample(grid: np.ndarray, size: int) -> np.ndarray:
    """Bicubic upsampling of a float32 grid to ``size``², rescaled to zero mean and unit spread."""
    field = np.asarray(Image.fromarray(grid).resize((size, size), Image.Resampling.BICUBIC))
    return (field - field.mean()) / (field.std() + 1e-6)


def _noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth noise with unit spread: a ``cells``-wide random grid upsampled."""
    return _upsample(rng.standard_normal((cells + 1, cells + 1)).astype(np.float32), size)


def _fractal(rng: np.random.Generator, size: int, cells: Sequence[int]) -> np.ndarray:
    """Octaves of noise, each finer one half as strong, so textures have detail at several scales.

    The octaves are summed on the finest octave's grid and upsampled once: one full-size resize, not one each.
    """
    fine = max(cells) + 1
    total = sum(0.5**i * _noise(rng, fine, c) for i, c in enumerate(cells))
    return _upsample(total, size)


def _blur(mask: np.ndarray, radius: float) -> np.ndarray:
    """Gaussian blur of a [0, 1] mask through Pillow (which blurs 8-bit images; plenty for soft edges)."""
    image = Image.fromarray(np.clip(mask * 255 + 0.5, 0, 255).astype(np.uint8))
    return np.asarray(image.filter(ImageFilter.GaussianBlur(radius)), dtype=np.float32) / 255


def _smoothstep(low: float, high: float, value: np.ndarray) -> np.ndarray:
    t = np.clip((value - np.float32(low)) / np.float32(high - low), 0, 1)
    return t * t * (3 - 2 * t)


def _blob(
    rng: np.random.Generator,
    size: int,
    centre: np.ndarray,
    radius: float,
    *,
    wobble: float,
    aspect: float = 1.0,
    edge: float = 0.02,
    roughness: float = 0.0,
) -> np.ndarray:
    """Soft mask of a rotated ellipse whose border is bent by random harmonics (``wobble`` = irregularity)
    and, with ``roughness``, notched by fine noise."""
    x, y = _coords(size)
    angle = float(rng.uniform(0, np.pi))
    cos, sin = _unit(angle)
    dx, dy = x - np.float32(centre[0]), y - np.float32(centre[1])
    distance = np.hypot(dx * cos + dy * sin, (dy * cos - dx * sin) * np.float32(aspect))
    theta = np.arctan2(dy * cos - dx * sin, dx * cos + dy * sin)
    border = np.full_like(theta, radius)
    for k in range(2, 8):
        amplitude = np.float32(radius * wobble / k * rng.standard_normal())
        border += amplitude * np.cos(k * theta + np.float32(rng.uniform(0, 2 * np.pi)))
    if roughness:
        border += np.float32(radius * roughness) * _fractal(rng, size, (8, 16, 32))
    return _smoothstep(-edge, edge, border - distance)


def _dots(size: int, centres: np.ndarray, radii: np.ndarray, blur: float) -> np.ndarray:
    """Many small soft discs at once (papules, pores of repigmentation), drawn by Pillow then blurred."""
    image = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(image)
    for (cx, cy), r in zip((centres + 1) / 2 * size, radii * size / 2, strict=True):
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
    return _blur(np.asarray(image, dtype=np.float32) / 255, blur)


def _strokes(size: int, paths: Sequence[np.ndarray], width: int, blur: float) -> np.ndarray:
    """Soft mask of polylines given in [-1, 1] coordinates (scratches, hairs)."""
    image = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(image)
    for path in paths:
        draw.line([tuple(p) for p in (path + 1) / 2 * size], fill=255, width=width, joint="curve")
    return _blur(np.asarray(image, dtype=np.float32) / 255, blur)


def _relief(height: np.ndarray, strength: float) -> np.ndarray:
    """Shading factor (H, W, 1) lighting a height map from the upper left, so raised lesions look raised."""
    grad_y, grad_x = np.gradient(height)
    return (1 - strength * (grad_x + grad_y) * height.shape[0] / 100)[..., None]


def _tint(image: np.ndarray, tone: SkinTone, colour: RGB | np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Blend towards ``colour`` but keep the skin's own texture and shading, so lesions sit in the skin."""
    gain = _colour(colour) / _colour(tone.base) - 1
    return image * (1 + np.clip(alpha, 0, 1)[..., None] * gain)


def _paint(image: np.ndarray, colour: RGB | np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Plain alpha blend for things that sit on the skin rather than in it (scale, pus, crusts, hair)."""
    return image + np.clip(alpha, 0, 1)[..., None] * (_colour(colour) - image)


def _random_centres(rng: np.random.Generator, count: int, spread: float) -> np.ndarray:
    return rng.uniform(-spread, spread, size=(count, 2)).astype(np.float32)


def _colour(rgb: RGB | np.ndarray) -> np.ndarray:
    return np.asarray(rgb, dtype=np.float32)


def _unit(angle: float) -> np.ndarray:
    """Unit vector as float32, so that it does not promote whole images to float64 (numpy's scalar rules)."""
    return np.array([np.cos(angle), np.sin(angle)], dtype=np.float32)


# ---------------------------------------------------------------------------------------------------------
# Skin and lesions. Each painter takes the drawn skin and returns it with the condition drawn in.
# ---------------------------------------------------------------------------------------------------------


def _skin(rng: np.random.Generator, size: int, tone: SkinTone) -> np.ndarray:
    """Unaffected skin: uneven tone, pores, fine crease lines, soft light on a curved surface, some hair."""
    x, y = _coords(size)
    mottling = 0.015 * _fractal(rng, size, (4, 8, 16))
    redness = 0.03 * _smoothstep(0.0, 2.5, _noise(rng, size, 5))
    pores = 0.035 * (_blur(rng.random((size, size), dtype=np.float32), 0.7) - 0.5)
    across = _unit(rng.uniform(0, np.pi))
    lines = np.sin((x * across[0] + y * across[1]) * (size / 6) + 3.0 * _noise(rng, size, 4))
    creases = 0.03 * _smoothstep(0.8, 1.0, lines) * _smoothstep(-0.5, 1.0, _noise(rng, size, 8))
    light = rng.uniform(-1, 1, size=2).astype(np.float32)
    shading = 1 + 0.06 * (x * light[0] + y * light[1]) - 0.06 * (x * x + y * y)

    image = _colour(tone.base) * (1 + mottling + pores - creases)[..., None]
    image = image + redness[..., None] * _colour((1.0, -0.5, -0.5))
    image = image * shading[..., None]

    hair_count = int(rng.integers(5, 25)) if rng.random() < 0.5 else 0
    if hair_count:
        starts = _random_centres(rng, hair_count, 1.1)
        heading = rng.uniform(0, np.pi) + rng.normal(0, 0.3, size=hair_count)
        length = rng.uniform(0.08, 0.2, size=hair_count)
        step = np.stack([np.cos(heading), np.sin(heading)], axis=1) * length[:, None]
        bend = np.stack([-step[:, 1], step[:, 0]], axis=1) * rng.normal(0, 0.12, size=(hair_count, 1))
        t = np.linspace(0, 1, 6)[:, None]
        paths = [s + t * d + 4 * t * (1 - t) * b for s, d, b in zip(starts, step, bend, strict=True)]
        image = _paint(image, (0.13, 0.09, 0.07), 0.4 * _strokes(size, paths, width=1, blur=0.4))
    return image


def _draw_psoriasis(image: np.ndarray, tone: SkinTone, rng: np.random.Generator) -> np.ndarray:
    size = image.shape[0]
    plaques = np.zeros((size, size), np.float32)
    for centre in _random_centres(rng, int(rng.integers(2, 4)), 0.45):
        radius = float(rng.uniform(0.16, 0.3))
        mask = _blob(
            rng, size, centre, radius, wobble=0.3, aspect=rng.uniform(1.0, 1.5), edge=0.012, roughness=0.04
        )
        plaques = np.maximum(plaques, mask)
    image = _tint(image, tone, tone.erythema, 0.9 * plaques)
    image = image * _relief(_blur(plaques, 1.5), 0.08)
    # Scale is thickest in the middle of a plaque, leaving a red rim, and flakes in layers.
    core = plaques * _smoothstep(0.4, 0.9, _blur(plaques, size / 40))
    flakes = _smoothstep(-0.3, 0.5, _fractal(rng, size, (8, 16, 32, 64)))
    speckle = _blur(_smoothstep(0.3, 0.9, rng.random((size, size), dtype=np.float32)), 0.6)
    scale = core * flakes * (0.6 + 0.4 * speckle)
    image = _paint(image, (0.90, 0.89, 0.88), 0.85 * scale)
    return image * _relief(_blur(scale, 1.0), 0.15)


def _draw_eczema(image: np.ndarray, tone: SkinTone, rng: np.random.Generator) -> np.ndarray:
    size = image.shape[0]
    patch = np.zeros((size, size), np.float32)
    for centre in _random_centres(rng, int(rng.integers(2, 4)), 0.4):
        mask = _blob(
            rng, size, centre, rng.uniform(0.26, 0.4), wobble=0.5, aspect=rng.uniform(1, 1.6), edge=0.15
        )
        patch = np.maximum(patch, mask)
    # Ill-defined: the redness fades out unevenly instead of stopping at a border.
    blotches = _smoothstep(-1.2, 1.0, _fractal(rng, size, (5, 10, 20)))
    redness = patch * (0.4 + 0.6 * blotches)
    image = _tint(image, tone, tone.erythema, 0.9 * redness)
    # Lichenification: the skin's lines deepen into a rough, broken criss-cross inside the patch.
    x, y = _coords(size)
    warp = 2.5 * _noise(rng, size, 6)
    hatch = np.maximum(
        _smoothstep(0.75, 1.0, np.sin((x + 0.5 * y) * (size / 7) + warp)),
        _smoothstep(0.75, 1.0, np.sin((y - 0.6 * x) * (size / 8) - warp)),
    ) * _smoothstep(-0.3, 0.8, _noise(rng, size, 12))
    image = image * (1 - 0.18 * hatch * redness)[..., None]
    # Tiny bumps and fine dry flakes.
    bumps = _dots(size, _random_centres(rng, 60, 0.6), rng.uniform(0.004, 0.008, 60), 1.0) * patch
    image = _tint(image, tone, 0.85 * _colour(tone.erythema), 0.6 * bumps) * _relief(bumps, 0.1)
    dryness = _blur(_smoothstep(0.6, 1.0, rng.random((size, size), dtype=np.float32)), 0.8) * redness
    image = _paint(image, 0.5 * _colour(tone.base) + 0.35, 0.35 * dryness)
    # Excoriations: short scratches with crusts, only where the skin itches (inside the patch).
    scratches = []
    for start in _random_centres(rng, int(rng.integers(8, 14)), 0.45):
        heading = rng.uniform(0, np.pi)
        offsets = np.linspace(0, rng.uniform(0.04, 0.12), 4)[:, None] * _unit(heading)
        scratches.append(start + offsets + rng.normal(0, 0.005, size=(4, 2)))
    marks = _strokes(size, scratches, width=max(2, size // 160), blur=0.6) * _smoothstep(0.3, 0.6, patch)
    image = _paint(image, 0.5 * _colour(tone.erythema), 0.75 * marks)
    crusts = _dots(size, _random_centres(rng, 12, 0.45), rng.uniform(0.005, 0.01, 12), 0.6)
    return _paint(image, (0.55, 0.36, 0.16), 0.7 * crusts * _smoothstep(0.4, 0.7, patch))


def _draw_acne(image: np.ndarray, tone: SkinTone, rng: np.random.Generator) -> np.ndarray:
    size = image.shape[0]
    count = int(rng.integers(22, 36))
    centres = _random_centres(rng, count, 0.85)
    radii = rng.uniform(0.014, 0.036, count)
    # Marks left by old spots: flat and brownish, most visible on darker skin.
    marks = _dots(size, _random_centres(rng, 14, 0.85), rng.uniform(0.015, 0.03, 14), 3)
    image = _tint(image, tone, 0.8 * _colour(tone.base), 0.6 * marks)
    image = _tint(image, tone, tone.erythema, 0.6 * _dots(size, centres, radii * 2.0, 5))
    papules = _dots(size, centres, radii, 2.5)
    image = _tint(image, tone, tone.erythema, 0.85 * papules) * _relief(papules, 0.45)
    pustule = rng.random(count) < 0.35
    heads = _dots(size, centres[pustule], radii[pustule] * 0.5, 1.5)
    image = _paint(image, (0.95, 0.91, 0.72), 0.85 * heads)
    comedones = _dots(size, _random_centres(rng, 10, 0.85), np.full(10, 0.004), 0.5)
    return _paint(image, (0.18, 0.14, 0.12), 0.6 * comedones)


def _draw_vitiligo(image: np.ndarray, tone: SkinTone, rng: np.random.Generator) -> np.ndarray:
    size = image.shape[0]
    patches = np.zeros((size, size), np.float32)
    for centre in _random_centres(rng, int(rng.integers(2, 4)), 0.5):
        mask = _blob(
            rng,
            size,
            centre,
            rng.uniform(0.16, 0.32),
            wobble=0.3,
            aspect=rng.uniform(1, 1.5),
            edge=0.01,
            roughness=0.05,
        )
        patches = np.maximum(patches, mask)
    # Sharp border; islands of returning colour around hair follicles inside the patch.
    islands = _dots(size, _random_centres(rng, 40, 0.8), rng.uniform(0.005, 0.01, 40), 1.5)
    depigmented = np.clip(patches - 0.6 * islands, 0, 1)
    pale = _colour((0.96, 0.87, 0.82)) + 0.02 * _noise(rng, size, 10)[..., None] * _colour((1.0, -0.5, -0.5))
    return _tint(image, tone, pale, depigmented)


def _draw_melanoma(image: np.ndarray, tone: SkinTone, rng: np.random.Generator) -> np.ndarray:
    size = image.shape[0]
    centre = rng.uniform(-0.12, 0.12, 2)
    radius = float(rng.uniform(0.24, 0.32))
    lesion = _blob(
        rng, size, centre, radius, wobble=0.45, aspect=rng.uniform(1.1, 1.4), edge=0.02, roughness=0.12
    )
    # Asymmetry: a second, differently shaped lobe off to one side.
    heading = rng.uniform(0, 2 * np.pi)
    lobe_centre = centre + 0.7 * radius * _unit(heading)
    lobe = _blob(rng, size, lobe_centre, 0.55 * radius, wobble=0.5, edge=0.03, roughness=0.15)
    lesion = np.maximum(lesion, 0.85 * lobe)
    image = _tint(image, tone, (0.40, 0.24, 0.15), 0.95 * lesion)
    # Several colours in blended zones: dark brown, black, blue-grey, pink-red and a pale scar-like area.
    inside = _smoothstep(0.4, 0.95, lesion)
    zones = (
        ((0.24, 0.13, 0.08), 0.0, 0.9),
        ((0.08, 0.06, 0.06), 0.6, 0.9),
        ((0.36, 0.40, 0.50), 1.1, 0.6),
        ((0.66, 0.32, 0.32), 1.0, 0.7),
        ((0.76, 0.66, 0.60), 1.3, 0.6),
    )
    for colour, threshold, opacity in zones:
        zone = _smoothstep(threshold - 0.6, threshold + 0.6, _fractal(rng, size, (3, 6, 12, 24)))
        image = _paint(image, colour, opacity * zone * inside)
    network = _smoothstep(0.5, 1.0, _fractal(rng, size, (32, 64)))
    return image * (1 - 0.3 * network * inside)[..., None]


def _draw_nevus(image: np.ndarray, tone: SkinTone, rng: np.random.Generator) -> np.ndarray:
    size = image.shape[0]
    centre = rng.uniform(-0.25, 0.25, 2).astype(np.float32)
    radius = float(rng.uniform(0.09, 0.14))
    mole = _blob(rng, size, centre, radius, wobble=0.03, aspect=rng.uniform(1.0, 1.12), edge=0.02)
    brown = _colour((0.42, 0.25, 0.15)) * (0.75 + 0.5 * float(np.mean(tone.base)))
    image = _tint(image, tone, brown, 0.92 * mole)
    x, y = _coords(size)
    darker_middle = np.exp(-((x - centre[0]) ** 2 + (y - centre[1]) ** 2) / (2 * (0.6 * radius) ** 2))
    image = image * (1 - 0.12 * darker_middle * mole)[..., None]
    return image * _relief(_blur(mole, 4), 0.2)


def _draw_urticaria(image: np.ndarray, tone: SkinTone, rng: np.random.Generator) -> np.ndarray:
    size = image.shape[0]
    wheals = np.zeros((size, size), np.float32)
    for centre in _random_centres(rng, int(rng.integers(3, 6)), 0.55):
        radius = float(rng.uniform(0.12, 0.26))
        mask = _blob(
            rng, size, centre, radius, wobble=0.2, aspect=rng.uniform(1, 1.6), edge=0.02, roughness=0.05
        )
        if rng.random() < 0.5:  # some wheals clear in the middle and become rings
            mask = mask * (1 - 0.85 * _blob(rng, size, centre, 0.45 * radius, wobble=0.4, edge=0.05))
        wheals = np.maximum(wheals, mask)
    image = _tint(image, tone, tone.erythema, 0.9 * _blur(wheals, size / 30))
    # The wheal itself is swollen and paler than the red flare around it.
    swollen = 0.5 * _colour(tone.erythema) + 0.5 * 1.08 * _colour(tone.base)
    image = _tint(image, tone, swollen, 0.85 * wheals)
    return image * _relief(_blur(wheals, 4), 0.35)


PAINTERS: dict[str, Painter] = {
    "psoriasis": _draw_psoriasis,
    "eczema": _draw_eczema,
    "acne": _draw_acne,
    "vitiligo": _draw_vitiligo,
    "melanoma": _draw_melanoma,
    "nevus": _draw_nevus,
    "urticaria": _draw_urticaria,
}
"""The painters by name; a condition of ``material.yaml`` names its painter."""


# ---------------------------------------------------------------------------------------------------------
# Rendering.
# ---------------------------------------------------------------------------------------------------------


# One stamp for every image, case photo and reference alike: a rater who compares the two must not be able to
# tell which is the patient's photo and which was generated from the stamp (the rating task is blind). Pillow's
# built-in font has no em dash, so the text uses a plain hyphen.
STAMP = "SYNTHETIC - not a real patient"


def stamp_box(size: int) -> tuple[int, int, int, int]:
    """The stamp's box (left, top, right, bottom; right and bottom exclusive) on a ``size`` × ``size`` image:
    the bottom-left corner, large enough for :data:`STAMP`."""
    font = _stamp_font(size)
    left, top, right, bottom = font.getbbox(STAMP)
    pad, margin = max(3, size // 96), max(4, size // 64)
    return margin, size - margin - (bottom - top) - 2 * pad, margin + (right - left) + 2 * pad, size - margin


def _stamp_font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=max(10, round(size / 26)))


def _stamp(image: Image.Image) -> Image.Image:
    """Burn :data:`STAMP` into the bottom-left corner: white text on an opaque black box, legible on every skin
    tone and, being opaque, the same pixels on every image of one size."""
    size = image.width
    font = _stamp_font(size)
    left, top, _, _ = font.getbbox(STAMP)
    box = stamp_box(size)
    pad = max(3, size // 96)
    stamped = image.convert("RGB")
    draw = ImageDraw.Draw(stamped)
    draw.rectangle((box[0], box[1], box[2] - 1, box[3] - 1), fill=(0, 0, 0))
    draw.text((box[0] + pad - left, box[1] + pad - top), STAMP, font=font, fill=(255, 255, 255))
    return stamped


def render_image(painter: str, tone: SkinTone, *, seed: int, size: int) -> Image.Image:
    """Draw one stamped synthetic image with ``PAINTERS[painter]`` on ``tone`` skin."""
    rng = np.random.default_rng(seed)
    pixels = PAINTERS[painter](_skin(rng, size, tone), tone, rng)
    image = Image.fromarray(np.clip(pixels * 255 + 0.5, 0, 255).astype(np.uint8))
    return _stamp(image)

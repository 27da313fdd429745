"""Overhead of skingen's generation path over the plain diffusers call, side by side in one run.

Both paths share one loaded pipeline, prompt, steps, size and seeds, so the difference is what
:class:`skingen.generation.ReferenceGenerator` adds (input checks, provenance records, per-seed generators)
and, in a separate column, the cost of writing each image to the cache. Rounds alternate which path goes
first; the best of the rounds is reported (as ``timeit`` does: noise from other processes only adds time).
Every round also checks that both paths give identical pixels. On a busy machine the end-to-end difference
is mostly noise; the ``wrapper`` column times our path with the diffusers call stubbed out, i.e. exactly
what skingen adds, as a share of the plain call.

    python bench/bench_generate.py                       # tiny random model, CPU (a few seconds)
    python bench/bench_generate.py --sd PATH --device cuda --steps 25 --size 512 --batch-sizes 1 4
    python bench/bench_generate.py --arch sd15 --device cuda --dtype float16   # random full-size SD 1.5

Without ``--sd`` the model is randomly initialised from configs (``--arch tiny`` or ``sd15``), so nothing is
downloaded; pixel values are meaningless but the compute is that of the architecture.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout: skingen and tests.tiny_models

import numpy as np  # noqa: E402
import torch  # noqa: E402

from skingen.devices import resolve_device, resolve_dtype  # noqa: E402
from skingen.generation import ReferenceGenerator  # noqa: E402
from skingen.provenance import ImageCache  # noqa: E402

PROMPT = "clinical photo of psoriasis on the elbow, silvery scale"  # < 77 tokens even for the tiny tokenizer
NEGATIVE = "text, watermark, blurry"


@dataclass(frozen=True)
class Row:
    batch_size: int
    plain_s: float
    ours_s: float
    ours_cached_write_s: float
    wrapper_s: float
    overhead_pct: float
    wrapper_overhead_pct: float
    cache_write_overhead_pct: float
    plain_images_per_s: float
    ours_images_per_s: float
    identical: bool


def random_pipeline(arch: str) -> object:
    """A randomly initialised StableDiffusionPipeline: ``tiny`` (64×64 test model) or ``sd15`` (full size)."""
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from tests.tiny_models import build_sd, clip_tokenizer

    if arch == "tiny":
        with tempfile.TemporaryDirectory() as tmp:
            return StableDiffusionPipeline.from_pretrained(build_sd(Path(tmp) / "sd"))
    torch.manual_seed(0)
    # The architecture of runwayml/stable-diffusion-v1-5 (its unet/vae/text_encoder config.json values).
    unet = UNet2DConditionModel(
        sample_size=64,
        in_channels=4,
        out_channels=4,
        layers_per_block=2,
        block_out_channels=(320, 640, 1280, 1280),
        cross_attention_dim=768,
        attention_head_dim=8,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        layers_per_block=2,
        sample_size=512,
        block_out_channels=(128, 256, 512, 512),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=49408,
            hidden_size=768,
            intermediate_size=3072,
            num_hidden_layers=12,
            num_attention_heads=12,
            max_position_embeddings=77,
            hidden_act="quick_gelu",
            projection_dim=768,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
        )
    )
    scheduler = PNDMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        skip_prk_steps=True,
        steps_offset=1,
        set_alpha_to_one=False,
    )
    return StableDiffusionPipeline(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=clip_tokenizer(),
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        image_encoder=None,
        requires_safety_checker=False,
    )


def plain_call(pipe: object, batch: int, seed: int, steps: int, size: int) -> list[object]:
    """What a user would write with diffusers alone (one CPU generator per image, as ours uses)."""
    with torch.inference_mode():
        return pipe(
            prompt=[PROMPT] * batch,
            negative_prompt=[NEGATIVE] * batch,
            num_inference_steps=steps,
            guidance_scale=7.5,
            width=size,
            height=size,
            generator=[torch.Generator("cpu").manual_seed(seed + i) for i in range(batch)],
        ).images


def timed(call: Callable[[], list[object]]) -> tuple[float, list[object]]:
    start = time.perf_counter()
    result = call()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start, result


def ours_call(generator: ReferenceGenerator, batch: int, steps: int, size: int) -> list[object]:
    results = generator(
        PROMPT, NEGATIVE, seeds=list(range(batch)), steps=steps, width=size, height=size, batch_size=batch
    )
    return [r.image for r in results]


def same_pixels(first: list[object], second: list[object]) -> bool:
    return all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(first, second, strict=True))


def bench(
    pipe: object, model: str, *, batch_sizes: list[int], steps: int, size: int, rounds: int
) -> list[Row]:
    ours = ReferenceGenerator(pipe, model=model)
    rows = []
    for batch in batch_sizes:
        run_ours = partial(ours_call, ours, batch, steps, size)
        run_plain = partial(plain_call, pipe, batch, 0, steps, size)
        run_ours(), run_plain()  # warm-up (kernels, allocator)
        plain_times, ours_times, cached_times, identical = [], [], [], True
        with tempfile.TemporaryDirectory() as cache_dir:
            for index in range(rounds):
                if index % 2:
                    ours_s, our_images = timed(run_ours)
                    plain_s, plain_images = timed(run_plain)
                else:
                    plain_s, plain_images = timed(run_plain)
                    ours_s, our_images = timed(run_ours)
                # Same path plus the cache write; a fresh cache each round, so nothing is a hit.
                writer = ReferenceGenerator(pipe, model=model, cache=ImageCache(Path(cache_dir) / str(index)))
                cached_s, _ = timed(partial(ours_call, writer, batch, steps, size))
                plain_times.append(plain_s)
                ours_times.append(ours_s)
                cached_times.append(cached_s)
                identical &= same_pixels(plain_images, our_images)
        plain_s, ours_s, cached_s = (min(t) for t in (plain_times, ours_times, cached_times))
        # Our path with the diffusers call taken out: what the wrapper itself costs, free of denoising noise.
        stub = ReferenceGenerator(pipe, model=model)
        stub.generate = lambda *args, images=plain_images: images
        wrapper_s = min(timed(partial(ours_call, stub, batch, steps, size))[0] for _ in range(20))
        rows.append(
            Row(
                batch_size=batch,
                plain_s=plain_s,
                ours_s=ours_s,
                ours_cached_write_s=cached_s,
                wrapper_s=wrapper_s,
                overhead_pct=100 * (ours_s / plain_s - 1),
                wrapper_overhead_pct=100 * wrapper_s / plain_s,
                cache_write_overhead_pct=100 * (cached_s / plain_s - 1),
                plain_images_per_s=batch / plain_s,
                ours_images_per_s=batch / ours_s,
                identical=identical,
            )
        )
    return rows


def print_table(rows: list[Row], title: str) -> None:
    print(title)
    print(
        f"{'batch':>5} {'plain s':>9} {'ours s':>9} {'+cache s':>9} {'wrapper s':>10} {'overhead':>9} "
        f"{'wrapper':>8} {'+cache':>8} {'plain img/s':>11} {'ours img/s':>10} identical"
    )
    for r in rows:
        print(
            f"{r.batch_size:>5} {r.plain_s:>9.3f} {r.ours_s:>9.3f} {r.ours_cached_write_s:>9.3f} "
            f"{r.wrapper_s:>10.4f} {r.overhead_pct:>8.1f}% {r.wrapper_overhead_pct:>7.2f}% "
            f"{r.cache_write_overhead_pct:>7.1f}% {r.plain_images_per_s:>11.2f} {r.ours_images_per_s:>10.2f} "
            f"{r.identical}"
        )


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags that choose the model and how it runs, shared by the generation and worker benchmarks."""
    parser.add_argument("--sd", help="local Stable Diffusion model directory (default: random weights)")
    parser.add_argument("--arch", choices=("tiny", "sd15"), default="tiny", help="random model architecture")
    parser.add_argument("--device", help="cpu, cuda, mps (default: best available)")
    parser.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), help="default: fp16 on CUDA")
    parser.add_argument("--steps", type=int, default=10, help="denoising steps")
    parser.add_argument("--size", type=int, default=64, help="image width = height")


def parse_args(argv: list[str] | None = None, **defaults: object) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_arguments(parser)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4], help="images per call")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per batch size (best reported)")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    parser.set_defaults(**defaults)
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> list[Row]:
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.set_verbosity_error()
    transformers_logging.set_verbosity_error()
    device = resolve_device(args.device)
    dtype = resolve_dtype(device, args.dtype)
    if args.sd:
        from diffusers import StableDiffusionPipeline

        pipe = StableDiffusionPipeline.from_pretrained(args.sd, dtype=dtype, safety_checker=None)
    else:
        pipe = random_pipeline(args.arch)
    pipe = pipe.to(device, dtype)
    pipe.set_progress_bar_config(disable=True)
    model = args.sd or f"random-{args.arch}"
    rows = bench(
        pipe, model, batch_sizes=args.batch_sizes, steps=args.steps, size=args.size, rounds=args.rounds
    )
    print_table(
        rows,
        f"{model} on {device} ({str(dtype).removeprefix('torch.')}), {args.size}×{args.size}, "
        f"{args.steps} steps, best of {args.rounds} rounds",
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=2) + "\n")
    return rows


def main(argv: list[str] | None = None) -> int:
    run(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())

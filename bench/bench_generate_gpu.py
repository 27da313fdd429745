"""GPU throughput without downloading weights: random full-size SD 1.5, ours vs plain diffusers.

Builds the SD 1.5 architecture (UNet/VAE/text-encoder configs of runwayml/stable-diffusion-v1-5) with random
weights and reports images/s at 512×512, 25 steps, fp16, batch 1/4/8, for skingen's ReferenceGenerator and
the plain diffusers call on the same pipeline (see bench_generate.py for the method).

    python bench/bench_generate_gpu.py --json bench/results/gpu.json      # CUDA, ~2–4 min on one GPU
    python bench/bench_generate_gpu.py --tiny                             # CPU smoke run of the same code

Any option of bench_generate.py can be added to override the preset (e.g. ``--rounds 5``).
"""

from __future__ import annotations

import sys

from bench_generate import parse_args, run

GPU_PRESET = {
    "arch": "sd15",
    "device": "cuda",
    "dtype": "float16",
    "size": 512,
    "steps": 25,
    "batch_sizes": [1, 4, 8],
    "rounds": 3,
}
TINY_PRESET = {
    "arch": "tiny",
    "device": "cpu",
    "dtype": "float32",
    "size": 64,
    "steps": 4,
    "batch_sizes": [1, 2],
    "rounds": 1,
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    tiny = "--tiny" in argv
    if tiny:
        argv.remove("--tiny")
    run(parse_args(argv, **(TINY_PRESET if tiny else GPU_PRESET)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

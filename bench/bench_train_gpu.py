"""GPU training throughput without downloading weights: ``skingen lora train`` on random full-size SD 1.5 and SDXL.

Builds the SD 1.5 architecture (``bench_generate.random_pipeline("sd15")``) and the SDXL base architecture
(the unet/vae/text-encoder configs of stabilityai/stable-diffusion-xl-base-1.0) with random weights, saves
them in fp16, and times optimizer steps of a UNet LoRA (rank 16, batch 4, 8 prepared images) at SD 1.5's
512² and SDXL's 1024², in fp16 and bf16 mixed precision, with the method of ``bench_train.py`` (warm-up
run, then rounds; steps/s timed per optimizer step after the warm-up steps; CUDA peak memory).

    python bench/bench_train_gpu.py --json bench/results/train-gpu.json              # one GPU, ~5–8 min
    accelerate launch --multi_gpu --num_processes 2 bench/bench_train_gpu.py --arch sd15   # 2 GPUs: one LoRA
    python bench/bench_train_gpu.py --tiny                                            # CPU smoke run

Under ``accelerate launch`` every process trains its share of each step (global batch = processes × 4);
the main process reports. Generation throughput (batched vs unbatched) is ``bench_generate_gpu.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch
from bench_train import PeakMemory, ours, steps_per_second

from skingen.distributed import ProcessShare
from skingen.training.config import TrainingConfig

CASES = {  # arch: (resolution, mixed precisions)
    "sd15": (512, ("fp16", "bf16")),
    "sdxl": (1024, ("fp16", "bf16")),
}


def random_sdxl() -> object:
    """A randomly initialised StableDiffusionXLPipeline with SDXL base 1.0's architecture."""
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from tests.tiny_models import clip_tokenizer

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=128, layers_per_block=2, block_out_channels=(320, 640, 1280),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        transformer_layers_per_block=(1, 2, 10), attention_head_dim=(5, 10, 20), cross_attention_dim=2048,
        use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=256,
        projection_class_embeddings_input_dim=2816,
    )  # fmt: skip
    vae = AutoencoderKL(
        latent_channels=4, layers_per_block=2, sample_size=1024, block_out_channels=(128, 256, 512, 512),
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        scaling_factor=0.13025, force_upcast=True,
    )  # fmt: skip

    def text_config(hidden: int, layers: int, heads: int, act: str) -> CLIPTextConfig:
        return CLIPTextConfig(
            vocab_size=49408, hidden_size=hidden, intermediate_size=4 * hidden, num_hidden_layers=layers,
            num_attention_heads=heads, max_position_embeddings=77, hidden_act=act, projection_dim=hidden,
            bos_token_id=0, eos_token_id=1, pad_token_id=1,
        )  # fmt: skip

    return StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=CLIPTextModel(text_config(768, 12, 12, "quick_gelu")),
        text_encoder_2=CLIPTextModelWithProjection(text_config(1280, 32, 20, "gelu")),
        tokenizer=clip_tokenizer(),
        tokenizer_2=clip_tokenizer(),
        unet=unet,
        scheduler=EulerDiscreteScheduler(
            beta_start=0.00085,
            beta_end=0.012,
            beta_schedule="scaled_linear",
            steps_offset=1,
            timestep_spacing="leading",
        ),
    )


def build(arch: str, folder: Path) -> Path:
    """The random model saved as a diffusers folder (fp16), built once per folder."""
    if (folder / "model_index.json").is_file():
        return folder
    if arch == "tiny":
        from tests.tiny_models import build_sd

        return build_sd(folder)
    from bench_generate import random_pipeline

    pipe = random_pipeline("sd15") if arch == "sd15" else random_sdxl()
    pipe.to(torch.float16).save_pretrained(folder)
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=("sd15", "sdxl"), action="append", help="default: both")
    parser.add_argument("--tiny", action="store_true", help="CPU smoke run on the tiny test model")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--work", type=Path, help="folder for the random models (default: a temp folder)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    from tests.test_lora_training import ROWS, write_data

    share = ProcessShare.current()
    work = share.broadcast(args.work or Path(tempfile.mkdtemp(prefix="bench-train-gpu-")))
    cases = {"tiny": (32, ("no",))} if args.tiny else {arch: CASES[arch] for arch in args.arch or CASES}
    if share.is_main_process:  # the others wait, then read what it wrote
        write_data(work / "DATA", [ROWS[i % len(ROWS)] for i in range(8)])
        for arch in cases:
            build(arch, work / arch)
    share.wait_for_everyone()
    rows = []
    for arch, (resolution, precisions) in cases.items():
        for precision in precisions:
            settings = {
                "data": work / "DATA", "sd": str(work / arch), "batch_size": 4, "rank": 16, "lr": 1e-4,
                "resolution": resolution, "center_crop": True, "mixed_precision": precision,
                "checkpoint_every": 10**6,
            }  # fmt: skip
            ours(TrainingConfig(**settings, out=work / f"warm-{arch}-{precision}", steps=2))
            rounds = []
            for round_ in range(args.rounds):
                with PeakMemory() as memory:
                    times = ours(
                        TrainingConfig(
                            **settings, out=work / f"{arch}-{precision}-{round_}", steps=args.steps
                        )
                    )
                if times:  # only the main process logs steps
                    rounds.append(
                        {"steps_per_s": steps_per_second(times, args.warmup), "peak_mib": memory.mib}
                    )
            if not rounds:
                continue
            best = max(r["steps_per_s"] for r in rounds)
            rows.append({
                "arch": arch, "resolution": resolution, "mixed_precision": precision,
                "processes": share.num_processes, "global_batch": 4 * share.num_processes,
                "steps_per_s": round(best, 3), "images_per_s": round(4 * share.num_processes * best, 2),
                "peak_mib": round(max(r["peak_mib"] for r in rounds), 1), "rounds": rounds,
            })  # fmt: skip
    if not share.is_main_process:
        return 0
    summary = {
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "torch": torch.__version__,
        "rows": rows,
    }
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

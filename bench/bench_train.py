"""Training steps/s and peak memory, side by side: ``skingen lora train`` with images decoded in the training
process, the same with ``--dataloader-workers N``, and a plain diffusers + peft loop.

All train the same UNet LoRA (rank, lr, batch, resolution, seed) on the same prepared images under the same
accelerate setup. The plain loop is diffusers' example reduced to its core (shuffled DataLoader, global RNG,
no checkpoints or logging); ours adds what exact resume, loss.csv and the progress bar need. Each path runs
in its own round, the order rotates between rounds, and the best steps/s per path is reported (other
processes only add time). Steps/s is timed per optimizer step after ``--warmup`` steps, so loading models
(and starting workers) is not counted. Peak memory is CUDA's ``max_memory_allocated`` on a GPU; on CPU the
peak resident set growth of this process during the run, sampled every 5 ms (workers' memory not included).

    python bench/bench_train.py                                  # tiny random model, CPU
    python bench/bench_train.py --image-size 1024 --workers 2    # decoding-bound: large source images
    python bench/bench_train.py --sd PATH --resolution 512 --batch-size 4 --mixed-precision fp16   # GPU
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from skingen.training import loop, runs  # noqa: E402
from skingen.training.config import TrainingConfig  # noqa: E402


class PeakMemory:
    """Peak CUDA allocation, or peak RSS growth on CPU (a sampling thread), during the ``with`` block."""

    def __enter__(self) -> PeakMemory:
        self.peak = 0
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
            return self
        self.base = self.rss()
        self.running = True
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()
        return self

    @staticmethod
    def rss() -> int:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def sample(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.rss() - self.base)
            time.sleep(0.005)

    def __exit__(self, *exc: object) -> None:
        if torch.cuda.is_available():
            self.peak = torch.cuda.max_memory_allocated() - self.base
        else:
            self.running = False
            self.thread.join()

    @property
    def mib(self) -> float:
        return self.peak / 2**20


def steps_per_second(times: list[float], warmup: int) -> float:
    timed = times[warmup:]
    return (len(timed) - 1) / (timed[-1] - timed[0])


def ours(config: TrainingConfig) -> list[float]:
    """``skingen.training.loop.train``; each optimizer step timed where it is logged (LossLog.add)."""
    times: list[float] = []
    add = runs.LossLog.add

    def timed_add(self, step, value, lr):
        times.append(time.perf_counter())
        add(self, step, value, lr)

    loop.LossLog.add = timed_add
    try:
        loop.train(config, progress=False)
    finally:
        loop.LossLog.add = add
    return times


def plain(config: TrainingConfig) -> list[float]:
    """A plain diffusers + peft + accelerate LoRA loop (diffusers' example, core only)."""
    import torch.nn.functional as F
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from diffusers.optimization import get_scheduler
    from peft import LoraConfig
    from PIL import Image
    from transformers import CLIPTextModel, CLIPTokenizer

    from skingen.dataset import load_dataset

    accelerator = Accelerator(
        gradient_accumulation_steps=config.grad_accum, mixed_precision=config.mixed_precision
    )
    set_seed(config.seed)
    tokenizer = CLIPTokenizer.from_pretrained(config.sd, subfolder="tokenizer")
    text_encoder = CLIPTextModel.from_pretrained(config.sd, subfolder="text_encoder")
    vae = AutoencoderKL.from_pretrained(config.sd, subfolder="vae")
    unet = UNet2DConditionModel.from_pretrained(config.sd, subfolder="unet")
    scheduler = DDPMScheduler.from_pretrained(config.sd, subfolder="scheduler")
    dtype = {"no": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[config.mixed_precision]
    for part in (text_encoder, vae, unet):
        part.requires_grad_(False)
        part.to(accelerator.device, dtype=dtype)
    unet.add_adapter(LoraConfig(r=config.rank, lora_alpha=config.lora_alpha, init_lora_weights="gaussian",
                                target_modules=["to_k", "to_q", "to_v", "to_out.0"]))  # fmt: skip
    for p in unet.parameters():
        if p.requires_grad:
            p.data = p.data.float()
    dataset = load_dataset(config.data)
    train = dataset.split("train")
    ids = tokenizer([e.caption or e.condition for e in train], padding="max_length",
                    max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt").input_ids  # fmt: skip

    class Images(torch.utils.data.Dataset):
        def __len__(self):
            return len(train)

        def __getitem__(self, i):
            with Image.open(dataset.path(train[i])) as image:
                image = image.convert("RGB").resize((config.resolution, config.resolution))
            array = np.asarray(image, dtype=np.float32) / 127.5 - 1
            return {"pixel_values": torch.from_numpy(array).permute(2, 0, 1), "input_ids": ids[i]}

    loader = torch.utils.data.DataLoader(Images(), batch_size=config.batch_size, shuffle=True)
    params = [p for p in unet.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr)
    lr_schedule = get_scheduler(config.lr_scheduler, optimizer=optimizer, num_training_steps=config.steps)
    unet, optimizer, loader, lr_schedule = accelerator.prepare(unet, optimizer, loader, lr_schedule)
    times: list[float] = []
    step = 0
    while step < config.steps:
        for batch in loader:
            with accelerator.accumulate(unet):
                latents = vae.encode(batch["pixel_values"].to(dtype)).latent_dist.sample()
                latents = latents * vae.config.scaling_factor
                noise = torch.randn_like(latents)
                t = torch.randint(
                    0, scheduler.config.num_train_timesteps, (latents.shape[0],), device=latents.device
                )
                hidden = text_encoder(batch["input_ids"], return_dict=False)[0]
                pred = unet(scheduler.add_noise(latents, noise, t), t, hidden, return_dict=False)[0]
                loss = F.mse_loss(pred.float(), noise.float())
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(params, config.max_grad_norm)
                optimizer.step()
                lr_schedule.step()
                optimizer.zero_grad()
            if accelerator.sync_gradients:
                step += 1
                loss.item()  # the example logs the loss every step too
                times.append(time.perf_counter())
                if step >= config.steps:
                    break
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sd", help="SD 1.x / SDXL model folder (default: the tiny random test model)")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--mixed-precision", default="no")
    parser.add_argument("--workers", type=int, default=2, help="--dataloader-workers of the second path")
    parser.add_argument("--images", type=int, default=8, help="prepared training images")
    parser.add_argument("--image-size", type=int, default=72, help="side of the source PNGs (decoding cost)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-train-"))
    from tests.skingen_fixtures import photo
    from tests.test_lora_training import ROWS, write_data
    from tests.tiny_models import build_sd

    sd = args.sd or str(build_sd(work / "sd"))
    data = write_data(work / "DATA", [ROWS[i % len(ROWS)] for i in range(args.images)])
    for index in range(args.images):  # write_data's 72 px photos, redrawn at --image-size
        photo(index, args.image_size).save(data / "images" / f"{index}.png")

    def config(name: str, out: Path, steps: int) -> TrainingConfig:
        return TrainingConfig(
            data=data, sd=sd, out=out, steps=steps, batch_size=args.batch_size, resolution=args.resolution,
            lr=1e-4, checkpoint_every=10**6, mixed_precision=args.mixed_precision,
            dataloader_workers=args.workers if name == "ours-workers" else 0,
        )  # fmt: skip

    paths = {"ours": ours, "ours-workers": ours, "plain": plain}
    results: dict[str, list[dict[str, float]]] = {name: [] for name in paths}
    for name, run in paths.items():  # unmeasured: first-use imports and allocations
        run(config(name, work / f"warm-{name}", 2))
    names = list(paths)
    for round_ in range(args.rounds):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            with PeakMemory() as memory:
                times = paths[name](config(name, work / f"{name}-{round_}", args.steps))
            results[name].append(
                {"steps_per_s": steps_per_second(times, args.warmup), "peak_mib": memory.mib}
            )
    best = {name: max(r["steps_per_s"] for r in rounds) for name, rounds in results.items()}
    peak = {name: max(r["peak_mib"] for r in rounds) for name, rounds in results.items()}
    summary = {
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "threads": torch.get_num_threads(), "load_average": os.getloadavg(),
        "steps": args.steps, "batch_size": args.batch_size, "resolution": args.resolution,
        "images": args.images, "image_size": args.image_size, "workers": args.workers,
        **{f"{name}_steps_per_s": round(value, 3) for name, value in best.items()},
        "workers_over_none_speed": round(best["ours-workers"] / best["ours"], 4),
        "ours_over_plain_time": round(best["plain"] / best["ours"], 4),
        **{f"{name}_peak_mib": round(value, 1) for name, value in peak.items()},
        "rounds": results,
    }  # fmt: skip
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()

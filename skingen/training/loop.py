"""``skingen lora train``: the training run as numbered steps over a frozen :class:`TrainingConfig`.

:func:`train` reads as its table of contents (1 check inputs → 2 accelerator → 3 models + adapters → 4 data
→ 5 optimizer and accelerate.prepare → 6 checkpoint hooks, resume → 7 training loop → 8 final weights and
records). The maths of one step is :func:`diffusion_loss`, the same as diffusers' LoRA example (noise
offset, Min-SNR weighting, epsilon or v-prediction). It runs under ``accelerate``: ``accelerate launch -m
skingen.cli lora train ...`` spreads it over GPUs without code changes.

What exact resume takes beyond ``save_state``/``load_state`` (each measured to matter): a checkpointed
generator for every training draw (VAE sample, noise, offset, timesteps), an order from (seed, epoch)
(:mod:`skingen.training.data`), ``skip_first_batches`` for the part of the epoch already seen, and save/load
hooks that write and restore the LoRA weights (and ``weights.pop()`` so the full UNet is not saved too).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from skingen.dataset import PreparedDataset, load_dataset
from skingen.errors import SkinGenError
from skingen.generation import _first_line
from skingen.prompts import PromptBuilder
from skingen.provenance import library_versions
from skingen.sources import file_sha256, resolve_model
from skingen.taxonomy import Taxonomy
from skingen.training import checkpoints, lora
from skingen.training.config import TrainingConfig, differences, read_config, write_config
from skingen.training.data import TrainingImages, data_loader, training_examples
from skingen.training.runs import LossLog, loss_figure, write_run
from skingen.training.validation import validate, validation_prompts


@dataclass
class Models:
    """The parts of a Stable Diffusion model that training touches."""

    tokenizer: object
    text_encoder: torch.nn.Module
    vae: torch.nn.Module
    unet: torch.nn.Module
    noise_scheduler: object
    weight_dtype: torch.dtype = torch.float32


@dataclass(frozen=True)
class Inputs:
    """Everything checked before a model is loaded."""

    dataset: PreparedDataset
    data_hash: str
    model: str
    prompts: PromptBuilder
    validation_conditions: tuple[str, ...]
    checkpoint: Path | None


@dataclass(frozen=True)
class TrainingResult:
    run: Path
    lora: Path
    lora_sha256: str
    steps: int
    losses: tuple[float, ...]  # this session's, one per optimizer step


class NoiseGenerator:
    """The generator for every random draw of a training step, saved in each checkpoint by accelerate."""

    def __init__(self, seed: int, device: torch.device) -> None:
        self.generator = torch.Generator(device).manual_seed(seed)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"state": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.generator.set_state(state["state"])


def train(config: TrainingConfig, *, resume: str | None = None, progress: bool = True) -> TrainingResult:
    started = time.perf_counter()
    # 1. Check inputs: data, model, output folder, the checkpoint to resume from
    inputs = check_inputs(config, resume)
    # 2. The accelerator (devices, processes, mixed precision, gradient accumulation) and the seed
    accelerator = make_accelerator(config)
    # 3. Models, frozen, with LoRA adapters
    models = load_models(config, inputs.model, accelerator.device)
    # 4. Data in an exactly resumable order
    images = TrainingImages(
        inputs.dataset, training_examples(inputs.dataset, inputs.prompts, config), models.tokenizer, config
    )
    loader = data_loader(images, config)
    # 5. Optimizer and LR schedule; let accelerate wrap them
    trained = [models.unet, models.text_encoder] if config.train_text_encoder else [models.unet]
    optimizer, lr_schedule = make_optimizer(config, trained, accelerator.num_processes)
    *trained, optimizer, loader, lr_schedule = accelerator.prepare(*trained, optimizer, loader, lr_schedule)
    params = lora.trainable_parameters(*trained)
    # 6. Checkpoints hold the LoRA weights and the noise generator; resume restores everything
    register_checkpoint_hooks(accelerator, models, config)
    noise = NoiseGenerator(config.seed + 1000 * accelerator.process_index, accelerator.device)
    accelerator.register_for_checkpointing(noise)
    step = 0
    if inputs.checkpoint is not None:
        accelerator.load_state(str(inputs.checkpoint))
        step = checkpoints.checkpoint_step(inputs.checkpoint)
    if accelerator.is_main_process:
        write_config(config, inputs.data_hash)
    # 7. Train
    losses = run_loop(
        config, accelerator, models, trained, params, optimizer, lr_schedule, loader, images, noise, step, inputs,
        progress=progress,
    )  # fmt: skip
    # 8. Final weights, loss figure, run.json (written last: its presence marks a finished run)
    accelerator.wait_for_everyone()
    weights = config.out / lora.WEIGHTS_NAME
    sha256 = ""
    if accelerator.is_main_process:
        unwrapped = [accelerator.unwrap_model(m) for m in trained]
        weights = lora.save_lora(config.out, *unwrapped)
        sha256 = file_sha256(weights)
        loss_figure(config.out)
        write_run(config.out, run_record(config, inputs, accelerator, sha256, started, losses))
    accelerator.end_training()
    return TrainingResult(config.out, weights, sha256, config.steps, tuple(losses))


def check_inputs(config: TrainingConfig, resume: str | None) -> Inputs:
    dataset = load_dataset(config.data)
    data_hash = dataset.content_hash
    model = resolve_model(config.sd, "--sd Stable Diffusion model")
    taxonomy = Taxonomy.load(config.taxonomy)
    prompts = PromptBuilder.load(taxonomy, config.templates)
    wanted = (
        config.validation_prompts or tuple(dict.fromkeys(e.condition for e in dataset.split("train")))[:3]
    )
    conditions = tuple(taxonomy.resolve(value, "--validation-prompts") for value in wanted)
    checkpoint = None
    if resume is None:
        if config.out.exists() and (not config.out.is_dir() or any(config.out.iterdir())):
            raise SkinGenError(
                f"--out {config.out} already exists and is not empty; pass --resume latest to continue that run, "
                "or choose another --out"
            )
    else:
        checkpoint = checkpoints.resolve_resume(config.out, resume)
        lora.check_rank(checkpoint / lora.WEIGHTS_NAME, config.rank, "--resume")
        saved = read_config(checkpoint.parent)
        changed = differences(saved.get("config", {}), config)
        if changed:
            raise SkinGenError(
                f"--resume {checkpoint}: that run was trained with other settings ({'; '.join(changed)}); "
                "resume with the same flags or start a new --out"
            )
        if saved.get("data_sha256") != data_hash:
            raise SkinGenError(
                f"--resume {checkpoint}: --data {config.data} is not the data that run was trained on "
                "(content hash differs)"
            )
    return Inputs(dataset, data_hash, model, prompts, conditions, checkpoint)


def make_accelerator(config: TrainingConfig):
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    try:
        accelerator = Accelerator(
            gradient_accumulation_steps=config.grad_accum, mixed_precision=config.mixed_precision
        )
    except ValueError as exc:
        raise SkinGenError(f"--mixed-precision {config.mixed_precision}: {_first_line(exc)}") from exc
    set_seed(config.seed)
    return accelerator


def load_models(config: TrainingConfig, model: str, device: torch.device) -> Models:
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from diffusers.training_utils import cast_training_params
    from transformers import CLIPTextModel, CLIPTokenizer

    try:
        tokenizer = CLIPTokenizer.from_pretrained(model, subfolder="tokenizer")
        text_encoder = CLIPTextModel.from_pretrained(model, subfolder="text_encoder")
        vae = AutoencoderKL.from_pretrained(model, subfolder="vae")
        unet = UNet2DConditionModel.from_pretrained(model, subfolder="unet")
        noise_scheduler = DDPMScheduler.from_pretrained(model, subfolder="scheduler")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SkinGenError(f"--sd {config.sd}: cannot load ({_first_line(exc)})") from exc
    weight_dtype = {"no": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[
        config.mixed_precision
    ]
    for part in (text_encoder, vae, unet):
        part.requires_grad_(False)
        part.to(device, dtype=weight_dtype)
    lora.add_adapters(
        unet,
        text_encoder,
        rank=config.rank,
        alpha=config.lora_alpha,
        train_text_encoder=config.train_text_encoder,
    )
    trained = [unet, text_encoder] if config.train_text_encoder else [unet]
    if weight_dtype != torch.float32:
        cast_training_params(
            trained, dtype=torch.float32
        )  # LoRA weights stay fp32 (else "unscale FP16 gradients")
    if config.gradient_checkpointing:
        unet.enable_gradient_checkpointing()
        if config.train_text_encoder:
            text_encoder.gradient_checkpointing_enable()
    return Models(tokenizer, text_encoder, vae, unet, noise_scheduler, weight_dtype)


def make_optimizer(config: TrainingConfig, trained: list[torch.nn.Module], num_processes: int):
    from diffusers.optimization import get_scheduler

    optimizer = torch.optim.AdamW(lora.trainable_parameters(*trained), lr=config.lr)
    # accelerate steps a prepared scheduler once per process per optimizer step (as diffusers' example assumes).
    schedule = get_scheduler(
        config.lr_scheduler,
        optimizer=optimizer,
        num_warmup_steps=config.lr_warmup_steps * num_processes,
        num_training_steps=config.steps * num_processes,
    )
    return optimizer, schedule


def register_checkpoint_hooks(accelerator, models: Models, config: TrainingConfig) -> None:
    """``save_state`` writes the LoRA weights (not the frozen models); ``load_state`` puts them back."""
    unet_type = type(accelerator.unwrap_model(models.unet))
    text_encoder_type = type(accelerator.unwrap_model(models.text_encoder))

    def save(saved_models, weights, output_dir) -> None:
        if not accelerator.is_main_process:
            return
        found = {unet_type: None, text_encoder_type: None}
        for model in saved_models:
            found[type(model)] = model
            weights.pop()  # otherwise accelerate saves the whole model as well
        lora.save_lora(Path(output_dir), found[unet_type], found[text_encoder_type])

    def load(loaded_models, input_dir) -> None:
        found = {unet_type: None, text_encoder_type: None}
        while loaded_models:
            model = loaded_models.pop()
            found[type(model)] = model
        lora.load_lora_into(Path(input_dir), found[unet_type], found[text_encoder_type])
        if models.weight_dtype != torch.float32:
            from diffusers.training_utils import cast_training_params

            cast_training_params([m for m in found.values() if m is not None], dtype=torch.float32)

    accelerator.register_save_state_pre_hook(save)
    accelerator.register_load_state_pre_hook(load)


def diffusion_loss(
    models: Models,
    batch: dict[str, torch.Tensor],
    generator: torch.Generator,
    *,
    snr_gamma: float | None = None,
    noise_offset: float = 0.0,
) -> torch.Tensor:
    """The denoising objective of one batch, every random draw from ``generator`` (as diffusers' example)."""
    from diffusers.training_utils import compute_snr

    scheduler = models.noise_scheduler
    pixels = batch["pixel_values"].to(models.vae.device, dtype=models.weight_dtype)
    latents = models.vae.encode(pixels).latent_dist.sample(generator=generator)
    latents = latents * models.vae.config.scaling_factor
    noise = torch.randn(latents.shape, generator=generator, device=latents.device, dtype=latents.dtype)
    if noise_offset:
        shape = (latents.shape[0], latents.shape[1], 1, 1)
        noise = noise + noise_offset * torch.randn(
            shape, generator=generator, device=latents.device, dtype=latents.dtype
        )
    timesteps = torch.randint(
        0,
        scheduler.config.num_train_timesteps,
        (latents.shape[0],),
        generator=generator,
        device=latents.device,
    ).long()
    noisy = scheduler.add_noise(latents, noise, timesteps)
    hidden = models.text_encoder(batch["input_ids"].to(latents.device), return_dict=False)[0]
    if scheduler.config.prediction_type == "epsilon":
        target = noise
    elif scheduler.config.prediction_type == "v_prediction":
        target = scheduler.get_velocity(latents, noise, timesteps)
    else:
        raise SkinGenError(f"scheduler prediction_type {scheduler.config.prediction_type!r} is not supported")
    prediction = models.unet(noisy, timesteps, hidden, return_dict=False)[0]
    if snr_gamma is None:
        return F.mse_loss(prediction.float(), target.float())
    # Min-SNR weighting (arXiv 2303.09556), as in the example.
    snr = compute_snr(scheduler, timesteps)
    weights = torch.stack([snr, snr_gamma * torch.ones_like(timesteps)], dim=1).min(dim=1)[0]
    weights = weights / snr if scheduler.config.prediction_type == "epsilon" else weights / (snr + 1)
    per_image = F.mse_loss(prediction.float(), target.float(), reduction="none").mean(dim=[1, 2, 3])
    return (per_image * weights).mean()


def run_loop(
    config, accelerator, models, trained, params, optimizer, lr_schedule, loader, images, noise, step, inputs, *,
    progress: bool,
) -> list[float]:  # fmt: skip
    """Optimizer steps ``step+1 … config.steps``; checkpoints, validation and loss.csv on the way."""
    steps_per_epoch = math.ceil(len(loader) / config.grad_accum)
    first_epoch = step // steps_per_epoch
    skip = (step % steps_per_epoch) * config.grad_accum  # micro-batches of this epoch already trained on
    log = LossLog(config.out, step) if accelerator.is_main_process else None
    validation = Validation(config, inputs, models, accelerator)
    bar = tqdm(
        total=config.steps, initial=step, desc="training", unit="step",
        disable=not (progress and accelerator.is_local_main_process),
    )  # fmt: skip
    losses: list[float] = []
    window: list[torch.Tensor] = []
    epoch = first_epoch
    while step < config.steps:
        loader.set_epoch(epoch)
        images.set_epoch(epoch)
        batches = accelerator.skip_first_batches(loader, skip) if epoch == first_epoch and skip else loader
        for model in trained:
            model.train()
        for batch in batches:
            with accelerator.accumulate(*trained):
                loss = diffusion_loss(
                    models,
                    batch,
                    noise.generator,
                    snr_gamma=config.snr_gamma,
                    noise_offset=config.noise_offset,
                )
                window.append(accelerator.gather(loss.detach()).mean())
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(params, config.max_grad_norm)
                optimizer.step()
                lr_schedule.step()
                optimizer.zero_grad()
            if not accelerator.sync_gradients:
                continue
            step += 1
            value = torch.stack(window).mean().item()
            window.clear()
            losses.append(value)
            lr = lr_schedule.get_last_lr()[0]
            if log is not None:
                log.add(step, value, lr)
            bar.update(1)
            bar.set_postfix(loss=f"{value:.4f}", lr=f"{lr:.2e}")
            if step % config.checkpoint_every == 0 or step == config.steps:
                save_checkpoint(accelerator, config, step)
            if validation.due(step):
                validation(step)
                for model in trained:
                    model.train()
            if step >= config.steps:
                break
        epoch += 1
        skip = 0
    bar.close()
    if log is not None:
        log.close()
    return losses


def save_checkpoint(accelerator, config: TrainingConfig, step: int) -> None:
    if accelerator.is_main_process:
        checkpoints.make_room(config.out, config.checkpoints_total_limit)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(checkpoints.checkpoint_dir(config.out, step)))


class Validation:
    """Contact sheets every ``--validate-every`` steps and at the end, on the main process only."""

    def __init__(self, config: TrainingConfig, inputs: Inputs, models: Models, accelerator) -> None:
        self.config, self.models, self.accelerator = config, models, accelerator
        self.prompts = validation_prompts(inputs.prompts, list(inputs.validation_conditions), config)
        self.model = inputs.model
        self._pipe = None

    def due(self, step: int) -> bool:
        every = self.config.validate_every
        return bool(every) and (step % every == 0 or step == self.config.steps)

    def __call__(self, step: int) -> Path | None:
        if not self.accelerator.is_main_process:
            return None
        with self.accelerator.autocast():
            return validate(self.pipe(), self.prompts, self.config, step)

    def pipe(self):
        if self._pipe is None:
            from diffusers import StableDiffusionPipeline

            unwrap = self.accelerator.unwrap_model
            self._pipe = StableDiffusionPipeline.from_pretrained(
                self.model,
                unet=unwrap(self.models.unet),
                text_encoder=unwrap(self.models.text_encoder),
                vae=self.models.vae,
                tokenizer=self.models.tokenizer,
                safety_checker=None,
                requires_safety_checker=False,
                dtype=self.models.weight_dtype,
            )
            self._pipe.set_progress_bar_config(disable=True)
        return self._pipe


def run_record(config, inputs: Inputs, accelerator, sha256: str, started: float, losses: list[float]) -> dict:
    versions = library_versions()
    versions["accelerate"] = metadata.version("accelerate")
    return {
        "format": "skingen-lora-run",
        "lora": lora.WEIGHTS_NAME,
        "lora_sha256": sha256,
        "config": config.to_dict(),
        "data": str(inputs.dataset.root),
        "data_sha256": inputs.data_hash,
        "model": inputs.model,
        "steps": config.steps,
        "resumed_from": str(inputs.checkpoint) if inputs.checkpoint else None,
        "final_loss": losses[-1] if losses else None,
        "wall_time_s": round(time.perf_counter() - started, 3),
        "processes": accelerator.num_processes,
        "device": accelerator.device.type,
        "versions": versions,
    }

"""``skingen lora train``: the training run as numbered steps over a frozen :class:`TrainingConfig`.

:func:`train` reads as its table of contents (1 check inputs → 2 accelerator → 3 models + adapters → 4 data
→ 5 optimizer and accelerate.prepare → 6 checkpoint hooks, EMA, resume → 7 training loop → 8 final weights
and records). The maths of one step is :func:`diffusion_loss`, the same as diffusers' LoRA examples (noise
offset, Min-SNR weighting, epsilon or v-prediction; SDXL's pooled text embedding and added time ids).

Several processes (``accelerate launch -m skingen lora train ...``) train one LoRA: the loss calls the
modules ``accelerator.prepare`` returned (the DDP wrappers, whose backward averages gradients; calling the
unwrapped modules trains one LoRA per process), each process takes its slice of every optimizer step
(:class:`~skingen.training.data.StepSampler`), and only the main process writes files.

What exact resume takes beyond ``save_state``/``load_state`` (each measured to matter): every training draw
(VAE sample, noise, offset, timestep) from a seed that is a function of (seed, epoch, image), an order from
(seed, epoch) (:mod:`skingen.training.data`), starting the epoch at the step the checkpoint was written,
and save/load hooks that write and restore the LoRA weights (and keep accelerate from saving the full UNet).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from formats.taxonomy import Taxonomy
from skingen.architecture import Architecture, architecture_of
from skingen.dataset import PreparedDataset, load_dataset
from skingen.distributed import launched_on_cpu, launched_processes
from skingen.errors import SkinGenError
from skingen.generation import _first_line
from skingen.prompts import PromptBuilder
from skingen.provenance import library_versions
from skingen.sources import file_sha256, resolve_model
from skingen.training import checkpoints, lora
from skingen.training.config import TrainingConfig, differences, read_config, write_config
from skingen.training.data import StepSampler, TrainingImages, data_loader, training_examples
from skingen.training.runs import LossLog, loss_figure, write_run
from skingen.training.validation import validate, validation_prompts


@dataclass(frozen=True)
class Models:
    """The parts of a Stable Diffusion (XL) model that training touches; SDXL has two tokenizers and encoders.

    Before ``accelerate.prepare`` the modules are the plain ones; the loss gets a copy whose trained modules
    are the prepared wrappers (:func:`dataclasses.replace`)."""

    tokenizers: tuple
    text_encoders: tuple[torch.nn.Module, ...]
    vae: torch.nn.Module
    unet: torch.nn.Module
    noise_scheduler: object
    weight_dtype: torch.dtype = torch.float32
    xl: bool = False

    def trained(self, train_text_encoder: bool) -> list[torch.nn.Module]:
        return [self.unet, *self.text_encoders] if train_text_encoder else [self.unet]


@dataclass(frozen=True)
class Inputs:
    """Everything checked before a model is loaded."""

    dataset: PreparedDataset
    data_hash: str
    model: str
    architecture: Architecture
    prompts: PromptBuilder
    validation_conditions: tuple[str, ...]
    checkpoint: Path | None


@dataclass(frozen=True)
class TrainingResult:
    run: Path
    lora: Path  # the diffusers-format file, or the kohya file with --format kohya
    lora_sha256: str
    steps: int
    losses: tuple[float, ...]  # this session's, one per optimizer step
    files: tuple[Path, ...] = ()  # every weights file written (--format both: two)


def train(config: TrainingConfig, *, resume: str | None = None, progress: bool = True) -> TrainingResult:
    started = time.perf_counter()
    # 1. Check inputs: data, model, output folder, the checkpoint to resume from
    inputs = check_inputs(config, resume)
    # 2. The accelerator (devices, processes, mixed precision) and the seed
    accelerator = make_accelerator(config, inputs.architecture)
    # 3. Models, frozen, with LoRA adapters
    models = load_models(config, inputs.model, inputs.architecture, accelerator.device)
    # 4. Data: this process's share of every optimizer step, in an exactly resumable order
    images = TrainingImages(
        inputs.dataset,
        training_examples(inputs.dataset, inputs.prompts, config),
        list(models.tokenizers),
        config,
    )
    if config.cache_latents:
        images.cache_latents(lambda pixels: encode_pixels(models, pixels))
    sampler = StepSampler(
        len(images), config.seed, batch_size=config.batch_size, grad_accum=config.grad_accum,
        process_index=accelerator.process_index, num_processes=accelerator.num_processes,
    )  # fmt: skip
    loader = data_loader(images, sampler, config)
    # 5. Optimizer and LR schedule; accelerate wraps them and the trained modules (DDP with several processes)
    trained = models.trained(config.train_text_encoder)
    optimizer, lr_schedule = make_optimizer(config, trained, accelerator.num_processes)
    *wrapped, optimizer, lr_schedule = accelerator.prepare(*trained, optimizer, lr_schedule)
    training = replace(
        models,
        unet=wrapped[0],
        text_encoders=tuple(wrapped[1:]) if config.train_text_encoder else models.text_encoders,
    )
    params = lora.trainable_parameters(*trained)
    # 6. Checkpoints hold the LoRA weights (and the EMA); resume restores everything
    register_checkpoint_hooks(accelerator, models, inputs.architecture, config)
    ema = make_ema(config, params)
    if ema is not None:
        accelerator.register_for_checkpointing(ema)
    step = 0
    if inputs.checkpoint is not None:
        accelerator.load_state(str(inputs.checkpoint))
        step = checkpoints.checkpoint_step(inputs.checkpoint)
    accelerator.wait_for_everyone()  # every process has checked that --out was empty before it is written to
    if accelerator.is_main_process:
        write_config(config, inputs.data_hash)
    # 7. Train
    losses = run_loop(
        config, accelerator, training, wrapped, params, optimizer, lr_schedule, loader, sampler, ema, step,
        inputs, progress=progress,
    )  # fmt: skip
    # 8. Final weights (the EMA's, if kept), loss figure, run.json (written last: it marks a finished run)
    accelerator.wait_for_everyone()
    if ema is not None:
        ema.copy_to(params)
    files: list[Path] = []
    if accelerator.is_main_process:
        files = save_weights(config, inputs.architecture, models)
        loss_figure(config.out)
        write_run(config.out, run_record(config, inputs, accelerator, files, started, losses))
    accelerator.end_training()
    primary = files[0] if files else config.out / lora.WEIGHTS_NAME
    sha256 = file_sha256(primary) if files else ""
    return TrainingResult(config.out, primary, sha256, config.steps, tuple(losses), tuple(files))


def save_weights(config: TrainingConfig, architecture: Architecture, models: Models) -> list[Path]:
    """The final weights in ``--format``: the diffusers file, the kohya file, or both (diffusers first)."""
    text_encoders = models.text_encoders if config.train_text_encoder else ()
    files = []
    if config.format in ("diffusers", "both"):
        files.append(lora.save_lora(config.out, architecture, models.unet, text_encoders))
    if config.format in ("kohya", "both"):
        files.append(lora.save_kohya(config.out, architecture, models.unet, text_encoders))
    return files


def check_inputs(config: TrainingConfig, resume: str | None) -> Inputs:
    dataset = load_dataset(config.data)
    data_hash = dataset.content_hash
    model = resolve_model(config.sd, "--sd Stable Diffusion model")
    architecture = architecture_of(model, "--sd")
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
    return Inputs(dataset, data_hash, model, architecture, prompts, conditions, checkpoint)


def make_accelerator(config: TrainingConfig, architecture: Architecture):
    """Gradient accumulation is ours (:func:`run_loop`), so accelerate is not told about it: its
    ``accumulate`` would divide every micro-batch's loss by ``--grad-accum``, weighting an epoch's short
    last step wrongly, and needs a dataloader it prepared."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs, set_seed

    # SDXL's first text encoder feeds its penultimate layer only: its last layer's LoRA gets no gradient.
    unused = architecture.xl and config.train_text_encoder
    try:
        accelerator = Accelerator(
            cpu=launched_processes() > 1 and launched_on_cpu(),
            mixed_precision=config.mixed_precision,
            kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=unused)],
        )
    except ValueError as exc:
        raise SkinGenError(f"--mixed-precision {config.mixed_precision}: {_first_line(exc)}") from exc
    set_seed(config.seed)
    return accelerator


def load_models(
    config: TrainingConfig, model: str, architecture: Architecture, device: torch.device
) -> Models:
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from diffusers.training_utils import cast_training_params
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    weight_dtype = {"no": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[
        config.mixed_precision
    ]
    # SDXL's VAE overflows in fp16 (diffusers' SDXL example keeps it in fp32).
    vae_dtype = torch.float32 if architecture.xl and weight_dtype == torch.float16 else weight_dtype
    # SDXL: text_encoder (CLIP ViT-L) and text_encoder_2 (OpenCLIP bigG, with the projection for the pooled
    # embedding), as StableDiffusionXLPipeline loads them. Loaded in their dtype (a later .to(dtype) makes
    # diffusers warn that float32-only modules may be cast).
    encoder_classes = (CLIPTextModel, CLIPTextModelWithProjection)[: architecture.text_encoders]
    folders = ("text_encoder", "text_encoder_2")
    try:
        tokenizers = tuple(
            CLIPTokenizer.from_pretrained(model, subfolder=folder.replace("text_encoder", "tokenizer"))
            for folder in folders[: architecture.text_encoders]
        )
        text_encoders = tuple(
            cls.from_pretrained(model, subfolder=folder, dtype=weight_dtype)
            for cls, folder in zip(encoder_classes, folders, strict=False)
        )
        vae = AutoencoderKL.from_pretrained(model, subfolder="vae", dtype=vae_dtype)
        unet = UNet2DConditionModel.from_pretrained(model, subfolder="unet", dtype=weight_dtype)
        noise_scheduler = DDPMScheduler.from_pretrained(model, subfolder="scheduler")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SkinGenError(f"--sd {config.sd}: cannot load ({_first_line(exc)})") from exc
    for part in (*text_encoders, vae, unet):
        part.requires_grad_(False)
        part.to(device)
    lora.add_adapters(
        unet,
        text_encoders,
        rank=config.rank,
        alpha=config.lora_alpha,
        dora=config.dora,
        train_text_encoder=config.train_text_encoder,
    )
    models = Models(tokenizers, text_encoders, vae, unet, noise_scheduler, weight_dtype, architecture.xl)
    trained = models.trained(config.train_text_encoder)
    if weight_dtype != torch.float32:
        cast_training_params(
            trained, dtype=torch.float32
        )  # LoRA weights stay fp32 (else "unscale FP16 gradients")
    if config.gradient_checkpointing:
        unet.enable_gradient_checkpointing()
        if config.train_text_encoder:
            for text_encoder in text_encoders:
                text_encoder.gradient_checkpointing_enable()
    return models


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


def make_ema(config: TrainingConfig, params: list[torch.nn.Parameter]):
    """diffusers' ``EMAModel`` over the LoRA parameters (decay ``min(--ema-decay, (1 + n) / (10 + n))`` at
    optimizer step n + 1), or None without ``--ema-decay``."""
    if config.ema_decay is None:
        return None
    from diffusers.training_utils import EMAModel

    return EMAModel(params, decay=config.ema_decay)


def register_checkpoint_hooks(
    accelerator, models: Models, architecture: Architecture, config: TrainingConfig
) -> None:
    """``save_state`` writes the LoRA weights (not the frozen models); ``load_state`` puts them back.

    The hooks work on ``models`` (the unwrapped modules) and empty accelerate's lists, so that accelerate
    neither saves the full models nor loads a file that is not there."""
    text_encoders = models.text_encoders if config.train_text_encoder else ()

    def save(saved_models, weights, output_dir) -> None:
        weights.clear()  # otherwise accelerate saves the whole models as well
        if accelerator.is_main_process:
            lora.save_lora(Path(output_dir), architecture, models.unet, text_encoders)

    def load(loaded_models, input_dir) -> None:
        loaded_models.clear()
        lora.load_lora_into(Path(input_dir), architecture, models.unet, text_encoders)
        if models.weight_dtype != torch.float32:
            from diffusers.training_utils import cast_training_params

            cast_training_params(models.trained(config.train_text_encoder), dtype=torch.float32)

    accelerator.register_save_state_pre_hook(save)
    accelerator.register_load_state_pre_hook(load)


def encode_pixels(models: Models, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The VAE's latent distribution of ``pixels``: (mean, std), unscaled."""
    with torch.no_grad():
        vae = models.vae
        distribution = vae.encode(pixels.to(vae.device, dtype=vae.dtype)).latent_dist
    return distribution.mean, distribution.std


def example_draws(
    seeds: Sequence[int], shape: tuple[int, ...], timesteps: int, noise_offset: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per image, from its own seed: the VAE sample's ε, the noise (plus offset noise) and the timestep.

    On the CPU, so that a seed gives the same draws on any device and under any split into processes."""
    samples, noises, steps = [], [], []
    for seed in seeds:
        generator = torch.Generator().manual_seed(seed)
        samples.append(torch.randn(shape, generator=generator))
        noise = torch.randn(shape, generator=generator)
        if noise_offset:
            noise = noise + noise_offset * torch.randn((shape[0], 1, 1), generator=generator)
        noises.append(noise)
        steps.append(torch.randint(0, timesteps, (1,), generator=generator))
    return torch.stack(samples), torch.stack(noises), torch.cat(steps)


def encode_text(
    models: Models, input_ids: Sequence[torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The UNet's text conditioning: SD's last hidden state; SDXL's two encoders' penultimate hidden states
    side by side and the second encoder's pooled projection (as ``StableDiffusionXLPipeline.encode_prompt``)."""
    device = models.vae.device
    if not models.xl:
        return models.text_encoders[0](input_ids[0].to(device), return_dict=False)[0], None
    hidden, pooled = [], None
    for encoder, ids in zip(models.text_encoders, input_ids, strict=True):
        output = encoder(ids.to(device), output_hidden_states=True)
        pooled = output[0]  # the last encoder's: text_embeds of CLIPTextModelWithProjection
        hidden.append(output.hidden_states[-2])
    return torch.cat(hidden, dim=-1), pooled


def diffusion_loss(
    models: Models,
    batch: dict[str, object],
    *,
    snr_gamma: float | None = None,
    noise_offset: float = 0.0,
) -> torch.Tensor:
    """The denoising objective of one micro-batch: Σ weight × per-image loss (see ``StepSampler``), every
    random draw from the image's own seed. The maths of diffusers' LoRA examples."""
    from diffusers.training_utils import compute_snr

    scheduler = models.noise_scheduler
    device = models.vae.device  # never wrapped (a DDP wrapper has no .device)
    # 1. Latents: a sample of the VAE's distribution (cached or encoded now)
    if "pixel_values" in batch:
        mean, std = encode_pixels(models, batch["pixel_values"])
    else:
        mean, std = batch["latent_mean"].to(device), batch["latent_std"].to(device)
    sample, noise, timesteps = example_draws(
        batch["noise_seed"], tuple(mean.shape[1:]), scheduler.config.num_train_timesteps, noise_offset
    )
    latents = (mean + std * sample.to(device, mean.dtype)) * models.vae.config.scaling_factor
    latents = latents.to(models.weight_dtype)
    noise = noise.to(device, latents.dtype)
    timesteps = timesteps.to(device)
    # 2. Noise them; the target by the scheduler's parameterisation
    noisy = scheduler.add_noise(latents, noise, timesteps)
    if scheduler.config.prediction_type == "epsilon":
        target = noise
    elif scheduler.config.prediction_type == "v_prediction":
        target = scheduler.get_velocity(latents, noise, timesteps)
    else:
        raise SkinGenError(f"scheduler prediction_type {scheduler.config.prediction_type!r} is not supported")
    # 3. Predict from the text (and SDXL's pooled text and time ids)
    hidden, pooled = encode_text(models, batch["input_ids"])
    added = (
        {"text_embeds": pooled, "time_ids": batch["time_ids"].to(device, hidden.dtype)} if models.xl else None
    )
    prediction = models.unet(noisy, timesteps, hidden, added_cond_kwargs=added, return_dict=False)[0]
    # 4. Per-image loss, Min-SNR weighted (arXiv 2303.09556) if asked, as in the examples
    per_image = F.mse_loss(prediction.float(), target.float(), reduction="none").mean(dim=[1, 2, 3])
    if snr_gamma is not None:
        snr = compute_snr(scheduler, timesteps)
        weights = torch.stack([snr, snr_gamma * torch.ones_like(timesteps)], dim=1).min(dim=1)[0]
        weights = weights / snr if scheduler.config.prediction_type == "epsilon" else weights / (snr + 1)
        per_image = per_image * weights
    return (per_image * batch["weight"].to(device)).sum()


def run_loop(
    config, accelerator, models, wrapped, params, optimizer, lr_schedule, loader, sampler, ema, step, inputs, *,
    progress: bool,
) -> list[float]:  # fmt: skip
    """Optimizer steps ``step+1 … config.steps``; checkpoints, validation and loss.csv on the way.

    ``models`` holds the prepared (wrapped) trained modules. Each optimizer step is the sampler's group of
    micro-batches; gradients are averaged across processes on the last one only (``no_sync`` before)."""
    epoch, first_step = divmod(step, sampler.steps_per_epoch)
    log = LossLog(config.out, step) if accelerator.is_main_process else None
    validation = Validation(config, inputs, models, accelerator, ema, params)
    bar = tqdm(
        total=config.steps, initial=step, desc="training", unit="step",
        disable=not (progress and accelerator.is_local_main_process),
    )  # fmt: skip
    losses: list[float] = []
    while step < config.steps:
        sampler.set_epoch(epoch, first_step)
        micro_batches = iter(loader)
        for model in wrapped:
            model.train()
        for plan in sampler.steps():
            total = torch.zeros((), device=accelerator.device)
            for position in range(len(plan)):
                batch = next(micro_batches)
                with contextlib.ExitStack() as stack:
                    if position < len(plan) - 1:
                        for model in wrapped:
                            stack.enter_context(accelerator.no_sync(model))
                    loss = diffusion_loss(
                        models, batch, snr_gamma=config.snr_gamma, noise_offset=config.noise_offset
                    )
                    accelerator.backward(loss)
                total += loss.detach()
            accelerator.clip_grad_norm_(params, config.max_grad_norm)
            optimizer.step()
            lr_schedule.step()
            optimizer.zero_grad()
            if ema is not None:
                ema.step(params)
            step += 1
            value = accelerator.reduce(total, reduction="sum").item() / accelerator.num_processes
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
                for model in wrapped:
                    model.train()
            if step >= config.steps:
                break
        epoch += 1
        first_step = 0
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
    """Contact sheets every ``--validate-every`` steps and at the end, on the main process only; with
    ``--ema-decay`` drawn with the EMA weights (what the run will save), as diffusers' examples do."""

    def __init__(
        self, config: TrainingConfig, inputs: Inputs, models: Models, accelerator, ema, params
    ) -> None:
        self.config, self.models, self.accelerator = config, models, accelerator
        self.ema, self.params = ema, params
        self.prompts = validation_prompts(inputs.prompts, list(inputs.validation_conditions), config)
        self.model = inputs.model
        self.architecture = inputs.architecture
        self._pipe = None

    def due(self, step: int) -> bool:
        every = self.config.validate_every
        return bool(every) and (step % every == 0 or step == self.config.steps)

    def __call__(self, step: int) -> Path | None:
        if not self.accelerator.is_main_process:
            return None
        with contextlib.ExitStack() as stack:
            if self.ema is not None:
                self.ema.store(self.params)
                self.ema.copy_to(self.params)
                stack.callback(self.ema.restore, self.params)
            stack.enter_context(self.accelerator.autocast())
            return validate(self.pipe(), self.prompts, self.config, step)

    def pipe(self):
        if self._pipe is None:
            import diffusers

            unwrap = self.accelerator.unwrap_model
            names = ("text_encoder", "text_encoder_2")
            parts = {
                "unet": unwrap(self.models.unet),
                "vae": self.models.vae,
                **{name: unwrap(te) for name, te in zip(names, self.models.text_encoders, strict=False)},
                **dict(zip(("tokenizer", "tokenizer_2"), self.models.tokenizers, strict=False)),
            }
            extra = {} if self.architecture.xl else {"safety_checker": None, "requires_safety_checker": False}
            pipeline_class = getattr(diffusers, self.architecture.text_to_image)
            self._pipe = pipeline_class.from_pretrained(
                self.model, **parts, **extra, dtype=self.models.weight_dtype
            )
            self._pipe.set_progress_bar_config(disable=True)
        return self._pipe


def run_record(
    config, inputs: Inputs, accelerator, files: list[Path], started: float, losses: list[float]
) -> dict:
    versions = library_versions()
    versions["accelerate"] = metadata.version("accelerate")
    return {
        "format": "skingen-lora-run",
        "lora": files[0].name,
        "lora_sha256": file_sha256(files[0]),
        "files": {path.name: file_sha256(path) for path in files},
        "config": config.to_dict(),
        "data": str(inputs.dataset.root),
        "data_sha256": inputs.data_hash,
        "model": inputs.model,
        "architecture": inputs.architecture.name,
        "steps": config.steps,
        "resumed_from": str(inputs.checkpoint) if inputs.checkpoint else None,
        "final_loss": losses[-1] if losses else None,
        "wall_time_s": round(time.perf_counter() - started, 3),
        "processes": accelerator.num_processes,
        "global_batch": accelerator.num_processes * config.batch_size * config.grad_accum,
        "device": accelerator.device.type,
        "versions": versions,
    }

"""LoRA training for Stable Diffusion 1.x (``skingen lora train``): step functions over a frozen config.

``config`` (the flags as a frozen :class:`~skingen.training.config.TrainingConfig`), ``data`` (the prepared
image set as a dataset with an exactly resumable order), ``lora`` (adapters, diffusers-format files),
``checkpoints`` (``RUN/checkpoint-<step>/``), ``validation`` (contact sheets), ``runs`` (``run.json``,
finding the run that produced a LoRA) and ``loop`` (the numbered steps). Only ``loop``, ``data``, ``lora``
and ``validation`` import torch, and only inside functions, so the CLI stays torch-free until it trains.
"""

"""Starting a command the way a user does on several GPUs, with CPU processes: ``accelerate launch``.

``accelerate launch --cpu`` starts a single process whatever ``--num_processes`` says, so the tests ask for
``--multi_gpu`` with no visible CUDA device: accelerate then runs N CPU processes joined by gloo.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch_env() -> dict[str, str]:
    """The environment of a launched test command: offline, CPU only, this checkout first on the path, and
    no launcher variables inherited from an outer launch."""
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "CUDA_VISIBLE_DEVICES": "",
        "OMP_NUM_THREADS": "2",
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        env.pop(name, None)
    return env


def accelerate_launch(num_processes: int) -> list[str]:
    """The command line up to the program: append ``-m module ARGS`` or ``script.py ARGS``."""
    return [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(num_processes),
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(_free_port()),
    ]  # fmt: skip

"""``skingen lora train ARGS`` that also writes every process's own LoRA parameters to ``OUT/rank-<i>.pt``.

Run under ``accelerate launch`` by ``tests/test_lora_processes.py``: the run's file holds the main process's
weights only, so whether the other processes hold the same ones has to be read from inside them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from skingen.cli import main
from skingen.training import loop


def main_with_rank_weights(argv: list[str]) -> int:
    out = Path(argv[argv.index("--out") + 1])
    run_loop = loop.run_loop

    def run_loop_saving_weights(config, accelerator, models, wrapped, params, *args, **kwargs):
        losses = run_loop(config, accelerator, models, wrapped, params, *args, **kwargs)
        torch.save([p.detach().cpu() for p in params], out / f"rank-{accelerator.process_index}.pt")
        return losses

    loop.run_loop = run_loop_saving_weights
    return main(argv)


if __name__ == "__main__":
    sys.exit(main_with_rank_weights(sys.argv[1:]))

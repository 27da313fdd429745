"""Splitting work over the processes of ``accelerate launch``: each its share, results merged in order.

A command started by ``accelerate launch --multi_gpu --num_processes N`` (or ``torchrun``) runs once per
process. :meth:`ProcessShare.current` tells a process which one it is, through accelerate's
``PartialState``; :meth:`~ProcessShare.shard` gives it a deterministic, strided share of the work items
(``items[index::N]``), :meth:`~ProcessShare.gather` hands every process's results to all of them, and
:func:`unshard` puts the shares back into the items' original order, so the merged result does not depend on
how many processes there were. :meth:`~ProcessShare.broadcast` sends one value (a path, an error) from the
main process to the others.

Started without a launcher (no ``WORLD_SIZE`` > 1), :meth:`ProcessShare.current` is the single process and
every operation is the identity: nothing imports torch, accelerate or ``torch.distributed``.

A process that fails must still take part in every collective call, or the others wait for it forever; so
work runs through :meth:`ProcessShare.attempt`, which turns an exception into an :class:`Outcome` that is
gathered like a result (see :func:`raise_failures`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from skingen.errors import SkinGenError

T = TypeVar("T")
_WORLD_SIZE_VARIABLES = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")


def launched_processes() -> int:
    """How many processes a launcher (accelerate, torchrun, MPI) started, from its environment; 1 if none."""
    for name in _WORLD_SIZE_VARIABLES:
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) > 1:
            return int(value)
    return 1


def launched_on_cpu() -> bool:
    """Whether launched processes run on the CPU (gloo): asked for (``ACCELERATE_USE_CPU``) or no CUDA.

    accelerate's ``Accelerator()`` without CUDA does not join the processes (each trains alone, as
    ``DistributedType.NO``) unless it is told ``cpu=True``; ``accelerate launch --cpu`` starts one process."""
    import torch
    from accelerate.utils import parse_flag_from_env

    return parse_flag_from_env("ACCELERATE_USE_CPU") or not torch.cuda.is_available()


def shard(items: Sequence[T], index: int, count: int) -> list[T]:
    """Share ``index`` of ``count``: every ``count``-th item from ``index`` (strided, so uneven costs mix)."""
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"shard {index} of {count}: need 0 ≤ index < count")
    return list(items[index::count])


def unshard(shares: Sequence[Sequence[T]]) -> list[T]:
    """The inverse of :func:`shard`: ``shares[i]`` are shard ``i``'s results, returned in the items' order."""
    count = len(shares)
    total = sum(len(share) for share in shares)
    for index, share in enumerate(shares):
        expected = len(range(index, total, count))
        if len(share) != expected:
            raise ValueError(f"share {index} of {count} has {len(share)} results for {expected} items")
    return [shares[position % count][position // count] for position in range(total)]


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """One process's result, or the error it raised (the exception itself stays in its own process)."""

    process_index: int
    value: T | None = None
    error: str | None = None
    exception: BaseException | None = None

    def __getstate__(self) -> dict[str, Any]:  # the exception is not sent: not every one can be pickled
        return {**self.__dict__, "exception": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


def raise_failures(outcomes: Sequence[Outcome[T]], process_index: int) -> list[T]:
    """The values of ``outcomes``; if any process failed, raise: this process's own exception where it failed
    (unchanged, as a single process would), else a :class:`SkinGenError` naming the failed process."""
    failed = [outcome for outcome in outcomes if outcome.error is not None]
    for outcome in failed:
        if outcome.process_index == process_index and outcome.exception is not None:
            raise outcome.exception
    if failed:
        first = failed[0]
        raise SkinGenError(f"process {first.process_index} of {len(outcomes)} failed: {first.error}")
    return [outcome.value for outcome in outcomes]


@dataclass(frozen=True)
class ProcessShare:
    """This process's place among those launched together; one process (index 0 of 1) without a launcher."""

    process_index: int = 0
    num_processes: int = 1
    device: str | None = None
    """The device accelerate assigned this process (e.g. ``cuda:1``); ``None`` for a single process."""

    @classmethod
    def current(cls, *, cpu: bool = False) -> ProcessShare:
        """This process's share; under a launcher through accelerate's ``PartialState`` (which joins the
        process group: gloo on CPU, NCCL on GPUs). ``cpu`` (or ``ACCELERATE_USE_CPU``, or no CUDA) keeps
        every process on the CPU."""
        if launched_processes() == 1:
            return cls()
        from accelerate import PartialState

        cpu = cpu or launched_on_cpu()
        state = PartialState(cpu=cpu)
        device = "cpu" if cpu else str(state.device)
        return cls(process_index=state.process_index, num_processes=state.num_processes, device=device)

    @property
    def is_main_process(self) -> bool:
        return self.process_index == 0

    @property
    def distributed(self) -> bool:
        return self.num_processes > 1

    def shard(self, items: Sequence[T]) -> list[T]:
        """This process's share of ``items`` (all of them for a single process)."""
        return shard(items, self.process_index, self.num_processes)

    def attempt(self, work: Callable[[], T]) -> Outcome[T]:
        """Run ``work``; its result or its exception as an :class:`Outcome` (never raises ``Exception``)."""
        try:
            return Outcome(self.process_index, value=work())
        except Exception as exc:
            return Outcome(self.process_index, error=str(exc) or type(exc).__name__, exception=exc)

    def gather(self, value: T) -> list[T]:
        """Every process's ``value``, in process order, on every process (picklable values)."""
        if not self.distributed:
            return [value]
        from accelerate.utils import gather_object

        return gather_object([value])  # one list per process, concatenated: one value per process

    def broadcast(self, value: T) -> T:
        """The main process's ``value`` on every process (the others' ``value`` is ignored)."""
        if not self.distributed:
            return value
        from accelerate.utils import broadcast_object_list

        return broadcast_object_list([value], from_process=0)[0]

    def wait_for_everyone(self) -> None:
        if self.distributed:
            from accelerate import PartialState

            PartialState().wait_for_everyone()

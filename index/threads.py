"""The one place that decides how many threads each part of the work gets.

Two kinds of process run here:

- **serving**: questions are short (about ten tokens), so an encoder call is
  a chain of small matrix products that a second thread only slows down
  (measured: ONNX int8 6.9 ms a question on one thread, 14.8 ms on two; torch
  spinning OpenMP threads made /api/search 63 ms at p50 against 35 ms with
  ``OMP_NUM_THREADS=1``). The encoder, FAISS and BLAS each get one thread, and
  the cores are used by computing several requests at once instead: a
  semaphore of ``compute_slots`` requests (concurrent questions still share one
  encoder call, see ``embedders/batching.py``; more requests in flight than
  that only add memory);
- **building**: large batches of passages, one at a time: the encoder and
  FAISS get every core, and cleaning, chunking and tokenising go to a pool of
  processes (``index/ingest/parallel.py``), one per core.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
import threading
from dataclasses import dataclass

logger = logging.getLogger(__name__)

SLOTS_PER_CORE = 2  # one request computing while another waits on the shared encoder call


@dataclass(frozen=True)
class ThreadPlan:
    role: str  # "serve" or "build"
    cores: int
    encoder: int  # intra-op threads of one encoder call
    faiss: int
    blas: int
    compute_slots: int  # requests that compute at once (serving)
    workers: int  # processes for cleaning, chunking and tokenising (building)


@functools.cache
def available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def serving_plan(*, compute_slots: int = 0, cores: int | None = None) -> ThreadPlan:
    cores = cores or available_cores()
    slots = compute_slots or SLOTS_PER_CORE * cores
    return ThreadPlan("serve", cores, encoder=1, faiss=1, blas=1, compute_slots=slots, workers=1)


def build_plan(*, cores: int | None = None) -> ThreadPlan:
    cores = cores or available_cores()
    return ThreadPlan("build", cores, encoder=cores, faiss=cores, blas=cores, compute_slots=1, workers=cores)


_applied: ThreadPlan | None = None


def apply(plan: ThreadPlan) -> ThreadPlan:
    """Set the process-wide thread counts of torch (if loaded), FAISS and BLAS to the plan's."""
    global _applied
    import faiss

    faiss.omp_set_num_threads(plan.faiss)
    if "torch" in sys.modules:
        set_torch_threads(plan.encoder)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(plan.blas, user_api="blas")
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        pass
    _applied = plan
    logger.info("threads: %s", plan)
    return plan


def applied() -> ThreadPlan | None:
    return _applied


def encoder_threads(default: int | None = None) -> int:
    """The encoder threads of the plan in force, else ``default`` (else every core)."""
    if _applied is not None:
        return _applied.encoder
    return default or available_cores()


def set_torch_threads(threads: int) -> None:
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def lower_priority() -> None:
    """Put the calling thread (a background merger) below the threads answering questions, where allowed."""
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)

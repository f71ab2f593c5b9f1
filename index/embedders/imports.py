"""Importing transformers from one thread at a time.

transformers resolves its names lazily (``_LazyModule``), and two threads importing it at once, as a server's
encoder warm-ups of two knowledge bases do, or a warm-up and the first upload's job, can get "cannot import name
'AutoModel' from 'transformers'" (3 of 3 tries in a fresh interpreter here, with torch imported first). The failed
job then fails an upload that would have worked. Every import of transformers (and of sentence-transformers, which
imports it) goes through this lock; once imported, taking it costs nothing measurable.
"""

from __future__ import annotations

import threading

TRANSFORMERS_IMPORT_LOCK = threading.Lock()


def auto_model():
    """transformers' ``AutoModel``, its progress bars off (they would sit above a build's own)."""
    with TRANSFORMERS_IMPORT_LOCK:
        import torch  # noqa: F401  (transformers imports torch: first, under the same lock)
        from transformers import AutoModel
        from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    return AutoModel


def sentence_transformer_class():
    with TRANSFORMERS_IMPORT_LOCK:
        from sentence_transformers import SentenceTransformer
    return SentenceTransformer

"""The one place a knowledge base's backend is chosen: from explicit configuration, never from settings."""

from __future__ import annotations

from index.errors import ConfigurationError
from index.stores.base import BackendConfig, IndexBackend
from index.stores.local.backend import LocalBackend
from index.stores.milvus.backend import MilvusBackend

BACKENDS = {"local": LocalBackend, "milvus": MilvusBackend}


def open_backend(config: BackendConfig) -> IndexBackend:
    """The knowledge base's index as ``config`` places it; opening connects to nothing yet."""
    try:
        backend = BACKENDS[config.kind]
    except KeyError:
        raise ConfigurationError(f"unknown index backend {config.kind!r}; choose from {sorted(BACKENDS)}") from None
    return backend(config)

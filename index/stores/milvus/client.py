"""Small tables of plain rows in Milvus: the lock's contenders, jobs, the registry.

Milvus wants a vector field in every collection and loads a collection only
once that field is indexed, so each table here carries a two-dimensional
placeholder vector (``PLACEHOLDER_FIELD``, always zero) that nothing searches.
Tables are made with strong consistency: a read sees every write that
completed before it, from any client.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from index.errors import ConfigurationError

PLACEHOLDER_FIELD = "placeholder"
PLACEHOLDER = [0.0, 0.0]


@functools.cache
def milvus_client(uri: str):
    """This process's client for ``uri`` (``http://host:19530`` or a ``milvus-lite server``), made once.

    It is a connection of its own (pymilvus otherwise shares one per address, with the options of
    whoever opened it first) that sends keepalive pings only while a call is open: pymilvus pings
    every 10 s even when idle, and a ``milvus-lite server`` (gRPC's default policy, at most one ping
    in 5 minutes without calls) answers that with GOAWAY "too_many_pings", after which the next call
    on the idle connection failed in our tests. A Milvus cluster permits idle pings; it does not need them.
    """
    try:
        from pymilvus import MilvusClient
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ConfigurationError("the Milvus store needs: pip install -e '.[milvus]'") from exc
    return MilvusClient(uri=uri, dedicated=True, grpc_options={"grpc.keepalive_permit_without_calls": False})


@dataclass(frozen=True)
class Column:
    """A scalar column: ``kind`` names a pymilvus DataType (VARCHAR, INT64, DOUBLE, BOOL)."""

    name: str
    kind: str
    max_length: int = 0  # VARCHAR only


def ensure_table(client, name: str, *, key: Column, columns: Sequence[Column]) -> None:
    """Make the collection (unless it exists) and load it; safe when several processes race to make it."""
    from pymilvus import DataType, MilvusClient, MilvusException

    if not client.has_collection(name):
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        for column in (key, *columns):
            extra = {"max_length": column.max_length} if column.kind == "VARCHAR" else {}
            schema.add_field(column.name, getattr(DataType, column.kind), is_primary=column is key, **extra)
        schema.add_field(PLACEHOLDER_FIELD, DataType.FLOAT_VECTOR, dim=len(PLACEHOLDER))
        index = client.prepare_index_params()
        index.add_index(PLACEHOLDER_FIELD, index_type="FLAT", metric_type="L2")
        try:
            client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")
        except MilvusException:
            if not client.has_collection(name):  # another process made it first: that is fine
                raise
    client.load_collection(name)


def with_placeholder(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**row, PLACEHOLDER_FIELD: PLACEHOLDER} for row in rows]


def quoted(value: str) -> str:
    """``value`` as a string literal in a Milvus filter expression."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

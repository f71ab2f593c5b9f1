"""A process contending for the Milvus writer lock (run by tests/test_milvus_lock.py).

``count URI NAME TIMES``: TIMES read-modify-write increments of one counter row under the lock.
``hold URI NAME``: take the lock, say ``held``, and keep it until killed.
"""

from __future__ import annotations

import sys
import time

from index.stores.milvus.client import Column, ensure_table, milvus_client, with_placeholder
from index.stores.milvus.lock import MilvusWriterLock

COUNTER_COLLECTION = "lock_test_counter"
LEASE_S, MAX_SKEW_S = 2.0, 0.2


def read_counter(client, name: str) -> int:
    rows = client.query(COUNTER_COLLECTION, filter=f'key == "{name}"', output_fields=["value"])
    return int(rows[0]["value"]) if rows else 0


def counter_client(uri: str):
    client = milvus_client(uri)
    ensure_table(client, COUNTER_COLLECTION, key=Column("key", "VARCHAR", 128), columns=[Column("value", "INT64")])
    return client


def count(uri: str, name: str, times: int) -> None:
    client = counter_client(uri)
    lock = MilvusWriterLock(uri, name=name, lease_s=LEASE_S, max_skew_s=MAX_SKEW_S)
    for _ in range(times):
        with lock:
            value = read_counter(client, name)
            time.sleep(0.005)  # widen the window a lost update would need
            lock.ensure_held()
            client.upsert(COUNTER_COLLECTION, with_placeholder([{"key": name, "value": value + 1}]))


def hold(uri: str, name: str) -> None:
    lock = MilvusWriterLock(uri, name=name, lease_s=LEASE_S, max_skew_s=MAX_SKEW_S)
    lock.acquire()
    print("held", flush=True)
    time.sleep(3600)


if __name__ == "__main__":
    if sys.argv[1] == "count":
        count(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        hold(sys.argv[2], sys.argv[3])

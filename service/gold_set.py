"""Each knowledge base's own gold set: the questions its staff added from feedback, kept as regression tests.

A gold question is a staff record of kind ``gold_question`` with the fields of the library's ``GoldQuestion``
(index/quality/gold.py): ``question``, ``doc_id`` (None: the documents cannot answer it), ``answers`` (text of the
marked passage, whitespace removed, which a correct answer and a relevant passage must hold), ``type``,
``answer_type``, ``short`` and ``topic``; beside them, where it came from (the feedback, the passage, who added it).

The knowledge base ``default`` is evaluated on the shipped gold set followed by its added questions; any other
knowledge base on its added questions alone (``policyqa eval --kb``, the server's evaluation job).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import httpx

from index.errors import ConflictError, NotFoundError, PermissionDeniedError
from index.quality.datasets import Dataset, gold_dataset
from index.quality.gold import GoldQuestion, flat
from service.stores.factory import open_records
from service.stores.records import MAX_LIST, RECORDS_FILE, RecordStore, StaffRecord
from service.stores.registry import DEFAULT_KB

GOLD_KIND = "gold_question"
GOLD_TYPE = "feedback"  # the type of every added question: it came from the staff's review of feedback
TOPICS = ("near", "off")


def gold_body(
    *,
    question: str,
    doc_id: str | None,
    answers: Sequence[str],
    short: Sequence[str] = (),
    answer_type: str | None = None,
    topic: str | None = None,
    origin: dict | None = None,
) -> dict:
    """A gold question as it is stored (and served): the library's fields, then where it came from."""
    return {
        "question": question,
        "doc_id": doc_id,
        "answers": [flat(a) for a in answers],
        "type": GOLD_TYPE,
        "answer_type": answer_type,
        "short": list(short),
        "topic": topic,
        **(origin or {}),
    }


def gold_question(question_id: str, body: dict) -> GoldQuestion:
    """The library's gold question from a stored body, or from one ``GET …/gold`` serves."""
    return GoldQuestion(
        id=question_id,
        question=body["question"],
        doc_id=body.get("doc_id"),
        answers=tuple(body.get("answers") or ()),
        type=body.get("type") or GOLD_TYPE,
        answer_type=body.get("answer_type"),
        short=tuple(body.get("short") or ()),
        topic=body.get("topic"),
    )


class GoldSet:
    """The added gold questions of every knowledge base, in the staff record store."""

    def __init__(self, records: RecordStore) -> None:
        self.records = records

    def add(self, kb_id: str, body: dict) -> StaffRecord:
        return self.records.add(GOLD_KIND, kb_id, body)

    def get(self, kb_id: str, question_id: str) -> StaffRecord | None:
        return self.records.get(GOLD_KIND, kb_id, question_id)

    def delete(self, kb_id: str, question_id: str) -> None:
        if self.get(kb_id, question_id) is None:
            raise NotFoundError(f"no gold question {question_id!r}")
        self.records.delete(GOLD_KIND, kb_id, question_id)

    def page(self, kb_id: str, *, limit: int, before: str | None = None) -> list[StaffRecord]:
        """Newest first."""
        return self.records.list(GOLD_KIND, kb_id, limit=limit, before=before)

    def all(self, kb_id: str) -> Iterator[StaffRecord]:
        before = None
        while page := self.page(kb_id, limit=MAX_LIST, before=before):
            yield from page
            before = page[-1].record_id

    def questions(self, kb_id: str) -> list[GoldQuestion]:
        """Every added question, oldest first: the order they are asked in."""
        return [gold_question(r.record_id, r.body) for r in reversed(list(self.all(kb_id)))]


def kb_gold_dataset(kb_id: str, added: list[GoldQuestion]) -> Dataset:
    """What an evaluation of ``kb_id`` asks: for ``default`` the shipped gold set and the added questions, for
    another knowledge base its added questions, which it must have."""
    if kb_id == DEFAULT_KB:
        return gold_dataset(added)
    if not added:
        raise ConflictError(
            f"knowledge base {kb_id!r} has no gold questions yet: in its feedback review, mark the right passage"
            f" (or 'not in the documents') and add the question with POST /api/kbs/{kb_id}/feedback/{{id}}/gold"
        )
    return gold_dataset(added, shipped=False, name=f"gold-{kb_id}")


def stored_gold_questions(settings, kb_id: str) -> list[GoldQuestion]:
    """The added questions of ``kb_id`` in this deployment's record store (DATA_DIR's staff.sqlite3, or Milvus);
    none when a local data directory has no record store yet (nothing was ever added)."""
    if settings.store == "local" and not (settings.data_dir / RECORDS_FILE).exists():
        return []
    return GoldSet(open_records(settings)).questions(kb_id)


def fetched_gold_questions(url: str, kb_id: str, key: str | None, *, timeout: float = 30.0) -> list[GoldQuestion]:
    """The added questions of ``kb_id`` as a running service serves them (``GET …/gold``: a write key or the
    admin token), oldest first."""
    path = "/api/gold" if kb_id == DEFAULT_KB else f"/api/kbs/{kb_id}/gold"
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    rows: list[dict] = []
    params: dict[str, str | int] = {"limit": MAX_LIST}
    with httpx.Client(base_url=url.rstrip("/"), timeout=timeout, headers=headers) as client:
        while True:
            response = client.get(path, params=params)
            if response.status_code in (401, 403):
                raise PermissionDeniedError(
                    f"{url} refused to list the gold questions of {kb_id!r} ({response.status_code}): they need"
                    " a write key of that knowledge base or the admin token (--key)"
                )
            if response.status_code == 404:
                raise NotFoundError(f"{url} has no knowledge base {kb_id!r}")
            page = response.raise_for_status().json()
            rows += page["data"]
            if not page.get("next_before"):
                break
            params["before"] = page["next_before"]
    return [gold_question(row["id"], row) for row in reversed(rows)]

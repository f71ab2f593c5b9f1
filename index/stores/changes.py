"""What a change is made of, for every backend: the sources it adds, and what a corpus directory changed."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from index.errors import ConfigurationError
from index.ingest.documents import ADDED_ORIGINS, SourceDocument
from index.ingest.passages import clean_document, content_hash


def refuse_duplicate_ids(sources) -> list[SourceDocument]:
    """The sources as a list; a change naming one document id twice is refused."""
    sources = list(sources)
    duplicates = sorted(d for d, n in Counter(s.doc_id for s in sources).items() if n > 1)
    if duplicates:
        raise ConfigurationError(f"duplicate document ids: {', '.join(duplicates[:5])}")
    return sources


@dataclass(frozen=True)
class CorpusChanges:
    changed: list[SourceDocument]  # new files and files whose text or title changed
    removed: list[str]  # corpus documents whose file is gone
    unchanged: int


def corpus_changes(catalogue, sources: list[SourceDocument]) -> CorpusChanges:
    """What differs between a corpus directory and the index (uploaded documents are left alone)."""
    known = {r.doc_id: r for r in catalogue.documents()}
    changed, unchanged = [], 0
    for source in sources:
        record = known.get(source.doc_id)
        if record is not None and (record.content_hash, record.title, record.source) == (
            _cleaned_hash(source),
            source.title,
            source.source,
        ):
            unchanged += 1
        else:
            changed.append(source)
    names = {s.doc_id for s in sources}
    removed = [d for d, r in known.items() if r.origin not in ADDED_ORIGINS and d not in names]
    return CorpusChanges(changed, removed, unchanged)


def _cleaned_hash(source: SourceDocument) -> str | None:
    """None for a document that cannot be cleaned: it counts as changed, and preparing it reports why."""
    try:
        text, _ = clean_document(source)
    except Exception:
        return None
    return content_hash(text)

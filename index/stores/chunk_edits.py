"""One chunk's text corrected by hand, for every backend: the document as it is after the correction.

Staff correct a chunk (an OCR slip, a wrong heading); the document is written
again as a replace would write it, but nothing is read, cleaned or chunked
again: the corrected text takes the chunk's place in the document's text,
every other chunk keeps its place, section path and vector, and only the
corrected chunk and its sentences go to the embedder. Positions after the
chunk shift by the change in length; a neighbour that overlaps the chunk
(the chunker repeats a closing sentence) keeps its overlap, mapped through
the character diff, so a slip corrected inside the overlap is corrected in
both. The document's content hash is kept: it names the file that was read,
so a re-upload of that file is still recognised.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import numpy as np

from index.embedders.base import Embedder
from index.errors import ConflictError, InvalidInputError, NotFoundError
from index.ingest.chunk import Span, split_sentences
from index.ingest.documents import SourceDocument
from index.ingest.embed import Matrices, embed_missing
from index.ingest.passages import PreparedDocument
from index.ingest.token_caps import TokenBudget, cap_passages
from index.stores.records import ChunkRecord, NewChunk


@dataclass(frozen=True)
class ChunkCorrection:
    """What correcting one chunk did: the chunk is found again by (doc_id, ordinal); its id is new."""

    generation_id: str
    doc_id: str
    ordinal: int
    chunk_id: int  # the chunk's id in the new generation
    before: str  # the text it replaced
    after: str
    embedded_passages: int  # encoder inputs: the chunk and its sentences


@dataclass(frozen=True)
class CorrectedDocument:
    document: PreparedDocument  # numbered from 1, its vectors filled
    before: str
    embedded_passages: int


def corrected_document(
    catalogue, vectors, sentence_vectors, *, doc_id: str, ordinal: int, text: str, embedder: Embedder, late: bool
) -> CorrectedDocument:
    """The document with chunk ``ordinal`` reading ``text``, from a reader's stores (catalogue, chunk and
    sentence vectors of the current generation)."""
    record = catalogue.document(doc_id)
    if record is None:
        raise NotFoundError(f"no document with id {doc_id!r}")
    chunks = catalogue.document_chunks(doc_id)
    if not 0 <= ordinal < len(chunks):
        raise NotFoundError(f"document {doc_id!r} has no chunk at position {ordinal}")
    target, whole = chunks[ordinal], catalogue.document_text(doc_id) or ""
    text = text.strip()
    if not text:
        raise InvalidInputError("the corrected text is empty")
    if text == target.text:
        raise InvalidInputError("the corrected text is the chunk's text as it is")
    if whole[target.start : target.end] != target.text:
        raise ConflictError(f"chunk {ordinal} of {doc_id!r} is not where the document's text says it is")
    moved = _PositionMap(target, text)
    new_sentences, vectors_of_new, embedded = _embedded_chunk(record, target, text, embedder, late)
    kept = [s for s in catalogue.document_sentences(doc_id) if s.end <= target.start or s.start >= target.end]
    sentence_rows = sorted(
        [(moved.start(s.start), moved.end(s.end), ("old", s.sentence_id)) for s in kept]
        + [(target.start + a, target.start + b, ("new", i)) for i, (a, b) in enumerate(new_sentences)]
    )
    new_text = whole[: target.start] + text + whole[target.end :]
    numbered_chunks = []
    for i, chunk in enumerate(chunks):
        start, end = (target.start, target.start + len(text)) if i == ordinal else _moved(moved, chunk)
        numbered_chunks.append(NewChunk(i + 1, start, end, chunk.section, new_text[start:end]))
    chunk_vectors = vectors.vectors(np.array([c.chunk_id for c in chunks], dtype=np.int64)).copy()
    chunk_vectors[ordinal] = vectors_of_new.chunks[0]
    old_ids = np.array([key[1] for *_, key in sentence_rows if key[0] == "old"], dtype=np.int64)
    old_vectors = iter(sentence_vectors.vectors(old_ids) if len(old_ids) else ())
    rows = [next(old_vectors) if kind == "old" else vectors_of_new.sentences[at] for *_, (kind, at) in sentence_rows]
    source = SourceDocument(record.doc_id, record.title, record.source, new_text, (), record.origin,
                            tuple(catalogue.page_confidence(doc_id)))  # fmt: skip
    spans = [(moved.start(a), moved.end(b)) for a, b in catalogue.page_spans(doc_id)]
    document = PreparedDocument(
        source, new_text, record.content_hash, numbered_chunks,
        [(i + 1, start, end) for i, (start, end, _) in enumerate(sentence_rows)], spans,
        chunk_vectors=chunk_vectors,
        sentence_vectors=np.asarray(rows, dtype=np.float32).reshape(len(rows), embedder.dimension),
    )  # fmt: skip
    return CorrectedDocument(document, target.text, embedded)


def _moved(moved: _PositionMap, chunk: ChunkRecord) -> tuple[int, int]:
    start, end = moved.start(chunk.start), moved.end(chunk.end)
    if end <= start:  # only a chunk lying wholly inside the corrected one: the chunker makes none
        raise ConflictError(f"chunk {chunk.ordinal} lies inside the corrected chunk; correct the document instead")
    return start, end


def _embedded_chunk(record, target: ChunkRecord, text: str, embedder: Embedder, late: bool):
    """(the corrected chunk's sentence spans, its vectors, encoder inputs): the chunk alone goes to the
    embedder, with its title and section path in front as every chunk does."""
    sentences = [Span(a, b, target.section) for a, b in split_sentences(text)]
    chunks, sentences = cap_passages(text, record.title, [Span(0, len(text), target.section)], sentences,
                                     TokenBudget.of(embedder))  # fmt: skip
    if len(chunks) != 1:
        raise InvalidInputError(f"the corrected text is longer than the embedder reads in one passage "
                                f"({embedder.max_tokens} tokens); shorten it")  # fmt: skip
    spans = [(s.start, s.end) for s in sentences]
    one = SourceDocument(record.doc_id, record.title, record.source, text)
    alone = PreparedDocument(one, text, "", [NewChunk(1, 0, len(text), target.section, text)],
                             [(i + 1, a, b) for i, (a, b) in enumerate(spans)])  # fmt: skip
    matrices = Matrices(np.zeros((1, embedder.dimension), np.float32),
                        np.zeros((len(spans), embedder.dimension), np.float32))  # fmt: skip
    inputs = embed_missing([alone], matrices, embedder, late=late, show_progress=False, on_progress=None)
    return spans, matrices, inputs


class _PositionMap:
    """Where a position of the document's text is after the chunk's text is replaced: unchanged before
    it, shifted after it, and inside it mapped through the character diff (a position in a changed run
    goes to that run's start or end, whichever keeps it outside the change)."""

    def __init__(self, chunk: ChunkRecord, text: str) -> None:
        self.first, self.last = chunk.start, chunk.end
        self.shift = len(text) - (chunk.end - chunk.start)
        matcher = difflib.SequenceMatcher(None, chunk.text, text, autojunk=False)
        self._ops = matcher.get_opcodes()

    def _inside(self, at: int, towards_end: bool) -> int:
        for tag, i1, i2, j1, j2 in self._ops:
            if i1 <= at < i2 or (at == i2 and tag != "equal" and towards_end):
                if tag == "equal":
                    return self.first + j1 + (at - i1)
                return self.first + (j2 if towards_end or at > i1 else j1)
        return self.first + (self._ops[-1][4] if self._ops else 0)

    def start(self, at: int) -> int:
        return at if at <= self.first else at + self.shift if at >= self.last else self._inside(at - self.first, False)

    def end(self, at: int) -> int:
        return at if at <= self.first else at + self.shift if at >= self.last else self._inside(at - self.first, True)

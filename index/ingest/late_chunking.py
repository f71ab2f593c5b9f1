"""Sentence vectors from their chunk's encoder pass ("late chunking").

A chunk is encoded once with its heading path in front; each sentence that
lies wholly inside it is given the mean of the chunk's token states over the
sentence's characters, so sentences need no encoder pass of their own. The
states are contextual: a sentence's vector carries some of its neighbours'
meaning, which helps a short sentence ("具体如下：") and can blur two
neighbours apart (see docs/performance.md, "Embedding runtimes", before turning it on).

Only what can be located exactly is pooled: the chunk's input is the matching
form (``normalize_for_matching``) of header and text, so each sentence's span
in it is found by normalising the pieces apart and checking that they join up
to the same input. A sentence inside no chunk (one longer than a chunk, cut in
pieces) or in a chunk whose pieces do not join up is encoded on its own.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass

from index.ingest.clean import normalize_for_matching
from index.ingest.passages import PreparedDocument


@dataclass(frozen=True)
class ChunkJob:
    chunk_row: int
    text: str  # the chunk's embedder input
    sentence_rows: list[int]
    spans: list[tuple[int, int]]  # each sentence's characters in ``text``


@dataclass(frozen=True)
class DocumentPlan:
    chunks: list[ChunkJob]
    lone_sentences: list[tuple[int, str]]  # (row, input) of sentences encoded on their own


def plan_document(document: PreparedDocument, header_of: Callable[[tuple[str, ...]], str]) -> DocumentPlan:
    """Which sentences each chunk's pass yields, and which sentences still need a pass of their own.

    ``header_of(section)`` is what precedes a chunk's text in its embedder input.
    """
    text, chunks, sentences = document.text, document.chunks, document.sentences
    starts = [c.start for c in chunks]
    members: list[list[int]] = [[] for _ in chunks]
    for s_index, (_, start, end) in enumerate(sentences):
        owner = _first_chunk_holding(chunks, starts, start, end)
        if owner is not None:
            members[owner].append(s_index)
    jobs, pooled = [], set()
    for c_index, chunk in enumerate(chunks):
        header = header_of(chunk.section)
        inside = [sentences[i][1:] for i in members[c_index]]
        located = locate(header, text, chunk.start, chunk.end, inside)
        if located is None:
            job_text, spans, owned = normalize_for_matching(header + text[chunk.start : chunk.end]), [], []
        else:
            (job_text, spans), owned = located, members[c_index]
        pooled.update(owned)
        jobs.append(ChunkJob(chunk.chunk_id - 1, job_text, [sentences[i][0] - 1 for i in owned], spans))
    lone = [
        (sentence_id - 1, normalize_for_matching(text[start:end]))
        for i, (sentence_id, start, end) in enumerate(sentences)
        if i not in pooled
    ]
    return DocumentPlan(jobs, lone)


def _first_chunk_holding(chunks, starts: list[int], start: int, end: int) -> int | None:
    """The first chunk whose span holds [start, end) (chunks overlap by at most a sentence or two)."""
    last = bisect.bisect_right(starts, start) - 1
    for index in range(max(0, last - 2), last + 1):
        if chunks[index].start <= start and end <= chunks[index].end:
            return index
    return None


def locate(
    header: str, text: str, start: int, end: int, sentence_spans: list[tuple[int, int]]
) -> tuple[str, list[tuple[int, int]]] | None:
    """The chunk input (matching form of header + text[start:end]) and each sentence's span in it,
    or None when normalising piece by piece does not give the same input."""
    whole = normalize_for_matching(header + text[start:end])
    pieces, spans, cursor = [normalize_for_matching(header)], [], start
    length = len(pieces[0])
    for s_start, s_end in sentence_spans:
        gap = normalize_for_matching(text[cursor:s_start])
        sentence = normalize_for_matching(text[s_start:s_end])
        pieces += [gap, sentence]
        length += len(gap)
        spans.append((length, length + len(sentence)))
        length += len(sentence)
        cursor = s_end
    pieces.append(normalize_for_matching(text[cursor:end]))
    if "".join(pieces) != whole:
        return None
    return whole, spans

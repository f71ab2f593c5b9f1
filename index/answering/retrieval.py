"""Hybrid retrieval: dense and BM25 candidates, oversampled, fused, re-ranked by their evidence, de-duplicated."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from index.answering.evidence import EvidenceParams, EvidenceScorer, PassageEvidence, combined_scores
from index.answering.features import Candidate, passage_rows, question_context
from index.answering.fusion import FUSIONS
from index.answering.learned import LearnedModels
from index.answering.question import QuestionAnalysis, analyze
from index.answering.term_set import TermSet
from index.embedders.base import Embedder
from index.errors import UnknownDocumentError
from index.ingest.clean import normalize_for_matching
from index.ingest.faq import FaqPair
from index.stores.base import IndexReader
from index.stores.records import ChunkRecord

Mode = Literal["hybrid", "dense", "lexical"]
MODES: tuple[str, ...] = ("hybrid", "dense", "lexical")
MIN_CANDIDATES = 20
# Allowed chunks at least this share of all: search unfiltered, wider, and drop the rest (_dense_candidates).
POST_FILTER_SHARE = 0.25
CACHED_SCOPE_DOCUMENTS = 200  # a scope this long (a filter's documents) has its chunk ids kept
SCOPES_KEPT = 32
ANSWER_TIE = 0.02  # combined scores (min-max over the candidates) this close are a tie


@dataclass(frozen=True)
class Hit:
    chunk: ChunkRecord
    score: float  # the ranking score of the mode used
    dense: float  # cosine similarity to the question
    lexical: float  # BM25 score
    evidence: PassageEvidence | None = None  # its sentences, judged against the question
    learned: float | None = None  # the passage ranker's score, when a learned model judged it
    faq: FaqPair | None = None  # the FAQ pair it is from (index/answering/faq.py marks it)

    def as_candidate(self) -> Candidate:
        assert self.evidence is not None
        return Candidate.of(self.chunk, self.dense, self.lexical, self.evidence)


@dataclass(frozen=True)
class SearchResult:
    hits: list[Hit]
    query_vector: np.ndarray
    analysis: QuestionAnalysis | None = None


class Retriever:
    """Searches one loaded index with one embedder; safe to share across threads."""

    def __init__(
        self,
        index: IndexReader,
        embedder: Embedder,
        *,
        fusion: str = "weighted",
        dense_weight: float = 0.5,
        oversample: int = 4,
        evidence: EvidenceParams = EvidenceParams(),
        models: LearnedModels | None = None,
    ) -> None:
        if fusion not in FUSIONS:
            raise ValueError(f"unknown fusion {fusion!r}; choose from {sorted(FUSIONS)}")
        self.index = index
        self.embedder = embedder
        self.fusion = fusion
        self.dense_weight = dense_weight
        self.oversample = oversample
        self.models = models  # None: the hand-set evidence weights order the passages
        # (question, each candidate's doc_id) -> the candidates' order: what the documents' standing changes
        # in it (a repealed notice after the current one); None: the scores alone
        self.arrange: Callable[[str, list[str]], list[int]] | None = None
        # The knowledge base's terms now (index/answering/term_set.py); None: the question's own words alone
        self.terms: Callable[[], TermSet] | None = None
        self._allowed: dict[tuple[str, ...], np.ndarray] = {}
        self._allowed_lock = threading.Lock()
        self.scorer = EvidenceScorer(index, evidence)  # keeps documents' matching text between questions

    @property
    def evidence_params(self) -> EvidenceParams:
        return self.scorer.params

    def embed_query(self, query: str) -> np.ndarray:
        return self.embedder.embed_queries([normalize_for_matching(query)])[0]

    def search(
        self,
        query: str,
        *,
        top_k: int = 5,
        mode: Mode = "hybrid",
        doc_ids: Sequence[str] | None = None,
    ) -> SearchResult:
        allowed = self._allowed_chunk_ids(doc_ids)
        query_vector = self.embed_query(query)
        analysis = analyze(query)
        if allowed is not None and len(allowed) == 0:
            return SearchResult([], query_vector, analysis)
        n_candidates = max(top_k * self.oversample, MIN_CANDIDATES)
        # One BM25 pass serves both the lexical candidates and the lexical score of the dense ones.
        terms = self.terms() if self.terms is not None else None
        if terms is None:
            lexical_scores = self.index.lexical.scores(query, allowed)
        else:
            lexical_scores = terms.lexical_scores(self.index.lexical, query, allowed)
        candidates: list[int] = []
        if mode in ("hybrid", "dense"):
            candidates += self._dense_candidates(query_vector, n_candidates, allowed).tolist()
        if mode in ("hybrid", "lexical"):
            candidates += lexical_scores.top(n_candidates).ids.tolist()
        ids = np.array(list(dict.fromkeys(candidates)), dtype=np.int64)
        if len(ids) == 0:
            return SearchResult([], query_vector, analysis)
        dense = self.index.vectors.vectors(ids) @ query_vector
        lexical = lexical_scores.of(ids)
        if mode == "dense":
            scores = dense
        elif mode == "lexical":
            scores = lexical
        else:
            scores = FUSIONS[self.fusion](dense, lexical, dense_weight=self.dense_weight)
        order = np.argsort(-scores, kind="stable")
        judged = self.evidence_params.reranked if mode == "hybrid" else top_k * 2
        order = order[: max(judged, top_k * 2)]
        records = {c.chunk_id: c for c in self.index.catalogue.chunks([int(ids[i]) for i in order])}
        order = np.array([i for i in order if int(ids[i]) in records], dtype=np.int64)
        head = order[:judged]
        evidence = self.scorer.judge(query, analysis, query_vector, [records[int(ids[i])] for i in head])
        by_candidate = dict(zip(head.tolist(), evidence, strict=True))
        learned: dict[int, float] = {}
        if self.models is not None and len(head):
            passages = [
                Candidate.of(records[int(ids[i])], dense[i], lexical[i], e)
                for i, e in zip(head.tolist(), evidence, strict=True)
            ]
            ranked = self.models.passage(passage_rows(question_context(query, analysis), passages))
            learned = dict(zip(head.tolist(), ranked.tolist(), strict=True))
        if mode == "hybrid" and learned:
            scores = scores.astype(np.float64)
            scores[head] = ranked
            head = head[np.argsort(-ranked, kind="stable")]
            order = np.concatenate([head, order[judged:]])
        elif mode == "hybrid" and len(head):
            support = np.array([e.best.support if e.best else -1.0 for e in evidence])
            scores = scores.copy()
            scores[head] = combined_scores(scores[head], support, self.evidence_params.evidence_weight)
            head = head[np.argsort(-scores[head], kind="stable")]
            head = _answering_first(head, scores, by_candidate, analysis)
            order = np.concatenate([head, order[judged:]])
        if self.arrange is not None and len(order):
            order = order[self.arrange(query, [records[int(ids[i])].doc_id for i in order])]
        hits = self._hits(ids, order, records, scores, dense, lexical, by_candidate, learned, top_k)
        return SearchResult(hits, query_vector, analysis)

    def rejudged(
        self, query: str, result: SearchResult, query_vector: np.ndarray, analysis: QuestionAnalysis | None = None
    ) -> SearchResult:
        """The same passages, in the same order, with their sentences judged against another vector."""
        analysis = analysis or result.analysis or analyze(query)
        evidence = self.scorer.judge(query, analysis, query_vector, [hit.chunk for hit in result.hits])
        hits = [dataclasses.replace(hit, evidence=e) for hit, e in zip(result.hits, evidence, strict=True)]
        return SearchResult(hits, query_vector, analysis)

    def _hits(self, ids, order, records, scores, dense, lexical, evidence, learned, top_k: int) -> list[Hit]:
        hits: list[Hit] = []
        seen_texts: set[str] = set()
        for i in order.tolist():
            chunk = records[int(ids[i])]
            if chunk.text in seen_texts:
                continue  # an identical passage from a duplicate document adds nothing
            seen_texts.add(chunk.text)
            hits.append(
                Hit(chunk, float(scores[i]), float(dense[i]), float(lexical[i]), evidence.get(i), learned.get(i))
            )
            if len(hits) == top_k:
                break
        return hits

    def _dense_candidates(self, query_vector: np.ndarray, k: int, allowed: np.ndarray | None) -> np.ndarray:
        """The ``k`` nearest allowed chunks. When most chunks are allowed, a wider search without a filter and
        the disallowed dropped after is far cheaper than filtering inside the index (a selector over every id);
        if too few survive, the filtered search is made after all."""
        vectors = self.index.vectors
        if allowed is None:
            return vectors.search(query_vector, k).ids
        total = vectors.count()
        if total and len(allowed) >= POST_FILTER_SHARE * total:
            wide = min(total, int(k * total / len(allowed) * 2) + 1)
            ids = vectors.search(query_vector, wide).ids
            kept = ids[_members(ids, allowed)]
            if len(kept) >= k or wide == total:
                return kept[:k]
        return vectors.search(query_vector, k, allowed).ids

    def _allowed_chunk_ids(self, doc_ids: Sequence[str] | None) -> np.ndarray | None:
        """The chunks of ``doc_ids``, sorted; a long list (the documents a filter admits) is kept, so the same
        filter asked again costs a lookup."""
        if doc_ids is None:
            return None
        if len(doc_ids) < CACHED_SCOPE_DOCUMENTS:
            return self._chunk_ids_of(doc_ids)
        key = tuple(doc_ids)
        with self._allowed_lock:
            found = self._allowed.get(key)
        if found is None:
            found = self._chunk_ids_of(key)
            with self._allowed_lock:
                if len(self._allowed) >= SCOPES_KEPT:
                    self._allowed.pop(next(iter(self._allowed)))
                self._allowed[key] = found
        return found

    def _chunk_ids_of(self, doc_ids: Sequence[str]) -> np.ndarray:
        wanted = list(dict.fromkeys(doc_ids))
        known = self.index.catalogue.known_doc_ids(wanted)
        missing = [d for d in wanted if d not in known]
        if missing:
            raise UnknownDocumentError(missing)
        return np.sort(np.array(self.index.catalogue.chunk_ids(wanted), dtype=np.int64))


def _members(ids: np.ndarray, allowed_sorted: np.ndarray) -> np.ndarray:
    """Which of ``ids`` are in ``allowed_sorted``, by binary search (no set built per question)."""
    at = np.searchsorted(allowed_sorted, ids)
    at[at == len(allowed_sorted)] = 0
    return allowed_sorted[at] == ids if len(allowed_sorted) else np.zeros(len(ids), dtype=bool)


def _answering_first(
    head: np.ndarray, scores: np.ndarray, evidence: dict[int, PassageEvidence], analysis: QuestionAnalysis
) -> np.ndarray:
    """The first passage that could answer goes first when it is all but tied with those above it: the
    answer quotes it, so it should be citation [1], not a distractor that won by a rounding error."""
    can = [evidence[int(i)].can_answer(analysis) for i in head]
    first = next((n for n, ok in enumerate(can) if ok), 0)
    if first == 0 or scores[head[0]] - scores[head[first]] > ANSWER_TIE:
        return head
    return np.concatenate([head[first : first + 1], head[:first], head[first + 1 :]])

"""Extractive answers: the retrieved sentence that best answers the question, quoted verbatim, best first.

Nothing is generated: every sentence of an answer is a slice of a cited
passage, followed by that passage's ``[n]`` marker, and the short answer is
a slice of the lead sentence. Sentence vectors are computed at index time,
so composing an answer costs a few dot products. Before answering, the
evidence is checked against what the question asks (``index.answering.question``):
a number for 多少, the qualifiers it names; when the documents discuss the
subject but not what was asked, the reply says what is missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from index.answering.evidence import SentenceEvidence
from index.answering.features import decision_row, question_context, sentence_candidates, sentence_rows
from index.answering.learned import LearnedModels
from index.answering.question import QuestionAnalysis
from index.answering.quoted import QuotedSentence
from index.answering.retrieval import Hit, SearchResult
from index.answering.short_answer import ShortAnswer, short_answer

if TYPE_CHECKING:
    from index.answering.faq import FaqBook, FaqMatch

NOT_COVERED = "文档中没有找到能回答这个问题的内容。以下是最接近的段落，仅供参考。"
OFF_TOPIC, MISSING_QUALIFIER, MISSING_ANSWER_TYPE, MISSING_SUBJECT, UNCERTAIN = (
    "off_topic",
    "missing_qualifier",
    "missing_answer_type",
    "missing_subject",
    "uncertain",  # the learned decline: nothing named is missing, but no sentence is likely enough to answer
)
_TYPE_WORDS = {
    "quantity": "具体数字",
    "date": "具体时间",
    "person": "具体人员",
    "organisation": "具体机构",
    "place": "具体地点",
    "document": "文件名称",
}


@dataclass(frozen=True)
class AnswerParams:
    # Abstain below this relevance; calibrated on index/quality/questions.jsonl (docs/evaluation.md, "Abstention").
    min_relevance: float = 0.91
    # Relevance = sentence cosine + this weight x the question's idf-weighted word coverage.
    coverage_weight: float = 0.15
    max_sentences: int = 3
    sentence_margin: float = 0.06  # a further sentence must support the question this nearly as well
    candidate_passages: int = 3
    # The learned decline: answer when P(the lead sentence answers) is at least this; None = the threshold the
    # models were shipped with (chosen on the validation split for a false-decline budget, MODEL_CARD.md).
    min_confidence: float | None = None
    # A further sentence's ranker score must be this close to the lead's (ranker scores are log-odds-like).
    score_margin: float = 1.0


@dataclass(frozen=True)
class Citation:
    n: int
    hit: Hit
    highlights: list[tuple[int, int]]
    weak: bool


@dataclass(frozen=True)
class Answer:
    text: str
    answerable: bool
    relevance: float
    citations: list[Citation]
    quoted: list[QuotedSentence]
    short_answer: ShortAnswer | None = None
    declined_reason: str | None = None
    confidence: float | None = None  # calibrated P(the first quoted sentence answers); None without models
    notices: tuple[str, ...] = ()  # cited documents that are repealed, amended or not yet in force
    faq: FaqMatch | None = None  # the FAQ pair whose approved answer leads (index/answering/faq.py)


@dataclass(frozen=True)
class _Candidate:
    n: int
    hit: Hit
    sentence: SentenceEvidence
    relevance: float

    def quoted(self) -> QuotedSentence:
        s = self.sentence
        return QuotedSentence(self.n, s.start, s.end, s.text, s.similarity, self.relevance)


class AnswerComposer:
    def __init__(
        self, params: AnswerParams = AnswerParams(), models: LearnedModels | None = None, faq: FaqBook | None = None
    ) -> None:
        self.params = params
        self.models = models  # None: the hand-set rules decide which sentence and whether to answer
        self.faq = faq  # the generation's FAQ pairs: a question matching one is answered by it

    @property
    def min_confidence(self) -> float | None:
        if self.models is None:
            return None
        return self.params.min_confidence if self.params.min_confidence is not None else self.models.threshold

    def compose(self, question: str, result: SearchResult, scope: Sequence[str] | None = None) -> Answer:
        """``scope``: the documents the question may be answered from (None: all), for the FAQ pairs."""
        if self.faq is not None:
            result = self.faq.mark(result)
            match = self.faq.match(result.query_vector, scope, result.analysis) if result.hits else None
            if match is not None:
                return self._faq_answer(match, result)
        hits, analysis = result.hits, result.analysis
        candidates = self._candidates(hits)
        relevance = max((c.relevance for c in candidates), default=0.0)
        supporting = [c for c in candidates if c.relevance >= self.params.min_relevance]
        confidence = None
        if self.models is not None and analysis is not None:
            quoted, confidence, reason = self._learned(question, result)
            if not quoted and reason is None:
                reason = self._learned_reason(supporting, analysis)
        else:
            answering = [c for c in supporting if self._answers(c, analysis)]
            reason = None if answering else self._declined_reason(supporting, analysis)
            quoted = self._select(answering, candidates, analysis) if answering else []
        highlights: dict[int, list[tuple[int, int]]] = {}
        for q in quoted:
            highlights.setdefault(q.citation, []).append((q.start, q.end))
        answerable = bool(quoted)
        citations = [
            Citation(n, hit, sorted(highlights.get(n, [])), weak=not answerable) for n, hit in enumerate(hits, start=1)
        ]
        if answerable:
            text = "".join(f"{q.text}[{q.citation}]" for q in quoted)
            evidence = hits[quoted[0].citation - 1].evidence
            weights = evidence.word_weights if evidence else None
            short = short_answer(question, analysis, quoted[0], weights) if analysis else None
        else:
            text, short = self._decline_text(reason, supporting, analysis), None
        return Answer(text, answerable, relevance, citations, quoted, short, reason, confidence)

    def _faq_answer(self, match: FaqMatch, result: SearchResult) -> Answer:
        """The pair's approved answer, whole and verbatim, citing the pair as [1]; no short answer is cut from it."""
        hits, quoted = self.faq.leading(match, result)
        citations = [Citation(1, hits[0], [(quoted.start, quoted.end)], weak=False)]
        citations += [Citation(n, hit, [], weak=False) for n, hit in enumerate(hits[1:], start=2)]
        return Answer(f"{quoted.text}[1]", True, match.score, citations, [quoted], faq=match)

    def _learned(self, question: str, result: SearchResult) -> tuple[list[QuotedSentence], float, str | None]:
        """The sentence ranker's best sentence of the leading passages, and whether to quote it: the calibrated
        decline. Further sentences follow, for a list or an explanation, when the ranker scores them close.

        One rule stays a veto: a lead whose document lacks a qualifier the question names (a year, 第二批, a
        place) is declined. Measured, it adds near-topic declines at almost no false ones on held-out DRCD and
        on the gold set's held-out half; the focus and answer-type vetoes lost answers and are features only.
        """
        models, analysis = self.models, result.analysis
        leading = [(n, hit) for n, hit in enumerate(result.hits[: self.params.candidate_passages], 1) if hit.evidence]
        passages = [hit.as_candidate() for _, hit in leading]
        found = sentence_candidates(passages, len(passages))
        if not found:
            return [], 0.0, None
        rows = sentence_rows(question_context(question, analysis), found)
        scores = models.sentence(rows)
        lead = int(np.argmax(scores))
        passage_scores = np.array([h.learned for h in result.hits if h.learned is not None])
        confidence = models.confidence(decision_row(rows[lead], scores, lead, passage_scores))
        if found[lead].passage.evidence.missing_qualifiers:
            return [], confidence, MISSING_QUALIFIER
        if confidence < self.min_confidence:
            return [], confidence, None
        cited = {id(p): (n, hit) for p, (n, hit) in zip(passages, leading, strict=True)}
        chosen = [_Candidate(*cited[id(c.passage)], c.sentence, float(s)) for c, s in zip(found, scores, strict=True)]
        lead_candidate = chosen[lead]
        picked = [lead_candidate]
        if not analysis.wants_span:
            covered = set(lead_candidate.sentence.covered)
            for i in np.argsort(-scores, kind="stable").tolist():
                other = chosen[i]
                if len(picked) == self.params.max_sentences or scores[i] < scores[lead] - self.params.score_margin:
                    break
                if other is not lead_candidate and not other.sentence.covered <= covered:
                    picked.append(other)
                    covered |= other.sentence.covered
        follow = _continuation(lead_candidate, chosen)
        if follow is not None and follow not in picked and len(picked) < self.params.max_sentences:
            picked.insert(1, follow)
        return [c.quoted() for c in picked], confidence, None

    def _learned_reason(self, supporting: list[_Candidate], analysis: QuestionAnalysis) -> str:
        """What the declined answer lacks, read from the evidence: a qualifier, the subject, the asked type;
        when nothing named is missing, the decline is the model's doubt."""
        reason = self._declined_reason(supporting, analysis)
        if reason == MISSING_SUBJECT and not any(c.hit.evidence and c.hit.evidence.missing_focus for c in supporting):
            return UNCERTAIN
        return reason

    def _candidates(self, hits: list[Hit]) -> list[_Candidate]:
        """Every quotable sentence of the leading passages; an overlap is quoted from the better passage."""
        found: list[_Candidate] = []
        seen: set[tuple[str, int]] = set()
        weight = self.params.coverage_weight
        for n, hit in enumerate(hits[: self.params.candidate_passages], start=1):
            if hit.evidence is None:
                continue
            for sentence in hit.evidence.sentences:
                key = (hit.chunk.doc_id, hit.chunk.start + sentence.start)
                if key in seen:
                    continue
                seen.add(key)
                found.append(_Candidate(n, hit, sentence, sentence.similarity + weight * sentence.coverage))
        return found

    @staticmethod
    def _answers(candidate: _Candidate, analysis: QuestionAnalysis | None) -> bool:
        """A sentence supports an answer only with the asked type in it and the asked qualifiers in its document."""
        if analysis is None:
            return True
        evidence = candidate.hit.evidence
        if evidence is None:
            return candidate.sentence.has_type or not analysis.wants_span
        return evidence.answers_with(candidate.sentence, analysis)

    def _declined_reason(self, supporting: list[_Candidate], analysis: QuestionAnalysis | None) -> str:
        if not supporting or analysis is None:
            return OFF_TOPIC
        evidence = [c.hit.evidence for c in supporting if c.hit.evidence is not None]
        if evidence and all(e.missing_qualifiers for e in evidence):
            return MISSING_QUALIFIER
        if evidence and all(e.missing_focus for e in evidence):
            return MISSING_SUBJECT
        if analysis.wants_span and not any(c.sentence.has_type for c in supporting):
            return MISSING_ANSWER_TYPE
        return MISSING_SUBJECT

    def _select(
        self, answering: list[_Candidate], candidates: list[_Candidate], analysis: QuestionAnalysis | None
    ) -> list[QuotedSentence]:
        """The best sentence of the first passage that answers; further ones only for what it lacks."""
        lead_n = min(c.n for c in answering)
        lead = max((c for c in answering if c.n == lead_n), key=lambda c: c.sentence.support)
        chosen = [lead]
        wants_more = analysis is None or not analysis.wants_span
        if wants_more:
            covered = set(lead.sentence.covered)
            ranked = sorted(answering, key=lambda c: -c.sentence.support)
            for other in ranked:
                if len(chosen) == self.params.max_sentences:
                    break
                close = other.sentence.support >= lead.sentence.support - self.params.sentence_margin
                adds = not other.sentence.covered <= covered or _continues(lead, other)
                if other is not lead and close and adds:
                    chosen.append(other)
                    covered |= other.sentence.covered
        follow = _continuation(lead, candidates)
        if follow is not None and follow not in chosen and len(chosen) < self.params.max_sentences:
            chosen.insert(1, follow)
        return [c.quoted() for c in chosen]

    @staticmethod
    def _decline_text(reason: str | None, supporting: list[_Candidate], analysis: QuestionAnalysis | None) -> str:
        if reason == OFF_TOPIC or analysis is None or not supporting:
            return NOT_COVERED
        if reason == MISSING_QUALIFIER:
            missing = supporting[0].hit.evidence.missing_qualifiers if supporting[0].hit.evidence else ()
            named = "、".join(dict.fromkeys(q.text for q in missing)) or "所问的条件"
            present = "、".join(q.text for q in analysis.qualifiers if q not in missing)
            subject = f"{present}的相关内容" if present else "相关内容"
            return f"文档提到了{subject}，但没有提到{named}。以下是最接近的段落，仅供参考。"
        subject = "、".join(_outermost(supporting[0].sentence.covered)[:3]) or "相关内容"
        if reason == UNCERTAIN:
            return f"文档提到了{subject}，但没有找到能确切回答这个问题的句子。以下是最接近的段落，仅供参考。"
        if reason == MISSING_SUBJECT and analysis.focus:
            evidence = supporting[0].hit.evidence
            absent = (evidence.missing_focus if evidence else ()) or analysis.focus
            return f"文档提到了{subject}，但没有提到{''.join(absent)}。以下是最接近的段落，仅供参考。"
        wanted = _TYPE_WORDS.get(analysis.answer_type, "所问的内容")
        return f"文档提到了{subject}，但没有给出所问的{wanted}。以下是最接近的段落，仅供参考。"


def _outermost(words: frozenset[str]) -> list[str]:
    """Longest first, without the pieces of a longer one: 海安县, not 海安县、安县、海安."""
    ordered = sorted(words, key=lambda w: (-len(w), w))  # a stable order whatever the hash seed
    return [w for i, w in enumerate(ordered) if not any(w in longer for longer in ordered[:i])]


def _continues(lead: _Candidate, other: _Candidate) -> bool:
    """The sentence right after the lead, in the same passage."""
    return other.n == lead.n and 0 <= other.sentence.start - lead.sentence.end <= 2


def _continuation(lead: _Candidate, candidates: list[_Candidate]) -> _Candidate | None:
    """A lead that ends on a colon introduces what follows: "主要职责是：" needs its next sentence."""
    if not lead.sentence.text.rstrip().endswith(("：", ":")):
        return None
    return next((c for c in candidates if _continues(lead, c)), None)

"""FAQ pairs as documents: a question, its similar questions, an approved answer and where the answer comes from.

A pair is stored as a document of its knowledge base's index (origin ``faq``), so it is searched, cited,
replaced and deleted like any document, survives merges and works on every backend with no storage of its
own. Its text is labelled lines, the answer last (the only field that may span lines), so the pair is read
back from the text alone:

    问题：街道便民服务中心几点上班？
    相似问法：便民服务中心的办公时间是什么？
    来源：《街道便民服务指南》
    答案：工作日上午9:00至12:00……

Each field is cleaned as every document is (``index/ingest/clean.py``) when the pair is made, so the stored
text cleans to itself and the answer quoted is exactly the one listed and exported.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass

from index.errors import InvalidInputError
from index.ingest.clean import clean_text, normalize_for_matching
from index.ingest.documents import SourceDocument

FAQ_ORIGIN = "faq"
FAQ_SOURCE = "FAQ"  # the document's source: a pair has no file
MAX_QUESTION_CHARS = 300
MAX_ANSWER_CHARS = 4000
MAX_SOURCE_CHARS = 300
MAX_SIMILAR = 30
QUESTION, SIMILAR, SOURCE, ANSWER = "问题", "相似问法", "来源", "答案"
_LABEL = "："
_FAQ_ID = re.compile(r"^faq-[0-9a-f]{16}$")
_NOT_WORDS = re.compile(r"[\W_]+")


@dataclass(frozen=True)
class FaqPair:
    question: str
    answer: str
    similar: tuple[str, ...] = ()
    source: str = ""  # 来源: the document, article or office the answer is taken from

    @property
    def questions(self) -> tuple[str, ...]:
        """The question and its similar questions: what a question asked is matched against."""
        return (self.question, *self.similar)


def new_faq_id(ordinal: int = 0) -> str:
    """``faq-`` and 16 hex digits: the time in milliseconds, the row, and a random part. Sorted, they are in
    the order pairs were added (an import's rows in file order)."""
    return f"faq-{int(time.time() * 1000):011x}{ordinal % 4096:03x}{secrets.randbelow(16 * 16):02x}"


def is_faq_id(doc_id: str) -> bool:
    return bool(_FAQ_ID.match(doc_id))


def question_key(question: str) -> str:
    """What makes two questions the same one: folded forms, no punctuation or spaces, case ignored."""
    return _NOT_WORDS.sub("", normalize_for_matching(question))


def made_pair(question: str, answer: str, similar: list[str] | tuple[str, ...] = (), source: str = "") -> FaqPair:
    """A pair from what staff typed, cleaned and checked; raises ``InvalidInputError`` naming the field."""
    question = _one_line(QUESTION, question, MAX_QUESTION_CHARS, required=True)
    source = _one_line(SOURCE, source, MAX_SOURCE_CHARS, required=False)
    answer = clean_text(answer or "")
    if not answer:
        raise InvalidInputError(f"{ANSWER} is empty")
    if len(answer) > MAX_ANSWER_CHARS:
        raise InvalidInputError(f"{ANSWER} is longer than {MAX_ANSWER_CHARS} characters")
    if len(similar) > MAX_SIMILAR:
        raise InvalidInputError(f"{SIMILAR}: at most {MAX_SIMILAR} similar questions")
    kept: dict[str, str] = {question_key(question): question}
    for item in similar:
        text = _one_line(SIMILAR, item, MAX_QUESTION_CHARS, required=False)
        if text and question_key(text) and question_key(text) not in kept:
            kept[question_key(text)] = text
    if not question_key(question):
        raise InvalidInputError(f"{QUESTION} holds no words")
    pair = FaqPair(question, answer, tuple(list(kept.values())[1:]), source)
    stored = parse_pair_text(pair_text(pair))
    if stored != pair:  # cleaning across the labels changed a field: the pair could not be quoted as listed
        raise InvalidInputError("the pair cannot be stored as typed; check its punctuation and line breaks")
    return pair


def _one_line(name: str, value: str, limit: int, *, required: bool) -> str:
    text = clean_text(" ".join((value or "").split()))
    if required and not text:
        raise InvalidInputError(f"{name} is empty")
    if len(text) > limit:
        raise InvalidInputError(f"{name} is longer than {limit} characters")
    return text


def pair_text(pair: FaqPair) -> str:
    lines = [f"{QUESTION}{_LABEL}{pair.question}"]
    lines += [f"{SIMILAR}{_LABEL}{s}" for s in pair.similar]
    if pair.source:
        lines.append(f"{SOURCE}{_LABEL}{pair.source}")
    lines.append(f"{ANSWER}{_LABEL}{pair.answer}")
    return clean_text("\n".join(lines))


def parse_pair_text(text: str) -> FaqPair | None:
    """The pair a document's text holds, or None when it is not a pair's text."""
    lines = text.split("\n")
    if not lines or not lines[0].startswith(QUESTION + _LABEL):
        return None
    question, similar, source = lines[0][len(QUESTION) + 1 :], [], ""
    for at, line in enumerate(lines[1:], start=1):
        label, _, value = line.partition(_LABEL)
        if label == SIMILAR:
            similar.append(value)
        elif label == SOURCE:
            source = value
        elif label == ANSWER:
            answer = "\n".join([value, *lines[at + 1 :]])
            return FaqPair(question, answer, tuple(similar), source)
        else:
            return None
    return None


def answer_offset(pair: FaqPair, text: str) -> int:
    """Where the answer starts in the pair's text (it is the text's tail)."""
    return len(text) - len(pair.answer)


def faq_document(doc_id: str, pair: FaqPair) -> SourceDocument:
    """The pair as a document to index: titled by its question, already clean."""
    text = pair_text(pair)
    return SourceDocument(
        doc_id=doc_id, title=pair.question, source=FAQ_SOURCE, raw_text=text, origin=FAQ_ORIGIN, cleaned=(text, ())
    )

"""Follow-up questions resolved with the earlier turns of a conversation, without a language model.

Only the user's questions are used. Each one is resolved in the context of the
one before it (itself resolved first), so a chain of follow-ups keeps its topic:

- a question with no sign of leaning on what came before is asked as it is;
- one that points at the document (这篇文章的作者是谁？) is asked within the document
  the previous question is answered from, under that document's title; one that
  points at a thing the previous question asked about (这个文件是哪年印发的？ after
  …印发了什么文件？) stays in that document too, with the previous question's words;
- any other sure follow-up (那镇海区呢？, 具体有哪些？, 聘任期是几年？) is asked with the
  key words of the previous question. A place or date of the follow-up takes the
  place of one of the same kind in the previous question (2017年3月呢？ after
  2016年3月…) instead of joining it;
- a question that points back (这个市, 该乡) but is long enough to stand alone takes
  only the places the previous question named.

Pure functions of strings; the engine side is in ``index/answering/conversation.py``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from index.ingest.tokenize import tokenize

Kind = Literal["standalone", "document", "swap", "ellipsis"]
Strength = Literal["none", "weak", "strong"]

# Up to this many characters (Chinese characters, letters, digits), a question naming no place is a follow-up;
# up to the second, it may be one (it takes the places named before).
SHORT_QUESTION_CHARS = 10
BRIEF_QUESTION_CHARS = 16
# At most this many words are carried over from the previous question.
MAX_CARRIED_WORDS = 10
# A follow-up leans on the last few questions, never on a whole long history: resolving each earlier question
# costs time in its length, and a request may carry up to 100 turns of 20,000 characters.
MAX_EARLIER_QUESTIONS = 8
MAX_EARLIER_QUESTION_CHARS = 1000

_CONTENT_CHAR = re.compile(r"[\w\u3400-\u9fff]")
# Opening words that continue a conversation.
_CONTINUATION = re.compile(r"^(那么|那|还有|另外|此外|其中|然后|以及|并且|而且|但是|可是)")
# "…呢？" closing a clause: 那镇海区呢？ 副主任呢？怎么产生？
_TRAILING_NE = re.compile(r"呢\s*([？?！!。，,]|$)")
# Words that point back at something said before.
_REFERENCE = re.compile(
    r"这[个些篇份项种样里次位一二两三四五六七八九几]|那[个些]|该[文市县镇乡区省项个份篇部]|"
    r"其中|其他|其余|其它|它们?|他们|她们|上述|前述|上面|前面|刚才"
)
# A pointer at a document: 这篇文章, 该文件, 本文.
_DOCUMENT_PHRASE = re.compile(
    r"(?:这|该|此|本)[篇份个部]?(?P<noun>文章|文件|材料|报告|意见|通知|方案|论文|文稿|文)|本文|原文"
)
# What is only asked of a whole document.
_DOCUMENT_WORD = re.compile(r"文中|作者|发表|刊登|刊物|期刊|出处")
# No 《 inside: tried from every 《 of a long run of them, [^》]+ would cost the square of its length.
_TITLE = re.compile(r"《[^《》]+》")
_DATE = re.compile(r"\d{4}年(?:\d{1,2}月(?:\d{1,2}日)?)?|\d{1,2}月(?:\d{1,2}日)?")
_PLACE_SUFFIXES = ("街道", "省", "市", "区", "县", "镇", "乡")
_PLACE_SUFFIX_CHARS = set("街道省市区县镇乡")
# Characters that end a place name on its left (在开封市, 镇江市京口区), and that never occur in one.
_BOUNDARY = set("在的和与及对从向于那是了中里、，,。？?！!（）() ")
_NOT_IN_NAME = set("个多少几共有各该这那全每的了在和与及对是为其呢时后前")


@dataclass(frozen=True)
class Turn:
    role: str  # "user", "assistant" or "system"
    content: str


@dataclass(frozen=True)
class Resolution:
    question: str  # as asked
    query: str  # what is retrieved and answered
    kind: Kind
    anchor: str  # the resolved question whose best document "this document" means
    name_document: bool = False  # replace the pointer (这篇文章) by the document's title

    @property
    def followup(self) -> bool:
        return self.kind != "standalone"

    @property
    def same_document(self) -> bool:
        return self.kind == "document"


def user_questions(turns: Iterable[Turn]) -> list[str]:
    """The user's non-empty messages, in order."""
    return [t.content.strip() for t in turns if t.role == "user" and t.content.strip()]


def content_chars(text: str) -> int:
    return len(_CONTENT_CHAR.findall(text))


def places(text: str) -> list[str]:
    """Place names (镇江市, 京口区, 骆驼街道): two or three characters and a suffix, after a boundary."""
    found = []
    for match in re.finditer("|".join(_PLACE_SUFFIXES), text):
        for length in (3, 2):
            start = match.start() - length
            name = text[start : match.start()]
            if start < 0 or not all("\u4e00" <= c <= "\u9fff" and c not in _NOT_IN_NAME for c in name):
                continue
            before = text[start - 1] if start > 0 else ""
            if before in ("", *_BOUNDARY, *_PLACE_SUFFIX_CHARS) or not ("\u4e00" <= before <= "\u9fff"):
                found.append(name + match.group())
                break
    return list(dict.fromkeys(found))


def _suffix(place: str) -> str:
    return next(s for s in _PLACE_SUFFIXES if place.endswith(s))


def names_itself(question: str) -> bool:
    """Whether the question says which document or place it is about."""
    return bool(_TITLE.search(question) or places(question))


def points_at_document(question: str) -> bool:
    return not names_itself(question) and bool(_DOCUMENT_PHRASE.search(question) or _DOCUMENT_WORD.search(question))


def followup_strength(question: str) -> Strength:
    """How surely a question leans on an earlier turn.

    Strong: it opens with a continuing word (那…, 其中…), asks "…呢？", points at
    the document, or is short and names no place. Weak: it points back (这个市,
    该乡, 其他) but is long enough to stand on its own, or is brief and names no place.
    """
    q = question.strip()
    short = content_chars(q) <= SHORT_QUESTION_CHARS and not names_itself(q)
    if _CONTINUATION.match(q) or _TRAILING_NE.search(q) or points_at_document(q) or short:
        return "strong"
    brief = content_chars(q) <= BRIEF_QUESTION_CHARS and not names_itself(q)
    if _REFERENCE.search(q) or _DOCUMENT_PHRASE.search(q) or brief:
        return "weak"
    return "none"


def key_words(text: str) -> list[str]:
    """The words a question is about: its tokens without stopwords, longest forms only, in order."""
    tokens = list(dict.fromkeys(tokenize(text)))
    return [t for t in tokens if not any(t != other and t in other for other in tokens)]


def replaced_entities(question: str, previous: str) -> list[str]:
    """Places and dates of the previous question that one of this question's takes the place of."""
    replaced = []
    for place in places(question):
        replaced += [p for p in places(previous) if _suffix(p) == _suffix(place) and p != place]
    if _DATE.search(question):
        replaced += [d for d in _DATE.findall(previous) if d not in question]
    return list(dict.fromkeys(replaced))


def carried_words(question: str, previous: str, *, places_only: bool = False) -> tuple[list[str], bool]:
    """Words of the previous question to add to this one, and whether an entity of it was swapped out."""
    words = places(previous) if places_only else key_words(previous)
    replaced = replaced_entities(question, previous)
    for old in replaced:
        dropped = set(tokenize(old))
        words = [w for w in words if w not in dropped and w not in old]
    own = set(tokenize(question))
    return [w for w in words if w not in own and w not in question][:MAX_CARRIED_WORDS], bool(replaced)


def resolve_one(question: str, previous: Resolution | None) -> Resolution:
    """Resolve a question given the previous question's resolution (None at the start)."""
    question = question.strip()
    strength = followup_strength(question)
    if previous is None or strength == "none":
        return Resolution(question, question, "standalone", question)
    anchor = previous.anchor if previous.same_document else previous.query
    words, swapped = carried_words(question, previous.query, places_only=strength == "weak")
    query = " ".join([question, *words])
    if points_at_document(question):
        pointer = _DOCUMENT_PHRASE.search(question)
        noun = pointer.group("noun") if pointer else None
        if noun and noun in previous.query:
            return Resolution(question, query, "document", anchor)
        return Resolution(question, question, "document", anchor, name_document=True)
    return Resolution(question, query, "swap" if swapped else "ellipsis", query)


def resolve(question: str, earlier_questions: Sequence[str]) -> Resolution:
    """Resolve the last question of a conversation, each of the last few earlier questions resolved in turn."""
    resolution: Resolution | None = None
    for earlier in earlier_questions[-MAX_EARLIER_QUESTIONS:]:
        resolution = resolve_one(earlier[:MAX_EARLIER_QUESTION_CHARS], resolution)
    return resolve_one(question, resolution)


def name_document(question: str, title: str) -> str:
    """The question with its pointer at the document (这篇文章, 本文) replaced by the document's title."""
    named = f"《{title}》"
    if _DOCUMENT_PHRASE.search(question):
        return _DOCUMENT_PHRASE.sub(named, question, count=1)
    return f"{named}{question}"

"""What a document says about other documents: which it repeals (…同时废止) and which it amends (对《…》作如下修改).

Sentences are found by a linear split; only a sentence holding the verb is read further, and a reference is taken
only when the verb sits right next to it, so 'do the 废止 work under 《立法法》' names nothing.
"""

from __future__ import annotations

import bisect
import logging
import re
from dataclasses import dataclass

from index.ingest.metadata.doc_numbers import find_doc_numbers, normalise_doc_number

logger = logging.getLogger(__name__)

_SENTENCE = re.compile(r"[^。；;！!？?\n]{1,2000}")
_TITLE = re.compile(r"《[^《》\n]{1,100}》(?:[（(][^（）()\n]{1,40}[）)])?")
_CONNECTOR = re.compile(r"^[、，,和及与以及\s]{0,4}$")
_REPEAL_VERB = re.compile(r"(?:同时|一并|即行|相应)?(?:废止|停止执行|不再执行)")
_AMEND_AFTER = re.compile(r"^(?:作|做)(?:如下|以下)?(?:修改|修订|修正)")
_AMEND_BEFORE = re.compile(r"(?:修改|修订|修正)$")
_MAX_GAP = 24
# A repeal list longer than this is not a sentence of a policy document; the bound keeps hostile input linear.
_MAX_CHAIN = 60
# No real document repeals or amends hundreds of others; a text that names thousands is hostile or noise, and keeping
# them all would make every reader of the metadata (and the repeal linking across documents) pay for it.
MAX_REFERENCES = 200
# What may stand between the last reference and 废止: '等文件', '，自本办法施行之日起', nothing else.
_GAP_BEFORE_VERB = re.compile(r"^[，,、\s]*(?:等)?(?:文件|规定)?[，,\s]*(?:自[^，。；《》]{0,16}起)?[，,\s]*$")
_STRIP = re.compile(r"[《》〈〉<>\s\u3000]")
_OPEN_PARENS = "（("


@dataclass(frozen=True)
class FoundReference:
    text: str
    start: int
    end: int


def _references(sentence: str, offset: int) -> list[FoundReference]:
    found = [FoundReference(m[0], m.start() + offset, m.end() + offset) for m in _TITLE.finditer(sentence)]
    title_starts = [ref.start for ref in found]
    titled = list(found)
    for number in find_doc_numbers(sentence, offset):
        # A number in a title's trailing parenthesis belongs to that title's reference.
        index = bisect.bisect_right(title_starts, number.start) - 1
        if index < 0 or number.start >= titled[index].end:
            found.append(FoundReference(number.value, number.start, number.end))
    return sorted(found, key=lambda ref: ref.start)


def _chain_before(refs: list[FoundReference], ends: list[int], text: str, position: int) -> list[FoundReference]:
    """The run of references that ends just before ``position``, joined by 、 和 及."""
    last = bisect.bisect_right(ends, position) - 1
    if last < 0 or position - refs[last].end > _MAX_GAP or not _GAP_BEFORE_VERB.match(text[refs[last].end : position]):
        return []
    chain = [refs[last]]
    for ref in reversed(refs[max(last - _MAX_CHAIN, 0) : last]):
        if not _CONNECTOR.match(text[ref.end : chain[0].start]):
            break
        chain.insert(0, ref)
    return chain


def _chain_after(refs: list[FoundReference], starts: list[int], text: str, position: int) -> list[FoundReference]:
    first = bisect.bisect_left(starts, position)
    if first >= len(refs) or refs[first].start - position > 4:
        return []
    chain = [refs[first]]
    for ref in refs[first + 1 : first + _MAX_CHAIN]:
        if not _CONNECTOR.match(text[chain[-1].end : ref.start]):
            break
        chain.append(ref)
    return chain


def find_repeals(text: str) -> list[FoundReference]:
    found: dict[int, FoundReference] = {}
    for sentence in _SENTENCE.finditer(text):
        if "废止" not in sentence[0] and "不再执行" not in sentence[0] and "停止执行" not in sentence[0]:
            continue
        refs = _references(sentence[0], sentence.start())
        starts, ends = [ref.start for ref in refs], [ref.end for ref in refs]
        for verb in _REPEAL_VERB.finditer(text, sentence.start(), sentence.end()):
            chain = _chain_before(refs, ends, text, verb.start()) or _chain_after(refs, starts, text, verb.end())
            found.update((ref.start, ref) for ref in chain)
        if len(found) >= MAX_REFERENCES:
            break
    return [found[key] for key in sorted(found)][:MAX_REFERENCES]


def find_amendments(text: str) -> list[FoundReference]:
    found: dict[int, FoundReference] = {}
    for sentence in _SENTENCE.finditer(text):
        if "修" not in sentence[0]:
            continue
        refs = [ref for ref in _references(sentence[0], sentence.start()) if ref.text.startswith("《")]
        for ref in refs:
            after = text[ref.end : ref.end + 8]
            before = text[max(ref.start - 4, sentence.start()) : ref.start]
            if _AMEND_AFTER.match(after) or _AMEND_BEFORE.search(before.removesuffix("对")):
                found[ref.start] = ref
        if len(found) >= MAX_REFERENCES:
            break
    return [found[key] for key in sorted(found)][:MAX_REFERENCES]


def _title_and_number(reference: str) -> tuple[str, str | None]:
    number = normalise_doc_number(reference)
    title = reference
    if "》" in reference:
        title = reference[: reference.rindex("》") + 1]
    elif number:
        title = ""
    return _normalise_title(title), number


def _normalise_title(title: str) -> str:
    bare = _STRIP.sub("", title).replace("(", "（").replace(")", "）")
    return bare.removeprefix("中华人民共和国")


def references_match(reference: str, *, title: str, doc_number: str | None) -> bool:
    """Does a reference (《title》, a 文号, or both) name the document with this title and 文号?"""
    ref_title, ref_number = _title_and_number(reference)
    own_number = normalise_doc_number(doc_number) if doc_number else None
    if ref_number and own_number:
        return ref_number == own_number
    return bool(ref_title) and ref_title == _normalise_title(title)

"""Words for the lexical index: jieba search-mode segmentation of the matching form."""

from __future__ import annotations

import functools
import logging
import re

from index.ingest.clean import normalize_for_matching

# Function words and question words that carry no topic: dropping them keeps
# BM25 from rewarding "的" and "什么" matches.
STOPWORDS = frozenset(
    """
    的 了 和 与 及 以及 或 是 在 对 为 把 被 将 从 向 于 由 等 有 也 都 而 并 其 之 这 那 这个
    那个 哪 哪些 哪个 哪里 什么 怎么 怎样 如何 为什么 为何 多少 几 吗 呢 吧 啊 请问 请 一个 一些 可以
    能 是否 有没有 中 上 下 个 年 月 日 各 该 我 我们 你 你们 他们 它 就 还 又 即 则 所 着 过 要
    会 问 according what which how
    """.split()
)
_WORD = re.compile(r"[\w\u3400-\u9fff]")


@functools.cache
def _jieba():
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


def tokenize(text: str) -> list[str]:
    """Search-mode jieba tokens of the normalised text, without stopwords or punctuation."""
    return [word for piece in _SENTENCE.findall(normalize_for_matching(text)) for word in _sentence_tokens(piece)]


# jieba segments runs of word characters apart, so cutting at sentence ends first
# changes nothing, and a sentence seen before (boilerplate, repeated clauses,
# overlapping chunks) costs a dictionary lookup instead of a segmentation.
_SENTENCE = re.compile(r"[^。！？；\n]+[。！？；\n]?|[。！？；\n]")


@functools.lru_cache(maxsize=1 << 17)
def _sentence_tokens(sentence: str) -> tuple[str, ...]:
    words = _jieba().lcut_for_search(sentence)
    return tuple(w for w in (w.strip() for w in words) if w and _WORD.search(w) and w not in STOPWORDS)

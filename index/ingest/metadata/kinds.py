"""文种: the kind of document, read from how its title ends (…的通知, …实施办法, …（试行）)."""

from __future__ import annotations

import logging
import re

logger = logging.getLogger(__name__)

# Title endings and the kind each names, longest first: 实施细则 is a 细则, 调研报告 is its own kind.
_ENDINGS = (
    ("调研报告", "调研报告"),
    ("调查报告", "调研报告"),
    ("工作报告", "报告"),
    ("实施细则", "细则"),
    ("实施办法", "办法"),
    ("实施方案", "方案"),
    ("实施意见", "意见"),
    ("指导意见", "意见"),
    ("若干规定", "规定"),
    ("通知", "通知"),
    ("通报", "通报"),
    ("意见", "意见"),
    ("办法", "办法"),
    ("规定", "规定"),
    ("方案", "方案"),
    ("决定", "决定"),
    ("决议", "决议"),
    ("条例", "条例"),
    ("报告", "报告"),
    ("讲话", "讲话"),
    ("规则", "规则"),
    ("细则", "细则"),
    ("批复", "批复"),
    ("公告", "公告"),
    ("通告", "通告"),
    ("纲要", "纲要"),
    ("规划", "规划"),
    ("解释", "解释"),
    ("章程", "章程"),
    ("函", "函"),
    ("法", "法"),
)
# Words ending in 法 that are not a law's name.
_NOT_A_LAW = ("方法", "做法", "看法", "想法", "说法", "用法", "写法", "手法", "司法", "执法", "违法", "守法", "普法")
_TRAILING_NOTES = re.compile(r"(?:[（(][^（）()]{1,12}[）)]|\s|[。.])+$")


def kind_from_title(title: str) -> tuple[str, int] | None:
    """The kind and the offset in ``title`` where its word starts; None when the title does not name one."""
    trimmed = _TRAILING_NOTES.sub("", title[:200])
    for ending, kind in _ENDINGS:
        if not trimmed.endswith(ending):
            continue
        if kind == "法" and trimmed.endswith(_NOT_A_LAW):
            return None
        return kind, len(trimmed) - len(ending)
    return None

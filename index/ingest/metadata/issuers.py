"""发文机关: recognising names of issuing bodies, splitting a joint line into its bodies, and the body's level.

A name is recognised by how it ends (人民政府, 办公厅, 委员会, 局 ...), not from a list of bodies, so a county
office we have never seen is still found. Lines are short by the time they reach here (callers cap them), and the
loops below walk a name once.
"""

from __future__ import annotations

import logging
import re

logger = logging.getLogger(__name__)

# Endings of a body's name, longest first so 人民政府办公厅 wins over 办公厅.
_ENDINGS = (
    "人民代表大会常务委员会",
    "人民政府办公厅",
    "人民政府办公室",
    "人民代表大会",
    "街道办事处",
    "常务委员会",
    "管理委员会",
    "工作委员会",
    "人民检察院",
    "人民法院",
    "人民政府",
    "党工委",
    "管委会",
    "办公厅",
    "办公室",
    "委员会",
    "办事处",
    "常委会",
    "领导小组",
    "分行",
    "指挥部",
    "联合会",
    "中共中央",
    "国务院",
    "总局",
    "总署",
    "银行",
    "党委",
    "党组",
    "政府",
    "中心",
    "局",
    "厅",
    "部",
    "署",
    "院",
    "委",
)
_BEGINNINGS = ("中共", "中国共产党", "中国", "共青团", "国务院", "全国", "最高", "中华人民共和国", "中央", "国家")
_PLACE_ENDINGS = ("特别行政区", "自治区", "自治州", "自治县", "街道", "省", "市", "县", "区", "旗", "盟", "乡", "镇")
_PLACE = re.compile(r"[\u4e00-\u9fff]{2,7}?(?:特别行政区|自治区|自治州|自治县|街道|省|市|县|区|旗|盟|乡|镇)")
_SEPARATORS = re.compile(r"[、，,\s\u3000]+|(?<=[府厅室会局委部院署心])(?:和|与|及)(?=[\u4e00-\u9fff])")
_NOT_IN_NAME = set("。：:；;？！“”《》（）()「」〔〕[]0123456789第章节条")
_MUNICIPALITIES = ("北京市", "天津市", "上海市", "重庆市")
_CENTRAL_STARTS = ("中共中央", "中国共产党中央", "国务院", "全国人民代表大会", "全国人大", "最高人民", "中华人民共和国")
_CENTRAL_STARTS += ("中央", "国家", "海关总署", "中国人民银行", "中国人民解放军", "全国")
MAX_NAME_LENGTH = 30
MAX_LINE_LENGTH = 90


def _ending_at(name: str) -> str | None:
    return next((ending for ending in _ENDINGS if name.endswith(ending)), None)


def _starts_a_body(text: str) -> bool:
    if text.startswith(_BEGINNINGS):
        return True
    place = _PLACE.match(text)
    return bool(place) and _is_place(place[0]) and not text.startswith(_ENDINGS)


def _is_ministry(name: str) -> bool:
    """财政部, 国家税务总局, 海关总署: national bodies name no place. A bare 县/市 prefix is a cut-off local name."""
    if name.startswith(("县", "市", "省", "区", "乡", "镇")) or name.endswith(("指挥部", "领导小组")):
        return False
    return name.endswith(("部", "总局", "总署", "银行"))


def _ending_overlaps(text: str, cut: int) -> bool:
    """Would cutting at ``cut`` break a longer ending (中共安宁镇委|员会)?"""
    for extra in range(1, 6):
        ending = _ending_at(text[: cut + extra])
        if ending and len(ending) > extra:
            return True
    return False


def _is_branch(text: str) -> bool:
    """'湖北省分行' after '中国农业发展银行' is the bank's branch, not a second body."""
    place = _PLACE.match(text)
    return bool(place) and text.startswith("分", place.end())


def _is_place(token: str) -> bool:
    # 住房和城乡建设局 holds 城乡, and place names do not hold 和.
    return "和" not in token and not token.endswith("城乡") and _ending_at(token[:2]) is None


def split_bodies(chunk: str) -> list[str] | None:
    """A chunk with no separators ('中共河南省委办公厅河南省人民政府办公厅') as its bodies, or None."""
    if not chunk or len(chunk) > MAX_LINE_LENGTH or any(ch in _NOT_IN_NAME for ch in chunk):
        return None
    bodies = []
    start = 0
    for end in range(2, len(chunk) + 1):
        piece = chunk[start:end]
        if _ending_at(piece) is None:
            continue
        rest = chunk[end:]
        if rest and (_ending_overlaps(chunk[start:], end - start) or _is_branch(rest)):
            continue
        if not rest or (_starts_a_body(rest) and not rest.startswith(_ENDINGS)):
            bodies.append(piece)
            start = end
    if start != len(chunk) or not bodies:
        return None
    if any(len(body) > MAX_NAME_LENGTH or len(body) < 2 for body in bodies):
        return None
    return bodies


def is_plausible_body(name: str) -> bool:
    """A body names where it sits (a place, 中共, 国家 ...) or is a national ministry (财政部, 海关总署)."""
    if len(name) < 3 and name not in ("国务院",):
        return False
    return _starts_a_body(name) or _is_ministry(name) or name.endswith("国务院")


def bodies_in_line(line: str) -> list[tuple[str, int]] | None:
    """A line made only of body names ('中共中央办公厅 国务院办公厅'), each with its offset; None otherwise."""
    stripped = line.strip()
    if not stripped or len(stripped) > MAX_LINE_LENGTH:
        return None
    found: list[tuple[str, int]] = []
    position = 0
    for separator in [*_SEPARATORS.finditer(line), None]:
        end = separator.start() if separator else len(line)
        chunk = line[position:end]
        if chunk:
            bodies = split_bodies(chunk)
            if bodies is None:
                return None
            offset = position
            for body in bodies:
                found.append((body, offset))
                offset += len(body)
        position = separator.end() if separator else len(line)
    if not found or not all(is_plausible_body(body) for body, _ in found):
        return None
    return found


def level_of(name: str) -> str | None:
    """中央 / 省 / 市 / 县 / 乡镇街道 from the places a body's name begins with; None when it names none."""
    bare = name.removeprefix("中国共产党").removeprefix("中共")
    if name.startswith(_CENTRAL_STARTS) or bare.startswith(("中央", "国务院")):
        return "中央"
    places = []
    position = 0
    while position < len(bare):
        match = _PLACE.match(bare, position)
        if not match or not _is_place(match[0]):
            break
        places.append(match[0])
        position = match.end()
    if not places:
        return "中央" if _is_ministry(name) else None
    lowest = places[-1]
    if lowest.endswith(("乡", "镇", "街道")):
        return "乡镇街道"
    if lowest.endswith(("县", "区", "旗", "自治县")) and not lowest.endswith(("自治区", "特别行政区")):
        return "县"
    if lowest.endswith(("市", "自治州", "盟")):
        return "省" if lowest in _MUNICIPALITIES else "市"
    return "省"

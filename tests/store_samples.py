"""Real sentences from docs_raw/ and queries over them, shared by the store tests."""

import re
from pathlib import Path

import numpy as np

DOCS_DIR = Path(__file__).resolve().parents[1] / "docs_raw"


def _real_sentences(per_document: int) -> list[str]:
    """The first few full sentences of every document in docs_raw/, in file order."""
    sentences: list[str] = []
    for path in sorted(DOCS_DIR.glob("*.txt")):
        found = re.findall(r"[^。！？；\n]{12,120}[。！？；]", path.read_text(encoding="utf-8"))
        sentences += [s.strip() for s in found if s.strip() not in sentences][:per_document]
    return sentences


SENTENCES = _real_sentences(per_document=4)  # 9 documents -> 36 sentences
IDS = [1000 + 7 * i for i in range(len(SENTENCES))]  # sparse, non-contiguous chunk ids
QUERIES = [
    "乡镇和街道机构改革",
    "开封市乡镇改革",
    "開封市鄉鎮改革的意義是什麼",
    "基层治理体系和治理能力现代化",
    "街道办事处的职能转变",
    "人大工作 街道 人大工作",  # a repeated query term counts twice
    "中心镇 经济发达镇 行政管理体制",
    "编制资源配置",
    "广东省 乡镇街道",
    "综合执法 便民服务",
]


def unit_vectors(n: int, dimension: int, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(n, dimension)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

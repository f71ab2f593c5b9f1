"""Large corpora made from the nine seed documents, for the scale benchmark.

Text: each generated document is a seed document with every run of digits
redrawn and a made-up county name in its title and first line. Documents
therefore clean and chunk like the real ones, while numbers and names grow
the vocabulary with the corpus (BM25 postings get a long tail).

Vectors: the seed sentences are embedded for real once (the "base table").
A chunk's vector is the mean of its sentences' real vectors plus Gaussian
noise, a sentence's is its own real vector plus noise, both normalised; the
noise is drawn from the text itself (hashes of it), so a text has one
vector however the build batches its encoder calls, as with a real model. They
are real embeddings, moved: clustered the way the model clusters this
domain, which is what approximate indexes are sensitive to.
"""

from __future__ import annotations

import re
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from index.ingest.chunk import ChunkingParams, chunk_text
from index.ingest.clean import normalize_for_matching
from index.ingest.corpus import load_corpus
from index.ingest.documents import SourceDocument
from index.ingest.passages import clean_document

_DIGITS = re.compile(r"\d+")
_PIECE = re.compile(r"[^。！？；;!?\n]+")  # NFKC turns ！？； into !?;
# Made-up county names from common place-name characters.
_NAME_CHARS = "安宁平和兴华新东西南北山河江湖清源长永丰泰德福康乐阳城石林桥港溪田云"
# Four characters: 7.7 million names, so that two documents of one template rarely share a title. A chunk's
# embedder input starts with its title; with two-character names (4,800) a fifth of the 1M tier's chunk
# inputs had a twin, the same vector, and nprobe calibration (exact top-10 ids among ties) never converged.
NAME_LENGTH = 4
CHUNK_NOISE = 0.25  # norm of the noise added to a chunk's mean sentence vector
SENTENCE_NOISE = 0.2
NOISE_ROWS = 4096  # a text's noise is the sum of three rows picked by hashes of it: 4096**3 kinds


def _key(normalized: str) -> str:
    """What a sentence (in matching form) is looked up by: digits folded, as they are redrawn."""
    return _DIGITS.sub("0", normalized).strip()


def seed_templates(docs_dir: Path) -> list[tuple[SourceDocument, int]]:
    """The seed documents and how many chunks each makes."""
    templates = []
    for source in load_corpus(docs_dir):
        text, _ = clean_document(source)
        templates.append((source, len(chunk_text(text, ChunkingParams()))))
    return templates


def base_sentences(docs_dir: Path) -> list[str]:
    """Every distinct sentence piece of the cleaned seed documents, in the form the embedder sees."""
    seen: dict[str, str] = {}
    for source in load_corpus(docs_dir):
        text, _ = clean_document(source)
        for piece in _PIECE.findall(text):
            if len(piece.strip()) >= 4:
                normalized = normalize_for_matching(piece.strip())
                seen.setdefault(_key(normalized), normalized)
    return list(seen.values())


def generate_sources(
    templates: list[tuple[SourceDocument, int]], n_chunks: int, *, seed: int = 0
) -> Iterator[SourceDocument]:
    """Documents until about ``n_chunks`` chunks: seed documents with digits and county names redrawn."""
    rng = np.random.default_rng(seed)
    made = 0
    number = 0
    while made < n_chunks:
        template, chunks = templates[number % len(templates)]
        number += 1
        name = "".join(rng.choice(list(_NAME_CHARS), NAME_LENGTH)) + str(rng.choice(["县", "市", "区"]))
        digits = iter(rng.integers(1, 10_000, size=4096).tolist())
        text = _DIGITS.sub(lambda _, drawn=digits: str(next(drawn, 7)), template.raw_text)
        yield SourceDocument(
            doc_id=f"gen-{number:07d}",
            title=f"{name}{template.title}",
            source=f"gen-{number:07d}.txt",
            raw_text=f"{name}。\n{text}",
        )
        made += chunks


class TimedSources:
    """Documents from a generator, with the time spent making them: a streamed build reads them as it goes,
    so making them is inside the build's time, and the benchmark takes it out again."""

    def __init__(self, sources: Iterator[SourceDocument]) -> None:
        self._sources = sources
        self.seconds = 0.0

    def __iter__(self) -> Iterator[SourceDocument]:
        while True:
            mark = time.perf_counter()
            source = next(self._sources, None)
            self.seconds += time.perf_counter() - mark
            if source is None:
                return
            yield source


@dataclass
class SyntheticEmbedder:
    """Passages embedded by moving real sentence vectors (see the module doc); questions for real.

    It carries the real embedder's name, so the service, embedding questions
    with the real model, loads the index as its own.
    """

    name: str
    dimension: int
    base_keys: dict[str, int]
    base_vectors: np.ndarray
    real: object | None = None
    max_tokens: int = 512
    noise_table: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.noise_table = np.random.default_rng(0).standard_normal((NOISE_ROWS, self.dimension)).astype(np.float32)

    @classmethod
    def from_table(cls, path: Path, name: str, real=None) -> SyntheticEmbedder:
        table = np.load(path, allow_pickle=False)
        sentences = table["sentences"].tobytes().decode("utf-8").split("\n")
        keys = {_key(s): i for i, s in enumerate(sentences)}  # the table holds matching forms
        return cls(name, int(table["vectors"].shape[1]), keys, table["vectors"], real)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self.real.embed_queries(texts) if self.real is not None else self.embed_passages(texts)

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        noise = np.empty((len(texts), self.dimension), dtype=np.float32)
        scales = np.empty(len(texts), dtype=np.float32)
        table = self.noise_table
        for i, text in enumerate(texts):
            # The noise is a function of the text alone, as a real model's vector is: a build that groups
            # its encoder calls otherwise (in batches) gets the same vectors.
            raw = text.encode("utf-8")
            first, second = zlib.crc32(raw), zlib.adler32(raw)
            rows = [r for r in map(self.base_keys.get, map(_key, _PIECE.findall(text))) if r is not None]
            if not rows:  # a heading line alone: some sentence of the corpus
                rows = [first % len(self.base_vectors)]
            out[i] = self.base_vectors[rows[0]] if len(rows) == 1 else self.base_vectors[rows].mean(axis=0)
            scales[i] = CHUNK_NOISE if len(rows) > 1 else SENTENCE_NOISE
            noise[i] = table[first % NOISE_ROWS] + table[(first >> 12) % NOISE_ROWS] + table[second % NOISE_ROWS]
        out += noise * (scales / np.linalg.norm(noise, axis=1))[:, None]
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def write_base_table(path: Path, docs_dir: Path, embedder) -> int:
    """Embed the seed sentences for real, once, for every tier to share."""
    sentences = base_sentences(docs_dir)
    vectors = embedder.embed_passages(sentences)
    with path.open("wb") as handle:
        np.savez(handle, sentences=np.frombuffer("\n".join(sentences).encode("utf-8"), np.uint8), vectors=vectors)
    return len(sentences)

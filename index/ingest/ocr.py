"""OCR of page images: orientation and skew corrected, lines recognised, paragraphs rebuilt.

Two engines behind one small protocol: ``rapidocr`` (PP-OCR models on ONNX
Runtime, inside the pip wheel, run by ``index.ingest.ocr_rapid``: the default,
nothing to install from apt) and ``tesseract`` (Debian's tesseract-ocr with
chi_sim, through pytesseract).
Nothing is downloaded: a missing engine raises ``ConfigurationError`` naming
what to install.

Each page comes back with its text and a confidence in [0, 1]: the mean of the
recognised lines' confidences, weighted by their length.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache
from typing import Protocol

import numpy as np

from index.errors import ConfigurationError
from index.ingest.ocr_lines import OcrLine

logger = logging.getLogger(__name__)

ENGINES = ("rapidocr", "tesseract")
# Below this, a page may be upside down: it is read again turned by 180 degrees, the better kept.
RETRY_CONFIDENCE = 0.75
MIN_LINE_CONFIDENCE = 0.3
_SENTENCE_ENDS = tuple("。！？；：”」』）!?;:)")
_NOISE = " .,·*'`"
MAX_SKEW_DEG = 6.0
SKEW_STEP_DEG = 0.25


@dataclass(frozen=True)
class OcrPage:
    text: str
    confidence: float  # 0 for a page without text
    lines: int
    rotation: int  # degrees the page was turned to read it (0, 90, 180, 270)
    skew_deg: float


class OcrEngine(Protocol):
    name: str

    def lines(self, image: np.ndarray) -> list[OcrLine]:
        """The text lines of a greyscale uint8 page image, in any order."""


# ------------------------------------------------------------------ engines


class TesseractEngine:
    name = "tesseract"

    def __init__(self, lang: str = "chi_sim") -> None:
        try:
            import pytesseract

            pytesseract.get_tesseract_version()
        except Exception as exc:
            raise ConfigurationError(
                "the tesseract OCR engine needs Debian's tesseract-ocr and tesseract-ocr-chi-sim, and pytesseract"
            ) from exc
        self._tesseract = pytesseract
        self._lang = lang

    def lines(self, image: np.ndarray) -> list[OcrLine]:
        data = self._tesseract.image_to_data(
            image, lang=self._lang, config="--psm 6", output_type=self._tesseract.Output.DICT
        )
        grouped: dict[tuple[int, int, int], list[int]] = {}
        for i, word in enumerate(data["text"]):
            if word.strip() and float(data["conf"][i]) >= 0:
                grouped.setdefault((data["block_num"][i], data["par_num"][i], data["line_num"][i]), []).append(i)
        lines = []
        for indices in grouped.values():
            text = "".join(data["text"][i] for i in indices)
            weights = [len(data["text"][i]) for i in indices]
            conf = sum(float(data["conf"][i]) * w for i, w in zip(indices, weights, strict=True)) / sum(weights)
            x0 = min(data["left"][i] for i in indices)
            y0 = min(data["top"][i] for i in indices)
            x1 = max(data["left"][i] + data["width"][i] for i in indices)
            y1 = max(data["top"][i] + data["height"][i] for i in indices)
            lines.append(OcrLine(text, conf / 100, (x0, y0, x1, y1)))
        return lines


@cache
def engine(name: str = "rapidocr") -> OcrEngine:
    """One engine per process (the models load once); its methods may be called from several threads at once."""
    if name == "rapidocr":
        from index.ingest.ocr_rapid import RapidOcrEngine

        return RapidOcrEngine()
    if name == "tesseract":
        return TesseractEngine()
    raise ConfigurationError(f"unknown OCR engine {name!r}; choose one of {', '.join(ENGINES)}")


# ------------------------------------------------------- the page, upright


def ocr_image(image: np.ndarray, ocr: OcrEngine) -> OcrPage:
    """Read one page image (greyscale uint8, or RGB): turned upright, deskewed, lines to paragraphs."""
    grey = to_grey(image)
    rotation = 90 if _sideways(grey) else 0
    if rotation:
        grey = np.ascontiguousarray(np.rot90(grey, -1))
    skew = estimate_skew(grey)
    if abs(skew) >= SKEW_STEP_DEG:
        grey = rotate(grey, skew)
    page = _read(grey, ocr)
    if page.lines and page.confidence < RETRY_CONFIDENCE:
        turned = _read(np.ascontiguousarray(grey[::-1, ::-1]), ocr)
        if turned.confidence > page.confidence:
            page, rotation = turned, (rotation + 180) % 360
    return OcrPage(page.text, page.confidence, page.lines, rotation, round(skew, 2))


def _read(grey: np.ndarray, ocr: OcrEngine) -> OcrPage:
    # A rule, a stamp's border or a black box reads as "■" or "—": only lines with a letter, digit or character count.
    lines = [
        line
        for line in ocr.lines(grey)
        if any(ch.isalnum() for ch in line.text) and line.confidence >= MIN_LINE_CONFIDENCE
    ]
    chars = sum(len(line.text) for line in lines)
    confidence = sum(line.confidence * len(line.text) for line in lines) / chars if chars else 0.0
    return OcrPage(paragraphs(lines), round(confidence, 4), len(lines), 0, 0.0)


def to_grey(image: np.ndarray) -> np.ndarray:
    if image.ndim == 3:
        image = (image[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)).astype(np.uint8)
    return np.ascontiguousarray(image, dtype=np.uint8)


def _ink(grey: np.ndarray, long_side: int = 1000) -> np.ndarray:
    """A small binary image, 1 where there is ink (Otsu threshold)."""
    import cv2

    scale = long_side / max(grey.shape)
    small = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else grey
    _, binary = cv2.threshold(small, 0, 1, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    return binary.astype(np.float32)


def _profile_score(ink: np.ndarray, angle: float) -> float:
    """How sharply the ink falls into horizontal lines when turned by ``angle`` degrees."""
    import cv2

    h, w = ink.shape
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    turned = cv2.warpAffine(ink, matrix, (w, h), flags=cv2.INTER_NEAREST, borderValue=0)
    rows = turned.sum(axis=1)
    return float(np.square(np.diff(rows)).sum())


def estimate_skew(grey: np.ndarray) -> float:
    """The angle (degrees, counter-clockwise positive as PIL's rotate) the text lines are tilted by."""
    ink = _ink(grey)
    if ink.sum() < 50:
        return 0.0
    angles = np.arange(-MAX_SKEW_DEG, MAX_SKEW_DEG + 1e-9, 1.0)
    coarse = max(angles, key=lambda a: _profile_score(ink, a))
    fine = np.arange(coarse - 1, coarse + 1 + 1e-9, SKEW_STEP_DEG)
    # Turning by -angle straightens the lines, so the tilt is minus the best correction.
    return -float(max(fine, key=lambda a: _profile_score(ink, a)))


def _sideways(grey: np.ndarray) -> bool:
    """Whether the text lines run vertically (a page scanned turned by 90 degrees)."""
    ink = _ink(grey, 600)
    if ink.sum() < 50:
        return False
    upright = max(_profile_score(ink, a) for a in (-3.0, 0.0, 3.0))
    turned = np.ascontiguousarray(ink.T)
    across = max(_profile_score(turned, a) for a in (-3.0, 0.0, 3.0))
    # Normalised by the profile length: a portrait page has more rows than columns.
    return across / ink.shape[1] > 1.5 * upright / ink.shape[0]


def rotate(grey: np.ndarray, skew_deg: float) -> np.ndarray:
    """The page turned back by its skew, with white filling the corners."""
    import cv2

    h, w = grey.shape
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), -skew_deg, 1.0)
    return cv2.warpAffine(grey, matrix, (w, h), flags=cv2.INTER_LINEAR, borderValue=255)


# --------------------------------------------------------- lines into text


def paragraphs(lines: list[OcrLine]) -> str:
    """Lines in reading order, joined into paragraphs; Chinese lines are joined without a space.

    A line opens a paragraph when it starts indented (the two-character indent of Chinese
    documents), or when the line before it ended a sentence short of the right margin, or fell
    far short of it (a heading). A full line that merely holds narrower digits does not.
    """
    rows = _rows(lines)
    if not rows:
        return ""
    height = float(np.median([line.box[3] - line.box[1] for row in rows for line in row]))
    # Percentiles, not extremes: a stray box in the margin must not move the margins.
    left = float(np.percentile([row[0].box[0] for row in rows], 10))
    right = float(np.percentile([row[-1].box[2] for row in rows], 90))
    out: list[str] = []
    previous: tuple[float, str] | None = None
    for row in rows:
        text = _row_text(row, height)
        if out and previous is not None and not _opens_paragraph(row, previous, left, right, height):
            out[-1] += text
        else:
            out.append(text)
        previous = (row[-1].box[2], text)
    return "\n".join(out)


def _opens_paragraph(row: list[OcrLine], previous: tuple[float, str], left: float, right: float, height: float) -> bool:
    end, text = previous
    if row[0].box[0] > left + 1.2 * height:
        return True
    ended_sentence = text.rstrip(_NOISE).endswith(_SENTENCE_ENDS)
    return (ended_sentence and end < right - 2.0 * height) or end < right - 0.25 * (right - left)


def _rows(lines: list[OcrLine]) -> list[list[OcrLine]]:
    """Boxes grouped into rows by vertical overlap, top to bottom, each row left to right."""
    rows: list[list[OcrLine]] = []
    for line in sorted(lines, key=lambda item: (item.box[1] + item.box[3]) / 2):
        middle = (line.box[1] + line.box[3]) / 2
        if rows:
            last = rows[-1][-1].box
            if last[1] < middle < last[3]:
                rows[-1].append(line)
                continue
        rows.append([line])
    return [sorted(row, key=lambda item: item.box[0]) for row in rows]


def _row_text(row: list[OcrLine], height: float) -> str:
    text = row[0].text.strip()
    for before, line in zip(row, row[1:], strict=False):
        gap = line.box[0] - before.box[2]
        text += (" " if gap > 1.5 * height else "") + line.text.strip()
    return text

"""A recognised line of a page: what every OCR engine returns, and what paragraphs are rebuilt from."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OcrLine:
    text: str
    confidence: float
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in the page image

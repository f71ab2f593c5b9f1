"""Seed text laid out on A4 pages and rendered as a scanner would: a CJK font, a resolution,
optionally a slight skew and speckle. Used by the OCR benchmark and the tests.

The layout is in points, so a page holds the same characters at every resolution
(14 pt text, 32 characters a line, 30 lines a page, a two-character indent per paragraph).
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass
from pathlib import Path

FONT_PATHS = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
)
A4_POINTS = (595, 842)
MARGIN_POINTS = 72
FONT_POINTS = 14
LINE_SPACING = 1.6


@dataclass(frozen=True)
class Scan:
    dpi: int = 200
    skew_deg: float = 0.0
    speckle: float = 0.0  # share of the page's pixels turned to black specks
    rotate: int = 0  # a page fed in sideways or upside down: 90, 180, 270
    seed: int = 0


def font_path() -> str:
    for path in FONT_PATHS:
        if Path(path).exists():
            return path
    raise FileNotFoundError("no CJK font: apt-get install fonts-wqy-microhei")


def layout(text: str, *, max_pages: int | None = None) -> list[list[str]]:
    """The text's lines, page by page: paragraphs wrapped at 32 characters, each opening with an indent."""
    width = (A4_POINTS[0] - 2 * MARGIN_POINTS) // FONT_POINTS
    per_page = int((A4_POINTS[1] - 2 * MARGIN_POINTS) // (FONT_POINTS * LINE_SPACING))
    lines: list[str] = []
    for paragraph in (p.strip() for p in text.split("\n")):
        if not paragraph:
            continue
        paragraph = "\u3000\u3000" + paragraph
        lines.extend(paragraph[i : i + width] for i in range(0, len(paragraph), width))
    pages = [lines[i : i + per_page] for i in range(0, len(lines), per_page)]
    return pages[:max_pages] if max_pages else pages


def render_page(lines: list[str], scan: Scan):
    """One page as a greyscale PIL image."""
    from PIL import Image, ImageDraw, ImageFilter, ImageFont

    scale = scan.dpi / 72
    size = (round(A4_POINTS[0] * scale), round(A4_POINTS[1] * scale))
    image = Image.new("L", size, 255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(font_path(), round(FONT_POINTS * scale))
    y = MARGIN_POINTS * scale
    for line in lines:
        draw.text((MARGIN_POINTS * scale, y), line, font=font, fill=20)
        y += FONT_POINTS * LINE_SPACING * scale
    if scan.skew_deg:
        image = image.rotate(scan.skew_deg, resample=Image.Resampling.BICUBIC, fillcolor=255)
    if scan.speckle:
        _speckle(image, scan.speckle, random.Random(scan.seed))
        image = image.filter(ImageFilter.GaussianBlur(0.6))
    if scan.rotate:
        image = image.rotate(scan.rotate, expand=True)
    return image


def _speckle(image, share: float, rng: random.Random) -> None:
    from PIL import ImageDraw

    draw = ImageDraw.Draw(image)
    width, height = image.size
    for _ in range(int(share * width * height / 3)):
        x, y = rng.randrange(width), rng.randrange(height)
        r = rng.choice((0, 1, 1, 2))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=rng.randrange(0, 90))


def page_text(lines: list[str]) -> str:
    """What the page says, without the layout's indents (the reference for error rates)."""
    return "".join(line.replace("\u3000", "") for line in lines)


def image_bytes(image, fmt: str = "PNG", dpi: int = 200) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, dpi=(dpi, dpi))
    return buffer.getvalue()


def scanned_pdf(pages: list, dpi: int) -> bytes:
    """Page images as an image-only PDF, as a scanner writes it."""
    buffer = io.BytesIO()
    first, *rest = [page.convert("L") for page in pages]
    first.save(buffer, "PDF", save_all=True, append_images=rest, resolution=float(dpi))
    return buffer.getvalue()

"""Images (photos and scans: PNG, JPEG, TIFF, BMP) read by OCR; each frame of a multi-page TIFF is a page."""

from __future__ import annotations

import logging
from io import BytesIO

import numpy as np

from index.ingest.readers import ocr_pages
from index.ingest.readers.base import DamagedFileError, FileTooLargeError, ReadDocument

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def read_image(data: bytes, *, on_ocr_start: ocr_pages.OcrStart | None = None) -> ReadDocument:
    frames = _frames(data)
    recognised = ocr_pages.read_pages(_decoded(data, len(frames)), len(frames), on_ocr_start)
    texts = tuple(page.text if page.lines else "" for page in recognised)
    if not any(text.strip() for text in texts):
        raise ocr_pages.nothing_recognised("image")
    confidence = tuple(page.confidence if page.lines else None for page in recognised)
    return ReadDocument("\n".join(texts), None, texts, confidence, ocr_pages.summary(recognised))


def _open(data: bytes):
    from PIL import Image, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = ocr_pages.MAX_PAGE_PIXELS  # refused before decoding, not after
    try:
        return Image.open(BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise FileTooLargeError(
            f"the image has too many pixels; images up to {ocr_pages.MAX_PAGE_PIXELS // 1_000_000} megapixels are read"
        ) from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DamagedFileError("not a readable image file; it may be damaged or of another type") from exc


def _frames(data: bytes) -> list[int]:
    """The frame numbers, each frame's size checked, before anything is decoded."""
    image = _open(data)
    try:
        count = getattr(image, "n_frames", 1)
        ocr_pages.check_page_count(count)
        for frame in range(count):
            image.seek(frame)
            ocr_pages.check_pixels(*image.size)
    except (EOFError, OSError) as exc:
        raise DamagedFileError("the image file is incomplete; it may be damaged") from exc
    return list(range(count))


def _decoded(data: bytes, count: int):
    from PIL import ImageOps

    image = _open(data)
    for frame in range(count):
        try:
            image.seek(frame)
            # A phone photo says in its EXIF how it was held: turned upright first.
            upright = ImageOps.exif_transpose(image.convert("RGB") if image.mode not in ("L", "RGB") else image)
            grey = np.asarray(upright.convert("L"))
        except (OSError, ValueError, SyntaxError) as exc:
            raise DamagedFileError(f"page {frame + 1} of the image cannot be decoded; it may be damaged") from exc
        yield grey

"""OFD (GB/T 33190, the national e-document format): a zip of XML pages read in reading order.

Each page's text objects are placed by their boundaries, grouped into lines top
to bottom and left to right, and lines into paragraphs; a line set in a font
clearly larger than the page's body text is a heading. A page with no text but
images (a scanned OFD) is read by OCR. Dropped: signatures and seals,
annotations, vector graphics, fonts, attachments.
"""

from __future__ import annotations

import logging
import posixpath
import statistics
import zipfile
from io import BytesIO
from xml.etree import ElementTree

from index.ingest.ocr import OcrLine, paragraphs
from index.ingest.readers import ocr_pages
from index.ingest.readers.base import DamagedFileError, EncryptedFileError, FileTooLargeError, ReadDocument

logger = logging.getLogger(__name__)

HEADING_RATIO = 1.25  # a font this much larger than the page's median text is a heading
MAX_XML_BYTES = 50_000_000  # one page's XML, uncompressed
MAX_PAGES = 2_000


def read_ofd(data: bytes, *, on_ocr_start: ocr_pages.OcrStart | None = None) -> ReadDocument:
    try:
        archive = zipfile.ZipFile(BytesIO(data))
        names = set(archive.namelist())
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise DamagedFileError("not a valid OFD file (an OFD is a zip archive); it may be damaged") from exc
    if "OFD.xml" not in names:
        raise DamagedFileError("not a valid OFD file: it has no OFD.xml")
    if any(name.lower().endswith("encryptions.xml") for name in names):
        raise EncryptedFileError("the OFD file is encrypted; upload a copy without encryption")
    try:
        root = _xml(archive, "OFD.xml")
        document_path = _path("", _text(root, "DocRoot"))
        title = _text(root, "Title") or None
        document = _xml(archive, document_path)
        page_paths = [
            _path(document_path, page.get("BaseLoc", "")) for page in _all(document, "Page") if page.get("BaseLoc")
        ]
        if len(page_paths) > MAX_PAGES:
            raise FileTooLargeError(f"the OFD file has {len(page_paths)} pages; at most {MAX_PAGES} are read")
        media = _media(archive, document_path, document)
        pages = [_page(archive, path, media) for path in page_paths]
    except (KeyError, ElementTree.ParseError, zipfile.BadZipFile, ValueError) as exc:
        raise DamagedFileError("the OFD file is damaged: a part of it is missing or unreadable") from exc
    return _with_ocr(pages, title, on_ocr_start)


def _with_ocr(pages: list[tuple[str, list[bytes]]], title, on_ocr_start) -> ReadDocument:
    texts: list[str] = [text for text, _ in pages]
    confidence: list[float | None] = [None] * len(pages)
    scanned = [i for i, (text, images) in enumerate(pages) if not text.strip() and images]
    note = f"OFD: {len(pages)} pages"
    if scanned:
        recognised = ocr_pages.read_pages((_decoded(pages[i][1][0]) for i in scanned), len(scanned), on_ocr_start)
        for index, page in zip(scanned, recognised, strict=True):
            if page.lines:
                texts[index], confidence[index] = page.text, page.confidence
        note = ocr_pages.summary(recognised, text_pages=len(pages) - len(scanned))
    return ReadDocument("\n".join(texts), title, tuple(texts), tuple(confidence), note)


def _decoded(image: bytes):
    import numpy as np
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = ocr_pages.MAX_PAGE_PIXELS
    try:
        with Image.open(BytesIO(image)) as opened:
            ocr_pages.check_pixels(*opened.size)
            return np.asarray(opened.convert("L"))
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise DamagedFileError("an image in the OFD file cannot be decoded") from exc


# ------------------------------------------------------------------ XML


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _all(element, name: str):
    return (child for child in element.iter() if _local(child.tag) == name)


def _text(element, name: str) -> str:
    found = next(_all(element, name), None)
    return (found.text or "").strip() if found is not None else ""


def _path(base_file: str, location: str) -> str:
    """A location inside the archive: absolute ("/Doc_0/...") or relative to the referring file's folder."""
    location = location.strip().replace("\\", "/")
    if location.startswith("/"):
        return posixpath.normpath(location.lstrip("/"))
    return posixpath.normpath(posixpath.join(posixpath.dirname(base_file), location))


def _xml(archive: zipfile.ZipFile, name: str):
    info = archive.getinfo(name)
    if info.file_size > MAX_XML_BYTES:
        raise FileTooLargeError(f"a part of the OFD file ({name}) is larger than {MAX_XML_BYTES // 1_000_000} MB")
    return ElementTree.fromstring(archive.read(name))


def _media(archive: zipfile.ZipFile, document_path: str, document) -> dict[str, str]:
    """Image resource id -> its file in the archive, from the document's resource files."""
    media: dict[str, str] = {}
    for tag in ("PublicRes", "DocumentRes"):
        for res in _all(document, tag):
            res_path = _path(document_path, res.text or "")
            if res_path not in archive.namelist():
                continue
            resources = _xml(archive, res_path)
            base = resources.get("BaseLoc", "")
            folder = _path(res_path, base) + "/" if base else posixpath.dirname(res_path) + "/"
            for item in _all(resources, "MultiMedia"):
                file = _text(item, "MediaFile")
                if item.get("ID") and file:
                    media[item.get("ID")] = _path(folder + "x", file)
    return media


def _page(archive: zipfile.ZipFile, path: str, media: dict[str, str]) -> tuple[str, list[bytes]]:
    """The page's text, and its images (for OCR when it has no text)."""
    page = _xml(archive, path)
    lines, sizes = [], []
    for obj in _all(page, "TextObject"):
        text = "".join(code.text or "" for code in _all(obj, "TextCode")).strip()
        box = [float(v) for v in (obj.get("Boundary") or "0 0 0 0").split()[:4]]
        if not text or len(box) < 4:
            continue
        size = float(obj.get("Size") or box[3] or 1)
        lines.append((OcrLine(text, 1.0, (box[0], box[1], box[0] + box[2], box[1] + box[3])), size))
        sizes.append(size)
    images = [
        archive.read(media[obj.get("ResourceID")])
        for obj in _all(page, "ImageObject")
        if obj.get("ResourceID") in media and media[obj.get("ResourceID")] in archive.namelist()
    ]
    return _page_text(lines, sizes), images


def _page_text(lines: list[tuple[OcrLine, float]], sizes: list[float]) -> str:
    if not lines:
        return ""
    body = statistics.median(sizes)
    out: list[str] = []
    run: list[OcrLine] = []
    heading_box = None
    for line, size in sorted(lines, key=lambda item: (item[0].box[1], item[0].box[0])):
        if size < HEADING_RATIO * body:
            run.append(line)
            heading_box = None
            continue
        if run:
            out.append(paragraphs(run))
            run = []
        middle = (line.box[1] + line.box[3]) / 2
        if heading_box is not None and heading_box[1] < middle < heading_box[3]:
            out[-1] += line.text  # the same heading line, set as several text objects
        else:
            out.append(f"# {line.text}")
        heading_box = line.box
    if run:
        out.append(paragraphs(run))
    return "\n".join(out)

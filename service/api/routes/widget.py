"""The chat widget's static files and the demo page, shipped inside the package."""

import base64
import hashlib
import re
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

WIDGET_DIR = Path(__file__).resolve().parents[2] / "widget"
router = APIRouter(include_in_schema=False)
CACHE = {"Cache-Control": "public, max-age=300"}
_INLINE = re.compile(r"<(style|script)(?![^>]*\bsrc=)[^>]*>(.*?)</\1>", re.S | re.I)


def _file(name: str, media_type: str) -> FileResponse:
    return FileResponse(WIDGET_DIR / name, media_type=media_type, headers=CACHE)


def page_policy(html: str) -> str:
    """The demo page's Content-Security-Policy: its own inline blocks by hash, the widget from 'self', nothing else."""
    hashes: dict[str, list[str]] = {"style": [], "script": []}
    for tag, body in _INLINE.findall(html):
        digest = base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode()
        hashes[tag.lower()].append(f"'sha256-{digest}'")
    return (
        f"default-src 'none'; script-src 'self' {' '.join(hashes['script'])}; "
        f"style-src 'self' {' '.join(hashes['style'])}; connect-src 'self'; img-src 'self' data:; "
        "font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ).replace("  ", " ")


@router.get("/widget.js")
def widget_script() -> FileResponse:
    return _file("widget.js", "text/javascript; charset=utf-8")


@router.get("/widget.css")
def widget_styles() -> FileResponse:
    return _file("widget.css", "text/css; charset=utf-8")


@router.get("/")
def demo_page() -> Response:
    html = (WIDGET_DIR / "index.html").read_text(encoding="utf-8")
    headers = {**CACHE, "Content-Security-Policy": page_policy(html)}
    return Response(html, media_type="text/html; charset=utf-8", headers=headers)

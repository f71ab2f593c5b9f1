"""The chat widget's static files and the demo page, shipped inside the package."""

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

WIDGET_DIR = Path(__file__).resolve().parents[2] / "widget"
router = APIRouter(include_in_schema=False)


def _file(name: str, media_type: str) -> FileResponse:
    return FileResponse(WIDGET_DIR / name, media_type=media_type, headers={"Cache-Control": "public, max-age=300"})


@router.get("/widget.js")
def widget_script() -> FileResponse:
    return _file("widget.js", "text/javascript; charset=utf-8")


@router.get("/widget.css")
def widget_styles() -> FileResponse:
    return _file("widget.css", "text/css; charset=utf-8")


@router.get("/")
def demo_page() -> FileResponse:
    return _file("index.html", "text/html; charset=utf-8")

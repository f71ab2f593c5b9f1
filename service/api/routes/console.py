"""The admin console at /admin: static files shipped inside the package, talking to the public API only.

The page allows scripts and styles from 'self' and nothing inline (its
Content-Security-Policy is the widget demo page's, computed from the HTML: it
has no inline blocks, so no hashes). The token never reaches the server in a
URL: the console keeps it in sessionStorage and sends it as a header.
"""

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

from index.errors import NotFoundError
from service.api.routes.widget import page_policy

CONSOLE_DIR = Path(__file__).resolve().parents[2] / "console"
router = APIRouter(prefix="/admin", include_in_schema=False)
# Revalidated on every load: a new release's console.js never meets an old index.html.
NO_CACHE = {"Cache-Control": "no-cache"}


@router.get("")
def console_page() -> Response:
    html = (CONSOLE_DIR / "index.html").read_text(encoding="utf-8")
    headers = {**NO_CACHE, "Content-Security-Policy": page_policy(html)}
    return Response(html, media_type="text/html; charset=utf-8", headers=headers)


MEDIA_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
# The scripts and stylesheet by name, listed once: a request names one of them or gets a 404, never a path.
ASSETS = {path.name: MEDIA_TYPES[path.suffix] for path in CONSOLE_DIR.iterdir() if path.suffix in MEDIA_TYPES}


@router.get("/{name}")
def console_asset(name: str) -> FileResponse:
    if name not in ASSETS:
        raise NotFoundError(f"no console file {name!r}")
    return FileResponse(CONSOLE_DIR / name, media_type=ASSETS[name], headers=NO_CACHE)

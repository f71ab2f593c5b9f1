"""The one JSON response class: Chinese as UTF-8 text, never ``\\uXXXX`` escapes.

Starlette's JSONResponse and pydantic's fast path both write UTF-8 today;
this class makes it the app's stated default (create_app, the error handlers,
the OpenAI-compatible errors) rather than a property of whichever version is
installed. ``application/json`` is UTF-8 by definition (RFC 8259), so no
charset parameter is added.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi.responses import JSONResponse


def utf8_json(content: Any) -> str:
    """Compact JSON text with non-ASCII characters as themselves."""
    return json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


class Utf8JSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return utf8_json(content).encode("utf-8")

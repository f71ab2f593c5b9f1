"""Reading the LawRefBook/Laws corpus from its local mirror, a bare git directory (``git show``, no work tree).

Shared by ``eval.bench_metadata`` and ``eval.bench_validity``. Each Markdown law carries an issuing-history block
under its title and a row in ``db.sqlite3`` (table ``law``: level, name, publish, valid_from, expired, ...).
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import tempfile
from pathlib import Path

from index.ingest.clean import clean_text

DEFAULT_MIRROR = Path("/work/.mirror/LawRefBook+Laws/repo")
LEVELS = ("法律", "宪法", "行政法规", "部门规章", "司法解释")
_HISTORY_ENTRY = re.compile(r"^\d{4}年\d{1,2}月\d{1,2}日")
_STEM = re.compile(r"^(.*)\((\d{4}-\d{2}-\d{2})\)$")


def git(mirror: Path, *args: str) -> bytes:
    return subprocess.run(["git", "--git-dir", str(mirror), *args], capture_output=True, check=True).stdout


def law_rows(mirror: Path) -> list[tuple]:
    """Every row of the ``law`` table as (name, publish, valid_from, level, expired)."""
    with tempfile.TemporaryDirectory() as scratch:
        database = Path(scratch) / "db.sqlite3"
        database.write_bytes(git(mirror, "show", "HEAD:db.sqlite3"))
        with sqlite3.connect(database) as connection:
            return connection.execute("select name, publish, valid_from, level, expired from law").fetchall()


def law_files(mirror: Path) -> list[dict]:
    """The main collection's laws that the database lists, each with its row (DLC and 案例 left out)."""
    by_key = {
        (name, publish): (valid_from, level, expired) for name, publish, valid_from, level, expired in law_rows(mirror)
    }
    names = git(mirror, "ls-tree", "-r", "-z", "--name-only", "HEAD").decode("utf-8").split("\0")
    laws = []
    for path in sorted(names):
        parts = path.split("/")
        if not path.endswith(".md") or parts[0] == "DLC" or len(parts) < 2:
            continue
        stem = _STEM.match(parts[-1][:-3])
        if not stem or (stem[1], stem[2]) not in by_key:
            continue
        valid_from, level, expired = by_key[(stem[1], stem[2])]
        if level in LEVELS:
            laws.append({"path": path, "name": stem[1], "publish": stem[2], "valid_from": valid_from, "level": level,
                         "expired": bool(expired)})  # fmt: skip
    return laws


def read_law(mirror: Path, path: str) -> str:
    return git(mirror, "show", f"HEAD:{path}").decode("utf-8", errors="replace")


def render(markdown: str) -> tuple[str, str, list[str]]:
    """(title, text as the national database prints it, history lines) from one LawRefBook file."""
    head, _, body = markdown.partition("<!-- INFO END -->")
    head_lines = [line.strip() for line in head.splitlines() if line.strip() and not line.startswith("<!--")]
    titles = [line.lstrip("#").strip() for line in head_lines if line.startswith("#")]
    history = [line for line in head_lines if _HISTORY_ENTRY.match(line)]
    title = titles[0] if titles else ""
    body_lines = [line.lstrip("#").strip() for line in body.splitlines()]
    parts = [title]
    if history:
        parts.append("（" + "　".join(history) + "）")
    parts.extend(line for line in body_lines if line)
    return title, clean_text("\n".join(parts)), history

"""Legacy Word (.doc) and WPS (.wps) files: converted to DOCX by LibreOffice (headless), then read as DOCX,
so heading styles and tables are kept; without LibreOffice, a .doc is read by antiword (plain text).

Kingsoft WPS Writer's .wps files are the Word 97 binary format under another name, and
LibreOffice reads them as such. Dropped: everything the DOCX reader drops, plus
embedded objects, text boxes LibreOffice places outside the text flow, and revisions.
"""

from __future__ import annotations

import ctypes
import logging
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from index.errors import ConfigurationError
from index.ingest.readers.base import OLE_MAGIC, DamagedFileError, EncryptedFileError, ReadDocument
from index.ingest.readers.docx import read_docx

logger = logging.getLogger(__name__)

CONVERT_TIMEOUT_S = 45.0
_GENERIC_TITLES = {"word document", "microsoft word document", "文档", "untitled"}
_INSTALL = "apt-get install libreoffice-writer-nogui (or antiword, for .doc only)"


def read_doc(data: bytes) -> ReadDocument:
    return _read_word_binary(data, "doc", "Word")


def read_wps(data: bytes) -> ReadDocument:
    return _read_word_binary(data, "wps", "WPS")


def _read_word_binary(data: bytes, suffix: str, kind: str) -> ReadDocument:
    if data.startswith(b"PK\x03\x04"):  # a DOCX saved under the old name
        return read_docx(data)
    if not data.startswith(OLE_MAGIC):
        raise DamagedFileError(f"not a valid .{suffix} file; it may be damaged, or another format renamed")
    office = shutil.which("soffice") or shutil.which("libreoffice")
    if office:
        document = read_docx(_convert(office, data, suffix, kind))
        title = document.title if (document.title or "").strip().lower() not in _GENERIC_TITLES else None
        return ReadDocument(document.text, title, summary=f"converted from .{suffix} by LibreOffice")
    if suffix == "doc" and shutil.which("antiword"):
        return ReadDocument(_antiword(data), None, summary="read from .doc by antiword (headings not kept)")
    raise ConfigurationError(f"reading .{suffix} files needs LibreOffice on the server: {_INSTALL}")


def _convert(office: str, data: bytes, suffix: str, kind: str) -> bytes:
    with tempfile.TemporaryDirectory(prefix="policyqa-office-") as work:
        folder = Path(work)
        # As .doc whatever it was called: WPS files are Word binaries, and LibreOffice picks its filter by name.
        source = folder / "document.doc"
        source.write_bytes(data)
        command = [
            office, "--headless", "--norestore", "--nolockcheck",
            f"-env:UserInstallation={(folder / 'profile').as_uri()}",
            "--convert-to", "docx", "--outdir", str(folder / "out"), str(source),
        ]  # fmt: skip
        try:
            subprocess.run(
                command, capture_output=True, timeout=CONVERT_TIMEOUT_S, check=False, preexec_fn=_die_with_parent
            )
        except subprocess.TimeoutExpired as exc:
            raise DamagedFileError(f"the {kind} file could not be converted within {CONVERT_TIMEOUT_S:g} s") from exc
        converted = folder / "out" / "document.docx"
        if not converted.is_file() or converted.stat().st_size == 0:
            raise DamagedFileError(
                f"the {kind} file could not be opened; it may be damaged or password-protected:"
                " open it in WPS or Word and save it as .docx"
            )
        return converted.read_bytes()


def _antiword(data: bytes) -> str:
    with tempfile.NamedTemporaryFile(suffix=".doc") as handle:
        handle.write(data)
        handle.flush()
        done = subprocess.run(
            ["antiword", "-m", "UTF-8.txt", "-w", "0", handle.name],
            capture_output=True, timeout=CONVERT_TIMEOUT_S, check=False, preexec_fn=_die_with_parent,
        )  # fmt: skip
    message = done.stderr.decode("utf-8", "replace")
    if "encrypt" in message.lower():
        raise EncryptedFileError("the Word file is password-protected; save a copy without a password")
    if done.returncode != 0:
        raise DamagedFileError("the Word file could not be read; it may be damaged: save it as .docx")
    return done.stdout.decode("utf-8", "replace")


def _die_with_parent() -> None:
    """The converter is killed with the parse process that started it (killed at its deadline)."""
    pr_set_pdeathsig = 1
    ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGKILL)

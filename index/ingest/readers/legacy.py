"""Legacy Word (.doc) and WPS (.wps) files: converted to DOCX by LibreOffice (headless), then read as DOCX,
so heading styles and tables are kept; without LibreOffice, a .doc is read by antiword (plain text).

Kingsoft WPS Writer's .wps files are the Word 97 binary format under another name, and
LibreOffice reads them as such. Dropped: everything the DOCX reader drops, plus
embedded objects, text boxes LibreOffice places outside the text flow, and revisions.

LibreOffice reads a hostile file, so it runs boxed in (see ``SECURITY.md``): a throwaway profile with macros
and link updates off; without a network (a user and network namespace, ``unshare -rn``: a picture linked to
``http://10.0.0.1/...`` is not fetched) wherever the kernel allows one (logged where it does not); in a PID
namespace of its own, so the whole process tree dies with the converter; and inside the upload's parse process,
under its memory limit and its deadline.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
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
# Run inside new user, network and PID namespaces: only a loopback that is down, and when the namespace's first
# process dies (killed at the timeout, or with the parse process) the kernel kills every process left in it.
SANDBOX = ("unshare", "--map-root-user", "--net", "--pid", "--fork", "--kill-child")
# The profile's settings (registrymodifications.xcu): (path, property, value).
LOCKED_DOWN_SETTINGS = (
    ("/org.openoffice.Office.Common/Security/Scripting", "MacroSecurityLevel", "3"),  # very high
    ("/org.openoffice.Office.Common/Security/Scripting", "DisableMacrosExecution", "true"),
    ("/org.openoffice.Office.Common/Security/Scripting", "BlockUntrustedRefererLinks", "true"),
    ("/org.openoffice.Office.Writer/Content/Update", "Link", "0"),  # never (sw UpdateLinks NEVER)
    ("/org.openoffice.Office.Calc/Content/Update", "Link", "1"),  # never (sc LM_NEVER)
)


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
        profile = write_locked_down_profile(folder / "profile")
        command = [
            *sandbox_prefix(), office, "--headless", "--norestore", "--nolockcheck", "--nologo", "--nodefault",
            f"-env:UserInstallation={profile.as_uri()}",
            "--convert-to", "docx", "--outdir", str(folder / "out"), str(source),
        ]  # fmt: skip
        # Nothing of the server's environment: no credentials, and home and temporary files in the throwaway folder.
        env = {"PATH": os.environ.get("PATH", os.defpath), "HOME": work, "TMPDIR": work, "LANG": "C.UTF-8"}
        try:
            subprocess.run(
                command, capture_output=True, timeout=CONVERT_TIMEOUT_S, check=False, env=env, cwd=work,
                preexec_fn=_die_with_parent,
            )  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            raise DamagedFileError(f"the {kind} file could not be converted within {CONVERT_TIMEOUT_S:g} s") from exc
        converted = folder / "out" / "document.docx"
        if not converted.is_file() or converted.stat().st_size == 0:
            raise DamagedFileError(
                f"the {kind} file could not be opened; it may be damaged or password-protected:"
                " open it in WPS or Word and save it as .docx"
            )
        return converted.read_bytes()


def write_locked_down_profile(profile: Path) -> Path:
    """A fresh LibreOffice user profile whose settings turn macros and link updates off; returns ``profile``."""
    items = "\n".join(
        f'<item oor:path="{path}"><prop oor:name="{name}" oor:op="fuse"><value>{value}</value></prop></item>'
        for path, name, value in LOCKED_DOWN_SETTINGS
    )
    user = profile / "user"
    user.mkdir(parents=True)
    (user / "registrymodifications.xcu").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<oor:items xmlns:oor="http://openoffice.org/2001/registry" xmlns:xs="http://www.w3.org/2001/XMLSchema"'
        ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n'
        f"{items}\n</oor:items>\n",
        encoding="utf-8",
    )
    return profile


@functools.cache
def sandbox_prefix() -> tuple[str, ...]:
    """``SANDBOX`` where this kernel lets this user make the namespaces (a container's seccomp profile may not)."""
    if shutil.which(SANDBOX[0]):
        try:
            probe = subprocess.run([*SANDBOX, "true"], capture_output=True, timeout=10, check=False)
            if probe.returncode == 0:
                return SANDBOX
            reason = probe.stderr.decode("utf-8", "replace").strip()
        except (OSError, subprocess.TimeoutExpired) as exc:
            reason = str(exc)
    else:
        reason = "unshare (util-linux) is not installed"
    logger.warning("LibreOffice runs with the network: no namespaces here (%s)", reason)
    return ()


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

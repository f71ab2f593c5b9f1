"""LibreOffice, which reads hostile .doc and .wps files, runs boxed in: a throwaway profile with macros and link
updates off, no network, and inside the upload's reading process (index/ingest/readers/legacy.py)."""

from __future__ import annotations

import asyncio
import http.server
import shutil
import subprocess
import sys
import tempfile
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import psutil
import pytest

from index.ingest.readers import legacy, read_bytes
from service.uploads import ParseTimeoutError, prepare_upload_isolated

pytestmark = pytest.mark.skipif(not shutil.which("soffice"), reason="LibreOffice (libreoffice-writer-nogui)")
OOR = "{http://openoffice.org/2001/registry}"
needs_namespaces = pytest.mark.skipif(not legacy.sandbox_prefix(), reason="no user namespaces on this kernel")


class _Requests(http.server.BaseHTTPRequestHandler):
    seen: list[str] = []

    def _record(self) -> None:
        self.seen.append(f"{self.command} {self.path}")
        self.send_response(404)
        self.end_headers()

    do_GET = do_HEAD = do_OPTIONS = _record

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def listener():
    """An HTTP server on this machine's loopback that records what it is asked."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Requests)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


def _soffice(folder: Path, target: str, source: Path) -> None:
    """The test's own conversions, boxed in too: making the file must not fetch what it links to either."""
    profile = (folder / "lo-profile").as_uri()
    subprocess.run(
        [*legacy.sandbox_prefix(), "soffice", "--headless", f"-env:UserInstallation={profile}", "--convert-to", target,
         "--outdir", str(folder), str(source)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip


@pytest.fixture(scope="module")
def linked_picture_doc(tmp_path_factory, listener) -> bytes:
    """A Word 97 file whose picture is a link (INCLUDEPICTURE) to the listener: what a server-side request
    forgery through a document converter looks like."""
    folder = tmp_path_factory.mktemp("linked-doc")
    url = f"http://127.0.0.1:{listener.server_port}/linked.png"
    (folder / "notice.fodt").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<office:document xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"'
        ' xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"'
        ' xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0"'
        ' xmlns:xlink="http://www.w3.org/1999/xlink"'
        ' xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0"'
        ' office:version="1.2" office:mimetype="application/vnd.oasis.opendocument.text">'
        "<office:body><office:text><text:p>各乡镇设立应急管理办公室，核定编制7名。</text:p>"
        '<text:p><draw:frame draw:name="p1" text:anchor-type="as-char" svg:width="2cm" svg:height="2cm">'
        f'<draw:image xlink:href="{url}" xlink:type="simple" xlink:show="embed" xlink:actuate="onLoad"/>'
        "</draw:frame></text:p></office:text></office:body></office:document>",
        encoding="utf-8",
    )
    _soffice(folder, "doc:MS Word 97", folder / "notice.fodt")
    data = (folder / "notice.doc").read_bytes()
    assert url.encode() in data  # kept as a link, not embedded
    return data


@needs_namespaces
def test_a_picture_linked_from_a_doc_is_not_fetched_while_converting(linked_picture_doc, listener):
    listener.RequestHandlerClass.seen.clear()
    read = read_bytes(linked_picture_doc, "通知.doc")
    assert "核定编制7名" in read.text and "LibreOffice" in read.summary
    assert listener.RequestHandlerClass.seen == []  # before: OPTIONS, HEAD and GET /linked.png


@needs_namespaces
def test_the_converter_has_no_network(listener):
    connect = f"import socket; socket.create_connection(('127.0.0.1', {listener.server_port}), timeout=5)"
    assert subprocess.run([sys.executable, "-c", connect], capture_output=True, timeout=30).returncode == 0
    boxed = subprocess.run([*legacy.sandbox_prefix(), sys.executable, "-c", connect], capture_output=True, timeout=30)
    assert boxed.returncode != 0 and b"Network is unreachable" in boxed.stderr, boxed.stderr


def _settings(xcu: Path) -> dict[tuple[str, str], str]:
    items = ET.parse(xcu).getroot()
    return {
        (item.get(f"{OOR}path"), prop.get(f"{OOR}name")): prop.findtext("value")
        for item in items
        for prop in item.findall("prop")
    }


def test_the_profile_turns_macros_and_link_updates_off_and_libreoffice_keeps_them(tmp_path, linked_picture_doc):
    profile = legacy.write_locked_down_profile(tmp_path / "profile")
    xcu = profile / "user" / "registrymodifications.xcu"
    wanted = {
        ("/org.openoffice.Office.Common/Security/Scripting", "MacroSecurityLevel"): "3",
        ("/org.openoffice.Office.Common/Security/Scripting", "DisableMacrosExecution"): "true",
        ("/org.openoffice.Office.Common/Security/Scripting", "BlockUntrustedRefererLinks"): "true",
        ("/org.openoffice.Office.Writer/Content/Update", "Link"): "0",
        ("/org.openoffice.Office.Calc/Content/Update", "Link"): "1",
    }
    assert wanted.items() <= _settings(xcu).items()
    written = xcu.stat().st_mtime_ns
    (tmp_path / "notice.doc").write_bytes(linked_picture_doc)
    subprocess.run(
        [*legacy.sandbox_prefix(), "soffice", "--headless", f"-env:UserInstallation={profile.as_uri()}",
         "--convert-to", "docx", "--outdir", str(tmp_path / "out"), str(tmp_path / "notice.doc")],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    # LibreOffice rewrites the file as it exits: what it read in, it writes back; what it had rejected, it drops.
    assert xcu.stat().st_mtime_ns != written and (tmp_path / "out" / "notice.docx").stat().st_size > 0
    assert wanted.items() <= _settings(xcu).items()


def test_a_doc_converts_inside_the_upload_reading_process(linked_picture_doc):
    """LibreOffice under the reading process's memory limit and deadline, in its namespaces, still converts."""
    upload = asyncio.run(prepare_upload_isolated(linked_picture_doc, "通知.doc", None, timeout=60))
    assert "核定编制7名" in upload.document.cleaned[0] and "LibreOffice" in upload.summary


def test_a_reader_killed_mid_conversion_leaves_no_files_and_no_libreoffice(linked_picture_doc, tmp_path, monkeypatch):
    system_tmp = Path(tempfile.gettempdir())
    before = set(system_tmp.glob("policyqa-office-*"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the reader's scratch folder is made

    async def read_past_the_deadline() -> None:
        with pytest.raises(ParseTimeoutError):  # LibreOffice takes 2-3 s: killed while converting
            await prepare_upload_isolated(linked_picture_doc, "通知.doc", None, timeout=1.0)
        for _ in range(50):  # the dead reader is collected on the event loop, then its files
            if not any(p.name.startswith("policyqa-") for p in tmp_path.iterdir()):
                break
            await asyncio.sleep(0.1)

    asyncio.run(read_past_the_deadline())
    # pymp-*: multiprocessing's own folder, if its fork server started in this test
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith("pymp-")] == []
    assert set(system_tmp.glob("policyqa-office-*")) == before  # before: the killed reader's folder stayed
    office = [p for p in psutil.process_iter(["cmdline"]) if str(tmp_path) in " ".join(p.info["cmdline"] or ())]
    assert office == []

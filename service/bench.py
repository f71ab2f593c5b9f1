"""``policyqa bench``: what this machine gives, beside what its parts alone give.

One run on the machine it reports on: the CPU's features and every embedding
runtime timed on it (the choice ``auto`` then uses, measured again); an ingest
of a corpus into a scratch directory, with the seconds spent inside the encoder
counted apart (the encoder alone on the same text is the ingest's floor);
question embedding p50; ``/api/search`` and ``/api/ask`` p50 over HTTP from a
server on 127.0.0.1 beside ``/api/health``'s (an endpoint that does no work: the
HTTP floor); OCR pages/s on pages rendered from the corpus's text. A user sees
what their hardware gives and how far each figure is from its limit.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from service.settings import Settings

HTTP_QUESTIONS = 40
# Multiply-adds a token costs e5-small: 12 layers of 4 attention projections (384x384) and a 384x1536 feed-forward
# pair, 2 FLOPs each; attention over ~150 tokens adds about 7%.
FLOP_PER_TOKEN = 12 * 2 * (4 * 384 * 384 + 2 * 384 * 1536) * 1.07
# FLOPs a core can issue a cycle, by the widest instructions the runtime's precision uses (two FMA pipes):
# float32 FMA, bfloat16 dot products (VDPBF16PS, twice float32), int8 dot products (VNNI: four times).
PEAK_FLOP_PER_CYCLE = {
    ("float32", "avx512f"): 64, ("float32", "avx2"): 32,
    ("bfloat16", "avx512_bf16"): 128, ("int8", "avx512_vnni"): 256, ("int8", "avx_vnni"): 128, ("int8", "avx2"): 64,
}  # fmt: skip


class TimedEmbedder:
    """An embedder that counts the seconds and characters its passages took (the encoder's share of a build)."""

    def __init__(self, embedder) -> None:
        self._embedder = embedder
        self.passage_seconds = 0.0
        self.passage_chars = 0

    def __getattr__(self, name):
        return getattr(self._embedder, name)

    def embed_passages(self, texts):
        return self._timed(texts, self._embedder.embed_passages, texts)

    def embed_passages_with_spans(self, texts, spans):
        return self._timed(texts, self._embedder.embed_passages_with_spans, texts, spans)

    def _timed(self, texts, call, *args):
        started = time.perf_counter()
        try:
            return call(*args)
        finally:
            self.passage_seconds += time.perf_counter() - started
            self.passage_chars += sum(len(t) for t in texts)


def run_bench(settings: Settings, corpus: Path, *, work_dir: Path | None = None, ocr_pages: int = 3) -> dict:
    from index.embedders.runtime_choice import cpu_features
    from index.threads import apply, build_plan
    from service.engines import passage_embedder

    scratch = Path(work_dir or tempfile.mkdtemp(prefix="policyqa-bench-"))
    data_dir = scratch / "data"
    figures: dict = {"cpu": cpu_features(), "corpus": str(corpus)}
    apply(build_plan())
    started = time.perf_counter()
    embedder = passage_embedder(settings)
    figures["start_s"] = round(time.perf_counter() - started, 2)
    if getattr(embedder, "measures_runtimes", False):
        figures["runtimes"] = embedder.measure_runtimes(again=True).to_json()
    figures["ingest"] = _ingest(settings, embedder, corpus, data_dir)
    figures["embedder_backend"] = getattr(embedder, "backend", embedder.name)
    figures["question_embedding"] = _question_embedding(embedder)
    figures["limit"] = _encoder_limit(figures)
    del embedder
    figures["http"] = _http(settings, data_dir)
    figures["ocr"] = _ocr(corpus, ocr_pages)
    if work_dir is None:
        shutil.rmtree(scratch, ignore_errors=True)
    return figures


def _ingest(settings: Settings, embedder, corpus: Path, data_dir: Path) -> dict:
    from index.stores.base import BackendConfig
    from index.stores.factory import open_backend

    timed = TimedEmbedder(embedder)
    backend = open_backend(BackendConfig(kind="local", data_dir=data_dir, kb_id="default"))
    started = time.perf_counter()
    report = backend.ingest(
        embedder=timed, docs_dir=corpus, chunking=settings.chunking(), show_progress=True,
        late_chunking=settings.late_chunking,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    characters = sum(len(p.read_text(encoding="utf-8", errors="replace")) for p in _texts(corpus))
    return {
        "documents": report.documents, "chunks": report.chunks, "sentences": report.sentences,
        "seconds": round(seconds, 2), "characters": characters,
        "characters_per_s": round(characters / seconds, 1),
        "encoder_seconds": round(timed.passage_seconds, 2),
        "encoder_input_characters_per_s": round(timed.passage_chars / max(timed.passage_seconds, 1e-9), 1),
        "floor_characters_per_s": round(characters / max(timed.passage_seconds, 1e-9), 1),
        "encoder_share": round(timed.passage_seconds / seconds, 3),
    }  # fmt: skip


def _encoder_limit(figures: dict) -> dict:
    """The passage runtime's measured rate as FLOPs, against the nominal peak of the cores it ran on."""
    runtimes = figures.get("runtimes")
    if not runtimes:
        return {}
    chosen = next(t for t in runtimes["passage_timings"] if [t["runtime"], t["precision"]] == runtimes["passages"])
    flags, precision = set(figures["cpu"]["flags"]), chosen["precision"]
    per_cycle = max((v for (p, flag), v in PEAK_FLOP_PER_CYCLE.items() if p == precision and flag in flags), default=16)
    peak = per_cycle * _cpu_mhz() * 1e6 * figures["cpu"]["cores"]
    achieved = chosen["tokens_per_s"] * FLOP_PER_TOKEN
    return {
        "runtime": f"{chosen['runtime']}-{precision}", "achieved_gflops": round(achieved / 1e9, 1),
        "nominal_peak_gflops": round(peak / 1e9, 1), "share_of_peak": round(achieved / peak, 3),
    }  # fmt: skip


def _cpu_mhz() -> float:
    try:
        rates = [float(line.split(":")[1]) for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("cpu MHz")]  # fmt: skip
    except (OSError, ValueError, IndexError):
        rates = []
    return max(rates, default=2000.0)


def _texts(corpus: Path) -> list[Path]:
    return sorted(p for p in corpus.rglob("*") if p.is_file() and p.suffix in (".txt", ".md"))


def _questions() -> list[str]:
    path = Path(__file__).resolve().parents[1] / "index" / "quality" / "questions.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["question"] for line in lines if line.strip()][:HTTP_QUESTIONS]


def _question_embedding(embedder) -> dict:
    questions = _questions()
    embedder.embed_queries(questions[:2])
    calls = []
    for question in questions:
        started = time.perf_counter()
        embedder.embed_queries([question])
        calls.append(time.perf_counter() - started)
    return {"questions": len(calls), "p50_ms": round(statistics.median(calls) * 1000, 2)}


def _http(settings: Settings, data_dir: Path) -> dict:
    import httpx

    port = _free_port()
    env = {
        **os.environ, "POLICYQA_DATA_DIR": str(data_dir), "POLICYQA_MODELS_DIR": str(settings.resolved_models_dir()),
        "POLICYQA_HOST": "127.0.0.1", "POLICYQA_PORT": str(port),
    }  # fmt: skip
    log = (data_dir.parent / "server.log").open("wb")
    server = subprocess.Popen([sys.executable, "-m", "service.cli", "serve"], env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            _wait_ready(client, server)
            questions = _questions()
            figures = {"health_p50_ms": _p50(lambda q: client.get("/api/health"), questions)}
            for route, field in (("search", "query"), ("ask", "question")):
                figures[f"{route}_p50_ms"] = _p50(
                    lambda q, r=route, f=field: client.post(f"/api/{r}", json={f: q}), questions
                )
            return figures
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _wait_ready(client, server, timeout: float = 300) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError("the bench server exited; see server.log in the work directory")
        try:
            if client.get("/api/health").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise RuntimeError("the bench server did not start")


def _p50(call, questions: list[str]) -> float:
    call(questions[0])  # warm-up
    seconds = []
    for question in questions:
        started = time.perf_counter()
        response = call(question)
        seconds.append(time.perf_counter() - started)
        response.raise_for_status()
    return round(statistics.median(seconds) * 1000, 2)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ocr(corpus: Path, pages: int) -> dict:
    """Pages read the way an upload reads them (``ocr_pages.recognise``: in parallel, one per core)."""
    from index.errors import ConfigurationError
    from index.ingest.ocr import engine, ocr_image
    from index.ingest.readers.ocr_pages import OCR_DPI, parallel_pages, recognise

    if pages <= 0:
        return {"skipped": "not asked (--ocr-pages 0)"}
    text = "".join(p.read_text(encoding="utf-8", errors="replace") for p in _texts(corpus)).replace("\n", "")
    try:
        images = [_rendered_page(text[at * 700 : (at + 1) * 700]) for at in range(pages)]
        ocr_image(images[0], engine())  # warm-up: the models load on first use
    except (ConfigurationError, OSError) as exc:
        return {"skipped": str(exc)}
    started = time.perf_counter()
    read = list(recognise(images))
    seconds = time.perf_counter() - started
    return {
        "pages": len(read), "pages_per_s": round(len(read) / seconds, 3), "dpi": OCR_DPI,
        "parallel_pages": parallel_pages(),
    }  # fmt: skip


CJK_FONTS = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
)


def _rendered_page(text: str) -> np.ndarray:
    """An A4 page at 200 dpi, 14 pt text, 35 characters a line: what a scanned notice looks like."""
    from PIL import Image, ImageDraw, ImageFont

    font_path = next((f for f in CJK_FONTS if Path(f).exists()), None)
    if font_path is None:
        raise OSError("no CJK font to render a page with (apt-get install fonts-wqy-microhei)")
    font = ImageFont.truetype(font_path, 39)
    page = Image.new("L", (1654, 2339), 255)
    draw = ImageDraw.Draw(page)
    for row, at in enumerate(range(0, len(text), 35)):
        draw.text((160, 200 + row * 62), text[at : at + 35], font=font, fill=0)
    return np.asarray(page)


def print_figures(figures: dict) -> None:
    cpu = figures["cpu"]
    print(f"CPU: {cpu['model']}, {cpu['cores']} cores, {' '.join(cpu['flags']) or 'no AVX2'}")
    if "runtimes" in figures:
        runtimes = figures["runtimes"]
        print("\nembedding runtimes (passages: tokens/s on every core; questions: ms a question on one thread)")
        for role, unit in (("passage_timings", "tokens_per_s"), ("query_timings", "p50_ms")):
            chosen = "-".join(runtimes["passages" if role == "passage_timings" else "queries"])
            for t in runtimes[role]:
                label = f"{t['runtime']}-{t['precision']}"
                mark = "chosen" if label == chosen else t["reason"]
                print(
                    f"  {role.split('_')[0]:9} {label:18} {t[unit] or 0:>9} {unit:13} cos {t['min_cosine']:.4f}  {mark}"
                )
    ingest = figures["ingest"]
    print(f"\nembedding: {figures['embedder_backend']}")
    print(f"ingest: {ingest['characters']:,} characters, {ingest['chunks']} chunks, {ingest['sentences']} sentences")
    print(f"  {ingest['characters_per_s']:,.0f} characters/s for the whole build ({ingest['seconds']} s); the encoder"
          f" alone on the same inputs: {ingest['floor_characters_per_s']:,.0f} characters/s"
          f" ({ingest['encoder_share']:.0%} of the build's time)")  # fmt: skip
    if limit := figures.get("limit"):
        print(f"  the passage encoder ({limit['runtime']}) reached {limit['achieved_gflops']} GFLOPS, of a nominal"
              f" {limit['nominal_peak_gflops']} on these cores ({limit['share_of_peak']:.0%})")  # fmt: skip
    print(f"question embedding p50: {figures['question_embedding']['p50_ms']} ms")
    http = figures["http"]
    print(f"/api/search p50 {http['search_p50_ms']} ms, /api/ask p50 {http['ask_p50_ms']} ms;"
          f" an empty endpoint (/api/health) {http['health_p50_ms']} ms")  # fmt: skip
    ocr = figures["ocr"]
    if "pages_per_s" in ocr:
        at_once = f"{ocr['parallel_pages']} at once"
        print(f"OCR: {ocr['pages_per_s']} pages/s ({ocr['pages']} pages at {ocr['dpi']} dpi, {at_once})")
    else:
        print(f"OCR: skipped ({ocr['skipped']})")

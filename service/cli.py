"""The ``policyqa`` command: thin wrappers over the index and the service."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from index.answering.retrieval import MODES
from index.errors import PolicyQAError
from service.settings import Settings


def _configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)
    # One JSON object a line, nothing around it: the request log is for machines.
    requests_handler = logging.StreamHandler()
    requests_handler.setFormatter(logging.Formatter("%(message)s"))
    request_log = logging.getLogger("policyqa.requests")
    request_log.addHandler(requests_handler)
    request_log.propagate = False


def _root_settings(args: argparse.Namespace) -> Settings:
    """The settings of the deployment (DATA_DIR itself), whichever knowledge base the command is for."""
    overrides = {key: value for key, value in vars(args).items() if key in Settings.model_fields and value is not None}
    return Settings(**overrides)


def _settings(args: argparse.Namespace) -> Settings:
    settings = _root_settings(args)
    kb = getattr(args, "kb", None)
    if kb is None or kb == "default":
        return settings
    return _kb_settings(settings, kb)


def _kb_id(args: argparse.Namespace) -> str:
    return getattr(args, "kb", None) or "default"


def _kb_settings(settings: Settings, kb: str) -> Settings:
    """A knowledge base's own index (DATA_DIR/kbs/KB/), which must be in the registry (POST /api/kbs makes one)."""
    from index.errors import ConfigurationError
    from service.stores.registry import REGISTRY_FILE, SqliteRegistry, valid_kb_id

    registry_path = settings.data_dir / REGISTRY_FILE
    if not valid_kb_id(kb) or not registry_path.exists() or SqliteRegistry(registry_path).kb(kb) is None:
        raise ConfigurationError(f"no knowledge base {kb!r} in {settings.data_dir}; make it with POST /api/kbs")
    return settings.model_copy(
        update={
            "data_dir": settings.data_dir / "kbs" / kb,
            "models_dir": settings.resolved_models_dir(),
            "docs_dir": settings.data_dir / "kbs" / kb / "no-corpus",  # never builds default's docs_raw into it
        }
    )


def cmd_ingest(args: argparse.Namespace) -> int:
    """Exit status 0 when the index holds what could be indexed, even if some files failed (each is named on
    stderr); 1 when files failed and nothing could be indexed."""
    from index.stores.base import BuildReport
    from index.threads import apply, build_plan
    from service.engines import index_backend, passage_embedder

    settings = _settings(args)
    apply(build_plan())  # every core to this build, before the encoder is made
    embedder = passage_embedder(settings)
    backend = index_backend(settings, _kb_id(args))
    # An index that can take changes gets only the added, edited and removed files; documents added
    # through the API or `policyqa add` stay. A file that fails is left out; the others are indexed.
    report = backend.ingest(
        embedder=embedder,
        docs_dir=args.directory or settings.docs_dir,
        chunking=settings.chunking(),
        show_progress=not args.quiet,
        late_chunking=settings.late_chunking,
    )
    for failure in report.failed:
        print(f"{failure.source}: not indexed: {failure.reason}", file=sys.stderr)
    failed = f"; {len(report.failed)} failed" if report.failed else ""
    if isinstance(report, BuildReport):
        indexed = report.documents
        print(
            f"built {report.generation_id}: {report.documents} documents, {report.chunks} chunks,"
            f" {report.sentences} sentences; embedded {report.embedded_documents}, reused {report.reused_documents}"
            f"{failed} ({report.timings_s['total']:.1f} s)"
        )
    else:
        indexed = report.added + report.unchanged
        where = f" {backend.label}" if backend.label else ""
        print(
            f"updated {report.generation_id}{where}: {report.documents} documents, {report.chunks} chunks;"
            f" embedded {report.added} (added or changed), removed {report.removed}, reused {report.unchanged}"
            f"{failed} ({report.timings_s.get('total', 0.0):.1f} s)"
        )
    return 1 if report.failed and not indexed else 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from service.api.app import create_app
    from service.engines import open_engine

    settings = _settings(args)
    # Opened here rather than in the lifespan, so that a missing corpus or a
    # mismatched index is a one-line message, not a startup traceback.
    engine = open_engine(settings, show_progress=True)
    try:
        uvicorn.run(
            create_app(settings, engine=engine),
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level,
            access_log=False,  # the app logs each request as one JSON line, with its id
        )
    finally:
        engine.close()
    return 0


def _print_passages(items: list[dict]) -> None:
    for item in items:
        label = f"[{item['n']}] " if "n" in item else ""
        section = " > ".join(item["section"])
        print(f"\n{label}{item['title']}  {section}  (score {item['score']:.3f})")
        print(f"    {item['text']}")


def cmd_ask(args: argparse.Namespace) -> int:
    from service.api import presenters
    from service.engines import open_engine

    engine = open_engine(_settings(args), show_progress=True, kb_id=_kb_id(args))
    timed = engine.ask(args.question, top_k=args.top_k, mode=args.mode, doc_ids=args.doc_id)
    answer = timed.answer
    citations = [c.model_dump() for c in presenters.citations(answer)]
    short = presenters.short_answer(answer)
    if args.json:
        body = {
            "answer": answer.text,
            "answerable": answer.answerable,
            "short_answer": short.model_dump() if short else None,
            "declined_reason": answer.declined_reason,
            "citations": citations,
        }
        print(json.dumps(body, ensure_ascii=False, indent=2))
        return 0
    if short:
        print(f"答：{short.text}")
    print(answer.text)
    _print_passages(citations)
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from service.api import presenters
    from service.engines import open_engine

    engine = open_engine(_settings(args), show_progress=True, kb_id=_kb_id(args))
    timed = engine.search(args.query, top_k=args.top_k, mode=args.mode, doc_ids=args.doc_id)
    results = [presenters.passage(hit) for hit in timed.result.hits]
    if args.json:
        print(json.dumps(results, ensure_ascii=False, indent=2))
    else:
        _print_passages(results)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from service.evaluate import describe, evaluate, save

    settings = Settings() if args.url else _settings(args)  # with --url, the service has the knowledge base
    gold_set = _gold_set(args) if args.gold or not args.dataset else None
    evaluation = evaluate(
        settings,
        dataset_dirs=args.dataset or [],
        gold=args.gold,
        url=args.url,
        modes=args.modes,
        show_progress=not args.quiet,
        kb=args.kb,
        key=args.key,
        gold_set=gold_set,
    )
    print(describe(evaluation))
    print(f"report: {save(evaluation, args.reports_dir)}")
    return 0


def _gold_set(args: argparse.Namespace):
    """The knowledge base's gold set (service/gold_set.py): default's shipped questions and those its staff added,
    another's added ones; read from DATA_DIR's record store (or Milvus), or with --url from the service."""
    from index.errors import PermissionDeniedError
    from service.gold_set import fetched_gold_questions, kb_gold_dataset, stored_gold_questions

    kb_id = _kb_id(args)
    if not args.url:
        return kb_gold_dataset(kb_id, stored_gold_questions(_root_settings(args), kb_id))
    try:
        added = fetched_gold_questions(args.url, kb_id, args.key)
    except PermissionDeniedError as exc:
        if kb_id != "default":
            raise
        print(f"policyqa: {exc}; asking the shipped gold set only", file=sys.stderr)
        added = []
    return kb_gold_dataset(kb_id, added)


def cmd_add(args: argparse.Namespace) -> int:
    from service.engines import open_engine
    from service.uploads import prepare_upload
    from service.writer import KnowledgeBaseWriter

    uploads = [prepare_upload(Path(p).read_bytes(), Path(p).name, args.title) for p in args.files]
    settings = _settings(args)
    writer = KnowledgeBaseWriter(open_engine(settings, show_progress=True, kb_id=_kb_id(args)), settings, warm_up=False)
    failed = 0
    for path, upload in zip(args.files, uploads, strict=True):
        job = writer.wait(writer.add(upload))
        if job.state == "failed":
            failed += 1
            print(f"{path}: failed: {job.error}", file=sys.stderr)
        elif job.duplicate:
            print(f"{path}: already indexed as {job.doc_id}")
        else:
            print(f"{path}: added as {job.doc_id} ({job.embedded_passages} passages embedded)")
    return 1 if failed else 0


def cmd_remove(args: argparse.Namespace) -> int:
    from service.engines import open_engine
    from service.writer import KnowledgeBaseWriter

    settings = _settings(args)
    writer = KnowledgeBaseWriter(open_engine(settings, kb_id=_kb_id(args)), settings, warm_up=False)
    for doc_id in args.doc_ids:
        job = writer.delete(doc_id)
        if job.state != "done":
            print(f"{doc_id}: failed: {job.error}", file=sys.stderr)
            return 1
        print(f"{doc_id}: removed")
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    from service.engines import index_backend

    backend = index_backend(_settings(args), _kb_id(args))
    merged = 0
    while report := backend.merge(full=args.full):
        merged += 1
        print(f"merged {len(report.merged)} segments into {report.segment_id}: {report.chunks} chunks,"
              f" {report.dropped_chunks} deleted chunks dropped ({report.timings_s['total']:.1f} s)")  # fmt: skip
        if args.full:
            break
    if not merged:
        print("nothing to merge")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Times this machine's runtimes, an ingest, questions, HTTP and OCR; the runtimes' record is renewed."""
    from service.bench import print_figures, run_bench

    settings = _settings(args)
    figures = run_bench(settings, args.directory or settings.docs_dir, ocr_pages=args.ocr_pages)
    print_figures(figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, ensure_ascii=False), encoding="utf-8")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="policyqa", description="Cited answers from Chinese policy documents.")
    parser.add_argument("--data-dir", type=Path, help="index directory (POLICYQA_DATA_DIR, default var)")
    parser.add_argument("--embedder", help="embedding backend (POLICYQA_EMBEDDER, default e5-small)")
    parser.add_argument("--kb", help="knowledge base (default: default, the index in DATA_DIR itself)")
    sub = parser.add_subparsers(dest="command", required=True)

    ingest = sub.add_parser("ingest", help="build the index from a corpus directory")
    ingest.add_argument("directory", nargs="?", type=Path, help="corpus directory (default docs_raw)")
    ingest.add_argument("--quiet", action="store_true", help="no progress bar")
    ingest.set_defaults(func=cmd_ingest)

    serve = sub.add_parser("serve", help="serve the HTTP API (builds the index on first start)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(func=cmd_serve)

    for name, func, text in (("ask", cmd_ask, "question"), ("search", cmd_search, "query")):
        command = sub.add_parser(name, help=f"{name} from the command line")
        command.add_argument(text)
        command.add_argument("--top-k", type=int, default=5)
        command.add_argument("--mode", choices=MODES, default="hybrid")
        command.add_argument("--doc-id", action="append", help="limit to this document (repeatable)")
        command.add_argument("--json", action="store_true", help="print JSON")
        command.set_defaults(func=func)
    add = sub.add_parser("add", help="add documents to the index (txt, md, html, docx, pdf)")
    add.add_argument("files", nargs="+", type=Path)
    add.add_argument("--title", help="title, for a single file")
    add.set_defaults(func=cmd_add)

    remove = sub.add_parser("remove", help="remove documents from the index")
    remove.add_argument("doc_ids", nargs="+")
    remove.set_defaults(func=cmd_remove)

    merging = sub.add_parser("merge", help="merge the index's segments now (the service merges by itself)")
    merging.add_argument("--full", action="store_true", help="merge every segment into one")
    merging.set_defaults(func=cmd_merge)

    bench = sub.add_parser("bench", help="this machine's speed figures beside their floors")
    bench.add_argument("directory", nargs="?", type=Path, help="corpus to ingest (default docs_raw)")
    bench.add_argument("--json", type=Path, help="also write the figures to this file")
    bench.add_argument("--ocr-pages", type=int, default=3, help="pages rendered and read (0: no OCR)")
    bench.set_defaults(func=cmd_bench)

    evaluation = sub.add_parser("eval", help="measure retrieval and answer quality")
    evaluation.add_argument(
        "--dataset",
        type=Path,
        action="append",
        help="a BEIR-layout directory; repeat for several (default: the gold set)",
    )
    evaluation.add_argument("--gold", action="store_true", help="with --dataset: ask the gold set too")
    evaluation.add_argument("--url", help="ask a running service instead of the index in this process")
    evaluation.add_argument("--key", help="with --url: an API key (or the admin token) for a knowledge base")
    evaluation.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    evaluation.add_argument("--reports-dir", type=Path, default=Path("eval/reports"))
    evaluation.add_argument("--quiet", action="store_true", help="no progress bar")
    evaluation.set_defaults(func=cmd_eval)
    for command in (ingest, *(sub.choices[name] for name in ("ask", "search", "add", "remove")), evaluation):
        # After the command too (policyqa ask --kb staff ...); SUPPRESS keeps one given before it.
        command.add_argument("--kb", default=argparse.SUPPRESS, help="knowledge base (default: default)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logging(Settings().log_level if args.command != "serve" else "info")
    try:
        return args.func(args)
    except PolicyQAError as exc:
        print(f"policyqa: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

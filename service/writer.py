"""The writer of one knowledge base: uploads, replacements and deletes, run one at a time as jobs.

An upload is read and checked in the request (``service/uploads.py``), so bad
input is a 4xx and changes nothing; the embedding runs in a worker thread
while the service keeps answering from the current generation. A scan is only
checked in the request: its job first reads it by OCR, in the writer's scan
reader (a thread of its own, so that other changes are not queued behind a
long scan, and no writer lock is held meanwhile), then queues its build. Each change
goes through the knowledge base's ``IndexWriter`` (``index/stores/base.py``):
locally one small segment and tombstones in a new generation, switched
atomically, so a crash leaves the previous generation in place and the change
can be retried. What the backend merges is merged in the background.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import queue
import secrets
import threading
import time
from collections.abc import Callable
from functools import partial

from index.answering.engine import QAEngine
from index.embedders import Embedder
from index.errors import ConflictError, NotFoundError, PolicyQAError
from index.ingest.documents import SourceDocument
from index.stores.chunk_edits import ChunkCorrection
from index.threads import lower_priority
from service.engines import passage_embedder
from service.scan_reading import read_scan
from service.settings import Settings
from service.stores.jobs import JOB_HEARTBEAT_S, InMemoryJobStore, Job, JobStore
from service.uploads import PendingScan, Upload

logger = logging.getLogger(__name__)

# A running job's progress reaches the shared job store at most this often (its state changes always do).
PROGRESS_PUBLISH_S = 0.5
# The passage encoder is loaded this long after the writer starts: after the server's start, off its critical path.
ENCODER_LOAD_DELAY_S = 1.0
ENCODER_LOAD_JOIN_S = 60.0  # how long closing waits for a load under way (seconds on two cores)
# The share of a scan's job that its OCR shows as progress: a page takes about a second, embedding its text a tenth.
OCR_PROGRESS_SHARE = 0.8


class JobTimeoutError(PolicyQAError):
    code = "job_timeout"


class WriterClosedError(PolicyQAError):
    """The knowledge base was unloaded or deleted: nothing was queued, the change can be sent again."""

    code = "unavailable"


def _joined(*parts: str) -> str:
    return "; ".join(part for part in parts if part)


class KnowledgeBaseWriter:
    """The one writer of a knowledge base's index, and its queue of jobs.

    Its jobs are kept in this replica's memory (``records``, which may outlive the writer) and, given a shared ``jobs``
    store (``service/stores/jobs.py``), written there too so that every replica
    answers for them. Given a ``writer_lock`` (a context manager factory: the
    Milvus writer lock, index/stores/milvus/lock.py), each job runs holding it,
    so that one replica at a time changes a shared index.
    """

    def __init__(
        self, engine: QAEngine, settings: Settings, *, jobs: JobStore | None = None,
        writer_lock: Callable[[], contextlib.AbstractContextManager] | None = None,
        records: InMemoryJobStore | None = None, warm_up: bool = True,
    ) -> None:  # fmt: skip
        self.engine = engine
        self.settings = settings
        self._jobs = records if records is not None else InMemoryJobStore()
        self._shared = jobs
        self._writer_lock = writer_lock or contextlib.nullcontext
        self._published: dict[str, float] = {}  # job id -> when its progress last reached the shared store
        self._lock = threading.Lock()
        self._save_lock = threading.Lock()
        self._queue_lock = threading.Lock()
        self._job_finished = threading.Condition()
        self._queue: queue.Queue[tuple[Job, Callable[[Job], None]]] = queue.Queue()
        self._embedder: Embedder | None = None
        self._merger: threading.Thread | None = None
        self._worker = threading.Thread(target=self._work, name="policyqa-writer", daemon=True)
        self._worker.start()
        self._closed = threading.Event()
        self._scans: queue.Queue[tuple[Job, PendingScan, Callable[[Job, Upload], Job]] | None] = queue.Queue()
        threading.Thread(target=self._read_scans, name="policyqa-scan-reader", daemon=True).start()
        # A server loads the passage encoder ahead of its first upload; a one-shot command (policyqa add) would
        # only race its own exit with a compiler thread (std::terminate, SIGABRT).
        self._encoder_loader: threading.Thread | None = None
        if warm_up:
            self._encoder_loader = threading.Thread(
                target=self._load_passage_encoder, name="policyqa-encoder-load", daemon=True
            )
            self._encoder_loader.start()
        if jobs is not None:
            threading.Thread(target=self._keep_jobs_fresh, name="policyqa-kb-jobs", daemon=True).start()

    # -- requests ----------------------------------------------------------
    def add(self, upload: Upload | PendingScan) -> Job:
        if isinstance(upload, PendingScan):
            return self._queue_scan(upload, "add", upload.doc_id, self._add)
        return self._add(None, upload)

    def replace(self, doc_id: str, upload: Upload | PendingScan) -> Job:
        self._require(doc_id)
        if isinstance(upload, PendingScan):
            return self._queue_scan(upload, "replace", doc_id, partial(self._replace, doc_id))
        return self._replace(doc_id, None, upload)

    def add_all(self, documents: list[SourceDocument], *, label: str) -> Job:
        """One job adding every document in one change, all of them or none (an FAQ import); ``label`` names
        what they came from. The ids must be new: nothing is de-duplicated here."""
        run = partial(self._build, sources=documents)
        return self._enqueue(run, "add", documents[0].doc_id, label, f"{len(documents)} documents")

    def restore(self, document: SourceDocument, *, then: Callable[[], None]) -> Job:
        """A deleted document added back under its own id (from the trash), then ``then`` (what else comes back)
        in the same job; the job fails, adding nothing, if the id was taken meanwhile."""
        run = partial(self._restore, document=document, then=then)
        return self._enqueue(run, "add", document.doc_id, document.source, "restored from the trash")

    def _restore(self, job: Job, *, document: SourceDocument, then: Callable[[], None]) -> None:
        if self.engine.index.catalogue.known_doc_ids([document.doc_id]):
            raise ConflictError(f"a document with id {document.doc_id!r} exists again; nothing was restored")
        self._build(job, sources=[document])
        then()

    def _add(self, job: Job | None, upload: Upload) -> Job:
        """The upload's build queued, or its job done at once when its content is indexed already."""
        existing = self.engine.index.catalogue.find_by_content_hash(upload.content_hash)
        if existing is not None:
            job = job or self._new_job("add", existing.doc_id, upload.document.source)
            job.doc_id, job.read_summary = existing.doc_id, upload.summary
            job.state, job.duplicate, job.progress = "done", True, 1.0
            job.message = f"already indexed as {existing.doc_id}"
            self._finish(job)
            return job
        document = upload.document
        known = self.engine.index.catalogue.known_doc_ids([document.doc_id])
        if known:  # same file name, other content: keep both, under distinct ids
            document = dataclasses.replace(document, doc_id=f"{document.doc_id}-{upload.content_hash[:8]}")
        run = partial(self._build, sources=[document])
        return self._enqueue(run, "add", document.doc_id, document.source, upload.summary, job=job)

    def _replace(self, doc_id: str, job: Job | None, upload: Upload) -> Job:
        document = dataclasses.replace(upload.document, doc_id=doc_id)
        run = partial(self._build, sources=[document])
        return self._enqueue(run, "replace", doc_id, document.source, upload.summary, job=job)

    def delete(self, doc_id: str, *, timeout: float = 120.0) -> Job:
        self._require(doc_id)
        job = self._enqueue(partial(self._build, sources=[], remove={doc_id}), "delete", doc_id, None)
        return self.wait(job, timeout)

    def correct_chunk(self, doc_id: str, ordinal: int, text: str, *, timeout: float = 300.0) -> ChunkCorrection:
        """One chunk's text corrected, as a job behind the others (a correction never races an upload or a
        replace); answered once the new text is served. The job's own error is raised as it was."""
        self._require(doc_id)
        outcome: list[ChunkCorrection | PolicyQAError] = []
        run = partial(self._correct, doc_id=doc_id, ordinal=ordinal, text=text, outcome=outcome)
        job = self.wait(self._enqueue(run, "correct", doc_id, None), timeout)
        if outcome and isinstance(outcome[0], PolicyQAError):
            raise outcome[0]
        if job.state != "done" or not outcome:
            raise JobTimeoutError(job.error or f"the correction is still running as job {job.id}")
        return outcome[0]

    def _correct(self, job: Job, *, doc_id: str, ordinal: int, text: str, outcome: list) -> None:
        try:
            corrected = self.engine.backend.correct_chunk(
                embedder=self._passage_embedder(), doc_id=doc_id, ordinal=ordinal, text=text
            )
        except PolicyQAError as exc:
            outcome.append(exc)
            raise
        job.embedded_passages = corrected.embedded_passages
        job.message = f"chunk {ordinal} of {doc_id} corrected in build {corrected.generation_id}"
        self.engine.reload()
        outcome.append(corrected)
        self._schedule_merge()

    def _enqueue(
        self, run: Callable[[Job], None], kind: str, doc_id: str, filename: str | None, read_summary: str = "",
        *, job: Job | None = None,
    ) -> Job:  # fmt: skip
        """A new job, queued; refused, and never recorded, once the writer is closed (its worker is gone).
        Given the ``job`` of a scan just read, that job is queued (its document id and summary now known)."""
        with self._queue_lock:
            if self._closed.is_set():
                raise WriterClosedError("the knowledge base is being unloaded or deleted; send the change again")
            if job is None:
                job = self._new_job(kind, doc_id, filename, read_summary)
            else:
                job.doc_id, job.read_summary, job.message = doc_id, read_summary, read_summary
                self._save(job)
            self._queue.put((job, run))
        return job

    def _queue_scan(self, scan: PendingScan, kind: str, doc_id: str, then: Callable[[Job, Upload], Job]) -> Job:
        """A job that reads the scan by OCR, then hands the text to ``then`` (which queues its build)."""
        with self._queue_lock:
            if self._closed.is_set():
                raise WriterClosedError("the knowledge base is being unloaded or deleted; send the change again")
            job = self._new_job(kind, doc_id, scan.filename)
            job.message = f"OCR of {scan.pages} page{'s' if scan.pages > 1 else ''} queued"
            self._save(job)
            self._scans.put((job, scan, then))
        return job

    def wait(self, job: Job, timeout: float = 3600.0) -> Job:
        """Block until the job has finished: its final state is set, after the writer lock was released."""
        with self._job_finished:
            self._job_finished.wait_for(lambda: job.state not in ("queued", "running"), timeout)
        return job

    def job(self, job_id: str) -> Job | None:
        """One of this replica's jobs, or, with a shared store, any replica's."""
        job = self._jobs.get(job_id)
        if job is None and self._shared is not None:
            job = self._shared.get(job_id)
        return job

    def job_counts(self) -> dict[str, int]:
        """This replica's jobs queued and running now; done and failed since the start (each replica
        reports its own, so that the metrics of all add up and a killed replica's jobs pin nothing)."""
        return self._jobs.counts()

    def _save(self, job: Job) -> None:
        self._jobs.put(job)
        if self._shared is None:
            return
        try:
            with self._save_lock:  # the worker and the heartbeat: the last write is of the latest state
                self._shared.put(job)
        except Exception:  # the job itself goes on; other replicas see it at its next change
            logger.warning("job %s: writing it to the shared job store failed", job.id, exc_info=True)
        with self._lock:
            self._published[job.id] = time.monotonic()
            if job.state in ("done", "failed"):
                self._published.pop(job.id, None)

    def _keep_jobs_fresh(self) -> None:
        """Write this replica's unfinished jobs again now and then: other replicas take a job that
        stays silent for long to be lost with its replica (service/stores/jobs.py)."""
        while not self._closed.wait(JOB_HEARTBEAT_S):
            for job in self._jobs.unfinished():
                self._save(job)

    def _publish_progress(self, job: Job) -> None:
        if self._shared is not None and time.monotonic() - self._published.get(job.id, 0.0) >= PROGRESS_PUBLISH_S:
            self._save(job)

    # -- the worker --------------------------------------------------------
    def _require(self, doc_id: str) -> None:
        if not self.engine.index.catalogue.known_doc_ids([doc_id]):
            raise NotFoundError(f"no document with id {doc_id!r}")

    def _new_job(self, kind: str, doc_id: str, filename: str | None, read_summary: str = "") -> Job:
        job = Job(id=secrets.token_hex(8), kind=kind, doc_id=doc_id, filename=filename, read_summary=read_summary)
        job.message = read_summary
        self._save(job)
        return job

    def _load_passage_encoder(self) -> None:
        """Load the encoder that embeds uploads in the background, not inside the first upload's job (6-9 s on
        two cores at 100k chunks). Its tokenisers are the question encoder's (``E5Encoder(like=...)``): loading
        them again held the interpreter, and stalled ``/api/health``, for 1.3-1.6 s; OpenVINO reads and compiles
        the model with the interpreter released. Only the engine's own embedder: another would be held in memory
        for each knowledge base, written to or not. A delete, which needs no encoder, does not wait for it."""
        if self._closed.wait(ENCODER_LOAD_DELAY_S) or self.engine.embedder.name != self.engine.index_embedder_name:
            return
        try:
            self._passage_embedder().embed_passages(["预热"])
        except Exception:  # the first upload loads it, and fails there with its own job's error
            logger.warning("loading the passage encoder in advance failed", exc_info=True)

    def _read_scans(self) -> None:
        """Scans read by OCR one after another, each then queued for the worker; a scan that cannot be read
        fails its job with the reader's message, and nothing is indexed."""
        for job, scan, then in iter(self._scans.get, None):
            job.state = "running"
            self._save(job)
            try:
                if self._closed.is_set():
                    raise WriterClosedError("the knowledge base was unloaded before its scan was read; upload it again")
                upload = read_scan(
                    scan, on_page=partial(self._ocr_progress, job), timeout=self.settings.parse_timeout_s,
                    job_timeout=self.settings.job_timeout_s, stop=self._closed,
                )  # fmt: skip
                then(job, upload)
            except PolicyQAError as exc:
                job.state, job.error = "failed", str(exc)
                self._finish(job)
            except Exception as exc:  # a job must never kill the reader
                logger.exception("job %s: reading its scan failed", job.id)
                job.state, job.error = "failed", f"internal error: {type(exc).__name__}"
                self._finish(job)

    def _ocr_progress(self, job: Job, done: int, pages: int) -> None:
        job.progress = round(OCR_PROGRESS_SHARE * done / max(pages, 1), 3)
        job.message = f"OCR page {done}/{pages}"
        self._publish_progress(job)

    def _finish(self, job: Job) -> None:
        job.finished_at = time.time()
        self._save(job)
        with self._job_finished:
            self._job_finished.notify_all()

    def _work(self) -> None:
        self._purge_leftovers()
        for job, run in iter(self._queue.get, None):
            job.state = "running"
            self._save(job)
            try:
                with self._writer_lock():
                    run(job)
                job.state, job.progress = "done", 1.0
            except PolicyQAError as exc:
                job.state, job.error = "failed", str(exc)
            except Exception as exc:  # a job must never kill the worker
                logger.exception("job %s failed", job.id)
                job.state, job.error = "failed", f"internal error: {type(exc).__name__}"
            self._finish(job)

    def _purge_leftovers(self) -> None:
        """Before the first job: deleted text a change killed before its purge left on disk (a change purges
        its own before it is answered as done; a killed one, only the next change would)."""
        try:  # the backend takes its own locks: the job lock (Milvus's, shared) is not needed for what is local
            if self.engine.backend.purge_deleted():
                self.engine.reload()
        except Exception:  # the next change purges it
            logger.exception("purging deleted documents left by an interrupted change failed")

    def _build(self, job: Job, *, sources: list[SourceDocument], remove: set[str] | None = None) -> None:
        settings = self.settings
        deadline = time.monotonic() + settings.job_timeout_s
        read = job.progress  # a scan's job has shown its OCR's progress already

        def progress(done: int, total: int) -> None:
            # Each batch reports here: past the deadline, the build stops before anything is written.
            if time.monotonic() > deadline:
                raise JobTimeoutError(f"the job ran longer than {settings.job_timeout_s:g} s; nothing was changed")
            job.progress = round(read + (0.95 - read) * done / max(total, 1), 3)
            job.message = _joined(job.read_summary, f"embedded {done} of {total} passages")
            self._publish_progress(job)

        report = self.engine.backend.change(
            sources=sources,
            embedder=self._passage_embedder(),
            chunking=settings.chunking(),
            late_chunking=settings.late_chunking,
            remove=remove or set(),
            on_progress=progress,
        )
        job.embedded_passages = report.embedded_passages
        built = f"{report.documents} documents, {report.chunks} chunks in build {report.generation_id}"
        job.message = _joined(job.read_summary, built)
        self.engine.reload()
        self._schedule_merge()

    def _schedule_merge(self) -> None:
        """Merge segments in a thread of its own: changes and questions go on meanwhile."""
        with self._lock:
            if self._merger is not None and self._merger.is_alive():
                return  # it plans again after each merge, so it sees this change too
            self._merger = threading.Thread(target=self._merge, name="policyqa-merge", daemon=True)
            self._merger.start()

    def _merge(self) -> None:
        lower_priority()  # below the requests' threads
        while True:
            try:
                report = self.engine.backend.merge(reuse=self.engine.index)
            except Exception:  # the merged segments stay in service; the next change tries again
                logger.exception("merging segments failed")
                return
            if report is None:
                return
            self.engine.reload()

    def merging(self) -> bool:
        """Whether a background merge is running (service/knowledge_bases.py evicts none that is)."""
        merger = self._merger
        return merger is not None and merger.is_alive()

    def wait_for_merges(self, timeout: float = 600.0) -> None:
        merger = self._merger
        if merger is not None:
            merger.join(timeout)

    def _passage_embedder(self) -> Embedder:
        if self._embedder is None:
            same = self.engine.embedder.name == self.engine.index_embedder_name
            self._embedder = self.engine.embedder if same else passage_embedder(self.settings)
        return self._embedder

    def close(self) -> None:
        with self._queue_lock:  # after this, no job is queued behind the worker's end
            self._closed.set()
            self._queue.put(None)  # type: ignore[arg-type]
            self._scans.put(None)  # behind the scans queued before it, which fail: the writer is closed
        if self._encoder_loader is not None:  # a load under way finishes before the process may exit
            self._encoder_loader.join(timeout=ENCODER_LOAD_JOIN_S)

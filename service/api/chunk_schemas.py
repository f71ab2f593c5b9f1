"""Request and response models of a document's chunks and their corrections (docs/corrections.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

MAX_CORRECTED_CHARS = 2_000  # a chunk is about 300 characters, at most 400; the embedder's 512 tokens cap it too


class ChunkOut(BaseModel):
    chunk_id: int
    ordinal: int = Field(description="Its position in the document, from 0: what stays when a correction gives it "
                         "a new id.")  # fmt: skip
    section: list[str]
    text: str
    start: int
    end: int
    pages: list[int] | None = None
    corrected: bool = Field(False, description="Its text reads otherwise than the document's original.")


class ChunkList(BaseModel):
    doc_id: str
    data: list[ChunkOut]
    count: int


class ChunkCorrectionIn(BaseModel):
    text: str = Field(min_length=1, max_length=MAX_CORRECTED_CHARS, description="The chunk's corrected text.")
    note: str = Field("", max_length=500, description="Why (an OCR slip, a wrong heading).")


class RollbackIn(BaseModel):
    version: int = Field(0, ge=0, le=100_000, description="The version whose text to restore; 0: the original.")
    note: str = Field("", max_length=500)


class DiffOp(BaseModel):
    op: Literal["equal", "delete", "insert"]
    text: str


class CorrectionVersion(BaseModel):
    version: int
    action: Literal["correct", "rollback"]
    rollback_to: int | None = Field(None, description="For a rollback: the version restored (0: the original).")
    chunk_id: int = Field(description="The chunk's id once this version was written.")
    previous: str = Field(description="The text this version replaced.")
    text: str
    diff: list[DiffOp] = Field(description="From ``previous`` to ``text``, character by character.")
    note: str
    set_by: str
    set_at: str
    stale: bool = Field(False, description="Made on content since replaced by an upload: no longer applied.")


class ChunkCorrections(BaseModel):
    doc_id: str
    chunk: ChunkOut
    original: str = Field(description="The text the document was read with (kept here by design).")
    diff: list[DiffOp] = Field(description="From the original to the text served now.")
    versions: list[CorrectionVersion] = Field(description="Newest first, stale ones last.")
    count: int


class ChunkCorrected(BaseModel):
    doc_id: str
    chunk: ChunkOut
    version: int
    previous: str
    diff: list[DiffOp]
    embedded_passages: int = Field(description="Encoder inputs: the chunk and its sentences, nothing else.")
    build_id: str

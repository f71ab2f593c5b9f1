"""Metadata a policy document states about itself: issuers, 文号, dates, kind, level, and what it repeals or amends.

meta = extract_metadata(text, title=title)
meta.to_dict()  # JSON-safe; DocumentMetadata.from_dict() reads it back
"""

from index.ingest.metadata.extract import extract_metadata
from index.ingest.metadata.fields import DocumentMetadata, MetadataField
from index.ingest.metadata.validity import references_match

__all__ = ["DocumentMetadata", "MetadataField", "extract_metadata", "references_match"]

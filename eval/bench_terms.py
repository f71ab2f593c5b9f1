"""What the term list does to the gold set: the same index and questions, asked with the terms read three ways.

- ``before``: the question as asked, its own words to BM25; qualifiers compared in the shipped list's form (as
  before the term dictionary);
- ``no-list``: no term list at all (no rewriting, no BM25 expansion, qualifiers compared as written);
- ``base-list``: the shipped list (index/answering/terms.tsv) as a knowledge base without entries uses it now:
  a form no passage holds rewritten as the one most hold, each form read by BM25 as any of its forms.

Run: ``python -m eval.bench_terms [--modes hybrid lexical]`` (the index in var/, built first if missing).
"""

from __future__ import annotations

import argparse

from index.answering.term_set import KnowledgeTerms
from index.answering.terms import default_terms
from index.quality.backends import EngineBackend
from index.quality.datasets import gold_dataset
from index.quality.report import format_table
from index.quality.runner import run, summarize_by_mode
from service.engines import open_engine
from service.settings import Settings

SHOWN = ("doc@1", "passage@1", "passage@3", "mrr@10", "answer", "sentence@1", "abstain_r", "false_abstain")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", nargs="+", default=["hybrid", "lexical"])
    args = parser.parse_args()
    engine = open_engine(Settings())
    dataset = gold_dataset()
    rows = {}
    for variant in ("before", "no-list", "base-list"):
        engine.terms = KnowledgeTerms(base=None if variant == "base-list" else ())
        retriever = engine.current().retriever
        retriever.terms, retriever.scorer.terms = engine.terms.current, lambda: engine.terms.current().table
        if variant == "before":
            retriever.terms, retriever.scorer.terms = None, default_terms
        summary = summarize_by_mode(run(dataset, EngineBackend(engine), args.modes, show_progress=False))
        for mode, figures in summary.items():
            rows[f"{variant} {mode}"] = {k: figures[k] for k in SHOWN}
    engine.close()
    print(format_table(rows))


if __name__ == "__main__":
    main()

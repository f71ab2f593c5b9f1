"""Writes an evaluation's report.json, report.md and plot.png into one directory."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from index.quality.runner import QuestionResult, summarize

QUALITY = ("doc@1", "passage@1", "passage@3", "mrr@10", "answer", "short_f1", "abstain_r_near", "abstain_r_off")


def format_table(summary: dict[str, dict[str, float]]) -> str:
    """A plain-text table, one row per mode."""
    columns = list(next(iter(summary.values())))
    widths = [max(11, len(c) + 2) for c in columns]
    lines = [f"{'mode':<10}" + "".join(f"{c:>{w}}" for c, w in zip(columns, widths, strict=True))]
    for mode, figures in summary.items():
        lines.append(f"{mode:<10}" + "".join(f"{figures[c]:>{w}.3f}" for c, w in zip(columns, widths, strict=True)))
    return "\n".join(lines)


def by_type(results: list[QuestionResult]) -> dict[str, dict[str, dict[str, float]]]:
    table: dict[str, dict[str, dict[str, float]]] = {}
    for mode in dict.fromkeys(r.mode for r in results):
        rows = [r for r in results if r.mode == mode]
        for kind in sorted({r.type for r in rows}):
            of_kind = [r for r in rows if r.type == kind]
            figures = summarize(of_kind)
            table.setdefault(mode, {})[kind] = {
                "n": len(of_kind),
                **{k: figures[k] for k in ("doc@1", "passage@3", "answer", "abstain_r")},
            }
    return table


def by_answer_type(results: list[QuestionResult]) -> dict[str, dict[str, dict[str, float]]]:
    """Short-answer figures per expected answer type, over the questions with a gold short answer."""
    table: dict[str, dict[str, dict[str, float]]] = {}
    for mode in dict.fromkeys(r.mode for r in results):
        rows = [r for r in results if r.mode == mode and r.short_f1 is not None]
        for kind in sorted({r.answer_type or "" for r in rows}):
            of_kind = [r for r in rows if (r.answer_type or "") == kind]
            table.setdefault(mode, {})[kind] = {
                "n": len(of_kind),
                "short_em": sum(r.short_f1 == 1.0 for r in of_kind) / len(of_kind),
                "short_f1": sum(r.short_f1 for r in of_kind) / len(of_kind),
                "answered": sum(r.answered for r in of_kind) / len(of_kind),
            }
    return table


def misses(results: list[QuestionResult], mode: str) -> list[QuestionResult]:
    """Answerable questions whose top three passages hold no gold answer."""
    return [r for r in results if r.mode == mode and r.answerable and not any(r.passage_hits[:3])]


def write_report(
    directory: Path, *, meta: dict, results: list[QuestionResult], summary: dict, questions: dict[str, str]
) -> Path:
    """Write the three files into a new timestamped folder under ``directory``; return it."""
    folder = Path(directory) / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    folder.mkdir(parents=True, exist_ok=True)
    payload = {
        **meta,
        "summary": summary,
        "by_type": by_type(results),
        "by_answer_type": by_answer_type(results),
        "questions": [{**r.to_json(), "question": questions.get(r.id, "")} for r in results],
    }
    (folder / "report.json").write_text(json.dumps(payload, ensure_ascii=False, indent=2), encoding="utf-8")
    (folder / "report.md").write_text(_markdown(meta, summary, results, questions), encoding="utf-8")
    write_plot(folder / "plot.png", summary, results, title=f"policyqa eval: {meta.get('dataset', '')}")
    return folder


def _markdown(meta: dict, summary: dict, results: list[QuestionResult], questions: dict[str, str]) -> str:
    columns = list(next(iter(summary.values())))
    lines = [
        f"# Evaluation: {meta.get('dataset')}",
        "",
        f"- backend: {meta.get('backend')}; build {meta.get('build_id')}; embedder {meta.get('embedder')}",
        f"- {meta.get('questions')} questions, {meta.get('elapsed_s', 0):.1f} s; created {meta.get('created_at')}",
        "",
        "| mode | " + " | ".join(columns) + " |",
        "|---" * (len(columns) + 1) + "|",
    ]
    for mode, figures in summary.items():
        lines.append(f"| {mode} | " + " | ".join(f"{figures[c]:.3f}" for c in columns) + " |")
    calibration = meta.get("abstention_calibration")
    if calibration:
        lines += [
            "",
            f"Abstention: best relevance threshold {calibration['threshold']:.3f}"
            f" (accuracy {calibration['accuracy']:.3f}); configured {calibration['configured']:.3f}.",
        ]
    for mode in summary:
        missed = misses(results, mode)
        lines += ["", f"## Misses in {mode} mode ({len(missed)}): no gold answer in the top three passages", ""]
        lines += [f"- {r.id} ({r.type}) {questions.get(r.id, '')} → {', '.join(r.ranked_docs[:3])}" for r in missed]
    return "\n".join(lines) + "\n"


def write_plot(path: Path, summary: dict, results: list[QuestionResult], *, title: str) -> None:
    """Quality metrics per mode side by side, and the latency distribution per mode."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display here or on a server
    import matplotlib.pyplot as plt

    modes = list(summary)
    figure, (quality, latency) = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [2.2, 1]})
    width = 0.8 / len(modes)
    for i, mode in enumerate(modes):
        values = [summary[mode][m] for m in QUALITY]
        positions = [j + (i - (len(modes) - 1) / 2) * width for j in range(len(QUALITY))]
        quality.bar(positions, values, width, label=mode)
    quality.set_xticks(range(len(QUALITY)), QUALITY, rotation=20, ha="right")
    quality.set_ylim(0, 1.15)
    quality.set_ylabel("score")
    quality.set_title("retrieval and answer quality")
    quality.legend(loc="upper center", ncol=len(modes), frameon=False)
    quality.grid(axis="y", alpha=0.3)
    latency.boxplot([[r.latency_ms for r in results if r.mode == m] for m in modes], tick_labels=modes)
    latency.set_ylabel("ms per question")
    latency.set_title("latency")
    latency.grid(axis="y", alpha=0.3)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)

"""Writes an evaluation's report.json, report.md and plot.png into one directory."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from index.quality.metrics import expected_calibration_error, reliability_bins
from index.quality.runner import QuestionResult, calibration_pairs, summarize

QUALITY = (
    "doc@1",
    "passage@1",
    "passage@3",
    "mrr@10",
    "answer",
    "sentence@1",
    "short_f1",
    "abstain_r_near",
    "abstain_r_off",
)


def figure_text(key: str, value: float) -> str:
    """A figure as the tables show it: counts (``*_n``) whole, the rest to three places."""
    return str(int(value)) if key.endswith("_n") else f"{value:.3f}"


def format_table(summary: dict[str, dict[str, float]]) -> str:
    """A plain-text table, one row per mode."""
    columns = list(next(iter(summary.values())))
    widths = [max(11, len(c) + 2) for c in columns]
    lines = [f"{'mode':<10}" + "".join(f"{c:>{w}}" for c, w in zip(columns, widths, strict=True))]
    for mode, figures in summary.items():
        cells = (f"{figure_text(c, figures[c]):>{w}}" for c, w in zip(columns, widths, strict=True))
        lines.append(f"{mode:<10}" + "".join(cells))
    return "\n".join(lines)


def reliability(results: list[QuestionResult]) -> dict[str, list[dict[str, float]]]:
    """Per mode, the reliability diagram's bins (modes without a confidence left out)."""
    table = {}
    for mode in dict.fromkeys(r.mode for r in results):
        confidences, outcomes = calibration_pairs([r for r in results if r.mode == mode])
        if confidences:
            table[mode] = [b._asdict() for b in reliability_bins(confidences, outcomes)]
    return table


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


def question_text(questions: Mapping, result: QuestionResult) -> str:
    """A question's wording, from a mapping keyed by (source, id) or by id alone."""
    return questions.get((result.source, result.id)) or questions.get(result.id, "")


def write_report(
    directory: Path, *, meta: dict, results: list[QuestionResult], summary: dict, questions: Mapping
) -> Path:
    """Write the three files into a new timestamped folder under ``directory``; return it.

    ``questions`` maps (source, question id), or just the id when there is one source, to the wording.
    """
    folder = Path(directory) / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    folder.mkdir(parents=True, exist_ok=True)
    payload = {
        **meta,
        "summary": summary,
        "by_type": by_type(results),
        "by_answer_type": by_answer_type(results),
        "reliability": reliability(results),
        "questions": [{**r.to_json(), "question": question_text(questions, r)} for r in results],
    }
    (folder / "report.json").write_text(json.dumps(payload, ensure_ascii=False, indent=2), encoding="utf-8")
    (folder / "report.md").write_text(_markdown(meta, summary, results, questions), encoding="utf-8")
    write_plot(folder / "plot.png", summary, results, title=f"policyqa eval: {meta.get('dataset', '')}")
    return folder


def _markdown(meta: dict, summary: dict, results: list[QuestionResult], questions: Mapping) -> str:
    lines = [
        f"# Evaluation: {meta.get('dataset')}",
        "",
        f"- backend: {meta.get('backend')}; build {meta.get('build_id')}; embedder {meta.get('embedder')}",
        f"- {meta.get('questions')} questions, {meta.get('elapsed_s', 0):.1f} s; created {meta.get('created_at')}",
        "",
        *_markdown_table(summary),
    ]
    calibration = meta.get("abstention_calibration")
    if calibration:
        lines += [
            "",
            f"Abstention: best relevance threshold {calibration['threshold']:.3f}"
            f" (accuracy {calibration['accuracy']:.3f}); configured {calibration['configured']:.3f}.",
        ]
    lines += _markdown_calibration(summary, results)
    by_source = meta.get("by_source") or {}
    if len(by_source) > 1:
        lines += ["", f"## By source ({len(by_source)})", ""]
        lines += _markdown_table({(s, m): f for s, modes in by_source.items() for m, f in modes.items()})
    several = len({r.source for r in results}) > 1
    for mode in summary:
        missed = misses(results, mode)
        lines += ["", f"## Misses in {mode} mode ({len(missed)}): no gold answer in the top three passages", ""]
        lines += [
            f"- {f'{r.source}/' if several else ''}{r.id} ({r.type}) {question_text(questions, r)}"
            f" → {', '.join(r.ranked_docs[:3])}"
            for r in missed
        ]
    return "\n".join(lines) + "\n"


def _markdown_table(rows: dict) -> list[str]:
    """One row per mode, or per (source, mode) when the keys are pairs."""
    columns = list(next(iter(rows.values())))
    keys = ["source", "mode"] if isinstance(next(iter(rows)), tuple) else ["mode"]
    lines = ["| " + " | ".join(keys + columns) + " |", "|---" * (len(keys) + len(columns)) + "|"]
    for key, figures in rows.items():
        labels = list(key) if isinstance(key, tuple) else [key]
        lines.append("| " + " | ".join(labels + [figure_text(c, figures[c]) for c in columns]) + " |")
    return lines


def _markdown_calibration(summary: dict, results: list[QuestionResult]) -> list[str]:
    """The ECE per mode and the reliability bins behind it."""
    lines = ["", "## Calibration of the answers' confidence", ""]
    calibrated = {m: calibration_pairs([r for r in results if r.mode == m]) for m in summary}
    if not any(confidences for confidences, _ in calibrated.values()):
        return lines + ["No answer carried a confidence: no ECE."]
    for mode, (confidences, outcomes) in calibrated.items():
        if not confidences:
            lines += [f"{mode}: no answer carried a confidence.", ""]
            continue
        ece = expected_calibration_error(confidences, outcomes)
        lines += [f"{mode}: ECE {ece:.3f} over {len(confidences)} answers with a confidence.", ""]
        lines += ["| confidence | n | mean confidence | accuracy |", "|---|---|---|---|"]
        lines += [
            f"| {b.low:.1f}-{b.high:.1f} | {b.count} | {b.mean_confidence:.3f} | {b.accuracy:.3f} |"
            for b in reliability_bins(confidences, outcomes)
        ]
        lines.append("")
    return lines


def write_plot(path: Path, summary: dict, results: list[QuestionResult], *, title: str) -> None:
    """Quality metrics per mode side by side, the latency distribution per mode and, when the answers
    carry a confidence, the reliability diagram per mode."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display here or on a server
    import matplotlib.pyplot as plt

    modes = list(summary)
    calibrated = {m: calibration_pairs([r for r in results if r.mode == m]) for m in modes}
    calibrated = {m: pairs for m, pairs in calibrated.items() if pairs[0]}
    ratios = [2.2, 1, 1.2] if calibrated else [2.2, 1]
    figure, axes = plt.subplots(
        1, len(ratios), figsize=(17.5 if calibrated else 13, 4.8), gridspec_kw={"width_ratios": ratios}
    )
    _plot_quality(axes[0], summary)
    _plot_latency(axes[1], results, modes)
    if calibrated:
        _plot_reliability(axes[2], calibrated)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _plot_quality(axis, summary: dict) -> None:
    modes = list(summary)
    width = 0.8 / len(modes)
    for i, mode in enumerate(modes):
        values = [summary[mode][m] for m in QUALITY]
        positions = [j + (i - (len(modes) - 1) / 2) * width for j in range(len(QUALITY))]
        axis.bar(positions, values, width, label=mode)
    axis.set_xticks(range(len(QUALITY)), QUALITY, rotation=20, ha="right")
    axis.set_ylim(0, 1.15)
    axis.set_ylabel("score")
    axis.set_title("retrieval and answer quality")
    axis.legend(loc="upper center", ncol=len(modes), frameon=False)
    axis.grid(axis="y", alpha=0.3)


def _plot_latency(axis, results: list[QuestionResult], modes: list[str]) -> None:
    axis.boxplot([[r.latency_ms for r in results if r.mode == m] for m in modes], tick_labels=modes)
    axis.set_ylabel("ms per question")
    axis.set_title("latency")
    axis.grid(axis="y", alpha=0.3)


def _plot_reliability(axis, calibrated: dict[str, tuple[list[float], list[bool]]]) -> None:
    """Observed accuracy against mean confidence per bin; a point's area grows with its bin's count."""
    axis.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="calibrated")
    largest = max(b.count for pairs in calibrated.values() for b in reliability_bins(*pairs))
    for mode, (confidences, outcomes) in calibrated.items():
        table = reliability_bins(confidences, outcomes)
        ece = expected_calibration_error(confidences, outcomes)
        (line,) = axis.plot(
            [b.mean_confidence for b in table],
            [b.accuracy for b in table],
            marker="",
            label=f"{mode}: ECE {ece:.3f}, n={len(confidences)}",
        )
        sizes = [20 + 180 * b.count / largest for b in table]
        axis.scatter([b.mean_confidence for b in table], [b.accuracy for b in table], s=sizes, color=line.get_color())
    axis.set_xlim(-0.03, 1.03)
    axis.set_ylim(-0.03, 1.08)
    axis.set_xlabel("mean confidence (10 bins; area: answers)")
    axis.set_ylabel("lead sentence answers")
    axis.set_title("reliability")
    axis.legend(loc="best", fontsize="small")
    axis.grid(alpha=0.3)

"""Plots for the benchmarks' reports: matplotlib drawing to files, never to a display."""

from __future__ import annotations

# Reports name 省, 河南 and the like: a CJK font where one is installed (fonts-wqy-microhei), else boxes.
CJK_FONTS = ["WenQuanYi Micro Hei", "Noto Sans CJK SC", "DejaVu Sans"]


def pyplot(*, cjk: bool = False):
    """matplotlib.pyplot on the Agg backend (a headless machine has no display), with a CJK font if asked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if cjk:
        plt.rcParams["font.sans-serif"] = CJK_FONTS
        plt.rcParams["font.family"] = ["sans-serif"]
    return plt

"""The rapidocr engine: PP-OCR's detection and recognition models (inside the rapidocr wheel) run here.

rapidocr's own pipeline recognises six lines per ONNX run, padded to the widest,
and runs its models with spinning thread pools. Here the page is detected at
the resolution its text needs, every line is resized to the model's height,
lines of similar width go through the model together (one run per width
bucket), and each session runs on one thread without spinning: pages run in
parallel instead (``index.ingest.readers.ocr_pages``), which keeps every core
busy on convolutions rather than on waiting.

Only rapidocr's pre- and post-processing (the DB box finder, the CTC decoder,
the crop of a tilted box) and its model files are used; nothing is downloaded.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from index.errors import ConfigurationError
from index.ingest.ocr_lines import OcrLine

DETECTION_MODEL = "PP-OCRv6_det_small.onnx"
RECOGNITION_MODEL = "PP-OCRv6_rec_small.onnx"
# The page's long side for detection. Measured on seed pages in 14 pt and 10 pt, 150 and 200 dpi: 736 reads
# as well as 960 (rapidocr's setting here before) for half the detector's work; 640 starts losing characters
# on 14 pt at 200 dpi.
DETECTION_LONG_SIDE = 736
LINE_HEIGHT = 48  # the recognition model's input height
# Lines are narrowed to this share of their width at the model's height: recognition costs in proportion to
# width, and a Chinese character still spans three to four of the model's 8-pixel steps. Measured on the seed
# pages and on a page of numbers (with detection at 736): 0.75 reads as well as 1.0 with a quarter less work;
# at 0.65 a run of repeated digits ("3333", "1000") starts losing one, at 0.5 often.
LINE_WIDTH_SCALE = 0.75
# Lines are padded to a multiple of this width, so a page's lines fall into a few buckets.
WIDTH_BUCKET = 64
# Width of recognition input a batch may hold (its lines times their width). On one thread a line costs the
# same alone or in a batch of thirty; what a batch adds is memory, about 2.3 KB per column for its largest
# activation and some 15 KB per column in all: 4,000 columns (four or five full lines) hold a run near 60 MB,
# small beside the 2 GB an upload's reading process may use with pages in parallel (``ocr_pages``).
BATCH_COLUMNS = 4_000
MIN_LINE_SCORE = 0.5  # rapidocr's text_score: lines below it are noise


class RapidOcrEngine:
    name = "rapidocr"

    def __init__(self, threads: int = 1, detection_long_side: int = DETECTION_LONG_SIDE) -> None:
        try:
            import onnxruntime
            import rapidocr
            from rapidocr.ch_ppocr_det.utils import DBPostProcess
            from rapidocr.ch_ppocr_rec.utils import CTCLabelDecode
        except ImportError as exc:
            raise ConfigurationError("OCR needs the rapidocr and onnxruntime packages: pip install -e .") from exc
        models = Path(rapidocr.__file__).parent / "models"
        self._detector = _session(onnxruntime, models / DETECTION_MODEL, threads)
        self._recogniser = _session(onnxruntime, models / RECOGNITION_MODEL, threads)
        characters = self._recogniser.get_modelmeta().custom_metadata_map["character"].splitlines()
        self._decode = CTCLabelDecode(character=characters)
        # rapidocr's defaults for its DB post-processing.
        self._boxes = DBPostProcess(
            thresh=0.3, box_thresh=0.5, max_candidates=1000, unclip_ratio=1.6, use_dilation=True, score_mode="fast"
        )
        self.detection_long_side = detection_long_side

    def lines(self, image: np.ndarray) -> list[OcrLine]:
        boxes = self.detect(image)
        crops = [_crop(image, box) for box in boxes]
        lines = []
        for box, (text, score) in zip(boxes, self.recognise(crops), strict=True):
            if text.strip() and score >= MIN_LINE_SCORE:
                xs, ys = box[:, 0], box[:, 1]
                lines.append(
                    OcrLine(text, float(score), (float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())))
                )
        return lines

    def detect(self, grey: np.ndarray) -> np.ndarray:
        """The text boxes (n, 4, 2) of a greyscale page, in its pixels."""
        import cv2

        h, w = grey.shape
        scale = min(1.0, self.detection_long_side / max(h, w))
        # The network wants sides divisible by 32.
        size_w, size_h = max(32, round(w * scale / 32) * 32), max(32, round(h * scale / 32) * 32)
        small = cv2.resize(grey, (size_w, size_h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        plane = small.astype(np.float32) / 127.5 - 1.0
        batch = np.ascontiguousarray(np.broadcast_to(plane, (1, 3, size_h, size_w)))
        (probability,) = self._detector.run(None, {self._detector.get_inputs()[0].name: batch})
        boxes, _ = self._boxes(probability, (h, w))
        return np.asarray(boxes, dtype=np.float32).reshape(-1, 4, 2)

    def recognise(self, crops: list[np.ndarray]) -> list[tuple[str, float]]:
        """Each line image's text and score, lines of a width bucket in one run."""
        resized = [_to_line_height(crop) for crop in crops]
        results: list[tuple[str, float]] = [("", 0.0)] * len(crops)
        for indices, width in _batches([line.shape[1] for line in resized]):
            batch = np.zeros((len(indices), 3, LINE_HEIGHT, width), np.float32)  # 0 is mid-grey once normalised
            for row, index in enumerate(indices):
                line = resized[index]
                batch[row, :, :, : line.shape[1]] = line.astype(np.float32) / 127.5 - 1.0
            (scores,) = self._recogniser.run(None, {self._recogniser.get_inputs()[0].name: batch})
            decoded, _ = self._decode(scores)
            for index, (text, score) in zip(indices, decoded, strict=True):
                results[index] = (text, float(score))
        return results


def _session(onnxruntime, path: Path, threads: int):
    if not path.exists():
        raise ConfigurationError(f"the OCR model {path.name} is missing from the rapidocr package: reinstall it")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # A spinning pool burns the core a parallel page needs, and on a shared machine someone else's.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Without the arena a run's activations are freed when it ends: the reading process's memory cap holds.
    options.enable_cpu_mem_arena = False
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _crop(grey: np.ndarray, box: np.ndarray) -> np.ndarray:
    from rapidocr.utils.process_img import get_rotate_crop_image

    return get_rotate_crop_image(grey, box.copy())


def _to_line_height(crop: np.ndarray) -> np.ndarray:
    import cv2

    h, w = crop.shape[:2]
    width = max(1, math.ceil(LINE_HEIGHT * LINE_WIDTH_SCALE * w / h))
    return cv2.resize(crop, (width, LINE_HEIGHT), interpolation=cv2.INTER_LINEAR)


def _batches(widths: list[int]) -> list[tuple[list[int], int]]:
    """Line indices grouped by padded width, each group split to stay under ``BATCH_COLUMNS``."""
    buckets: dict[int, list[int]] = {}
    for index, width in enumerate(widths):
        buckets.setdefault(math.ceil(width / WIDTH_BUCKET) * WIDTH_BUCKET, []).append(index)
    batches = []
    for width, indices in sorted(buckets.items()):
        per_batch = max(1, BATCH_COLUMNS // width)
        batches.extend((indices[i : i + per_batch], width) for i in range(0, len(indices), per_batch))
    return batches

"""Slides (.pptx): each slide a page, its title a heading, then its text and tables in reading order,
then its speaker notes. Dropped: images, charts, SmartArt, animations, slide layouts' placeholder text."""

from __future__ import annotations

from io import BytesIO

from index.ingest.readers.base import DamagedFileError, ReadDocument, one_line, refuse_encrypted_ooxml


def read_pptx(data: bytes) -> ReadDocument:
    refuse_encrypted_ooxml(data, "PowerPoint")
    from pptx import Presentation

    try:
        presentation = Presentation(BytesIO(data))
        pages = tuple(_slide_text(slide, number) for number, slide in enumerate(presentation.slides, 1))
        title = (presentation.core_properties.title or "").strip() or None
    except Exception as exc:  # zip, XML and key errors alike on a broken file
        raise DamagedFileError("not a valid .pptx file; it may be damaged, or an old .ppt renamed") from exc
    first_title = next((page.split("\n")[0][2:] for page in pages if page.startswith("# ")), None)
    return ReadDocument(
        "\n".join(pages), title or first_title, pages, (None,) * len(pages), summary=f"slides: {len(pages)}"
    )


def _slide_text(slide, number: int) -> str:
    title_shape = slide.shapes.title
    title = one_line(title_shape.text_frame.text) if title_shape is not None and title_shape.has_text_frame else ""
    lines = [f"# {title}" if title else f"# 第{number}页"]
    others = [shape for shape in slide.shapes if title_shape is None or shape.shape_id != title_shape.shape_id]
    for shape in sorted(others, key=_position):
        lines.extend(_shape_lines(shape))
    if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
        notes = [one_line(p.text) for p in slide.notes_slide.notes_text_frame.paragraphs if p.text.strip()]
        if notes:
            lines.append("备注：" + notes[0])
            lines.extend(notes[1:])
    return "\n".join(lines)


def _position(shape) -> tuple[int, int]:
    return (shape.top or 0, shape.left or 0)


def _shape_lines(shape) -> list[str]:
    from pptx.enum.shapes import MSO_SHAPE_TYPE

    if shape.shape_type == MSO_SHAPE_TYPE.GROUP:
        return [line for child in sorted(shape.shapes, key=_position) for line in _shape_lines(child)]
    if getattr(shape, "has_table", False) and shape.has_table:
        rows = []
        for row in shape.table.rows:
            cells = [one_line(cell.text) for cell in row.cells]
            line = " | ".join(cell for cell in cells if cell)
            if line:
                rows.append(line)
        return rows
    if shape.has_text_frame:
        return [one_line(p.text) for p in shape.text_frame.paragraphs if p.text.strip()]
    return []

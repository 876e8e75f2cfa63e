"""Rendering predictions: a rich table for people; JSON, JSON lines and CSV for programs."""

from __future__ import annotations

import csv
import io
import json
from typing import Iterable, TextIO

from rich.table import Table
from rich.text import Text

from .results import Prediction

CSV_FIELDS = ["path", "probability", "verdict", "threshold", "width", "height", "boxes", "error"]


def prediction_json(prediction: Prediction) -> str:
    return json.dumps(prediction.to_dict(), ensure_ascii=False)


def json_document(predictions: list[Prediction], checkpoint: dict) -> str:
    """One document: the checkpoint used, counts, and every result."""
    errors = sum(1 for p in predictions if not p.ok)
    doc = {"checkpoint": checkpoint, "count": len(predictions), "errors": errors,
           "results": [p.to_dict() for p in predictions]}
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


def csv_row(prediction: Prediction) -> dict:
    row = prediction.to_dict()
    row["boxes"] = ";".join(f"{b['x0']},{b['y0']},{b['x1']},{b['y1']}" for b in row["boxes"])
    return {key: "" if row[key] is None else row[key] for key in CSV_FIELDS}


def write_csv(predictions: Iterable[Prediction], handle: TextIO) -> None:
    writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for prediction in predictions:
        writer.writerow(csv_row(prediction))


def csv_text(predictions: Iterable[Prediction]) -> str:
    buffer = io.StringIO()
    write_csv(predictions, buffer)
    return buffer.getvalue()


def results_table(predictions: list[Prediction], title: str | None = None) -> Table:
    """Path, probability, verdict, size and the strongest patch; errors in the verdict column."""
    table = Table(title=title, show_lines=False)
    table.add_column("path", overflow="fold")
    table.add_column("P(generated)", justify="right")
    table.add_column("verdict")
    table.add_column("size", justify="right")
    table.add_column("top patch (x0,y0,x1,y1)")
    for p in predictions:
        if not p.ok:
            table.add_row(Text(p.path), "", Text(f"error: {p.error}", style="red"), "", "")
            continue
        colour = "red" if p.verdict == "generated" else "green"
        top = p.boxes[0] if p.boxes else None
        table.add_row(Text(p.path), f"{p.probability:.3f}", Text(p.verdict, style=colour), f"{p.width}x{p.height}",
                      f"{top.x0},{top.y0},{top.x1},{top.y1}" if top else "")
    return table

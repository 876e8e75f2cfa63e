"""Predictions for people and programs: a rich table; one JSON document, JSON lines (streamed) or CSV.

`write_predictions` writes a stream in any of them, so the CLI, a resumable scan and a Python caller
share one implementation of each format."""

from __future__ import annotations

import csv
import json
from typing import Iterable, Iterator, TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..config import OutputFormat
from ..results import GENERATED, Prediction

CSV_FIELDS = ["path", "probability", "verdict", "threshold", "width", "height", "boxes", "error"]
TABLE_WIDTH = 160  # a table written to a file, or piped, keeps whole rows


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
        colour = "red" if p.verdict == GENERATED else "green"
        top = p.boxes[0] if p.boxes else None
        table.add_row(Text(p.path), f"{p.probability:.3f}", Text(p.verdict, style=colour), f"{p.width}x{p.height}",
                      f"{top.x0},{top.y0},{top.x1},{top.y1}" if top else "")
    return table


def write_predictions(predictions: Iterable[Prediction], fmt: OutputFormat, handle: TextIO, checkpoint: dict,
                      console: Console | None = None) -> Iterator[Prediction]:
    """Write `predictions` to `handle` in `fmt`, yielding each one as it is consumed. JSON lines go out one by
    one as they come; the other formats need the whole list and are written at the end. A table goes to
    `console` when one is given (the terminal's), else to `handle` at a fixed width without colour."""
    done: list[Prediction] = []
    for prediction in predictions:
        done.append(prediction)
        if fmt is OutputFormat.jsonl:
            handle.write(prediction.to_json() + "\n")
            handle.flush()
        yield prediction
    if fmt is OutputFormat.table:
        (console or Console(file=handle, width=TABLE_WIDTH, no_color=True)).print(results_table(done))
    elif fmt is OutputFormat.json:
        handle.write(json_document(done, checkpoint))
    elif fmt is OutputFormat.csv:
        write_csv(done, handle)

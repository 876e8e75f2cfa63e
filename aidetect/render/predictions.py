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
from ..provenance import provenance_summary
from ..results import UNCERTAIN, Prediction

# The verdict's parts, the branches' scores and the provenance summary get a column each; JSON keeps the
# whole objects.
BRANCH_FIELDS = ["fused", "real_only", "real_only_threshold", "real_only_unusual"]
CSV_FIELDS = ["path", "probability", "verdict", "basis", "strength", "threshold", *BRANCH_FIELDS, "width", "height",
              "boxes", "provenance", "sentence", "disagreement", "error"]
TABLE_WIDTH = 160  # a table written to a file, or piped, keeps whole rows


def json_document(predictions: list[Prediction], checkpoint: dict) -> str:
    """One document: the checkpoint used, counts, and every result."""
    errors = sum(1 for p in predictions if not p.ok)
    doc = {"checkpoint": checkpoint, "count": len(predictions), "errors": errors,
           "results": [p.to_dict() for p in predictions]}
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


def csv_row(prediction: Prediction) -> dict:
    row = prediction.to_dict()
    verdict = row.pop("verdict") or {}
    row.update(verdict=verdict.get("label"), basis=verdict.get("basis"), strength=verdict.get("strength"),
               sentence=verdict.get("sentence"), disagreement=verdict.get("disagreement"),
               provenance=provenance_summary(prediction.provenance) if prediction.provenance else None)
    branches = row.pop("branches") or {}
    row.update({key: branches.get(key) for key in BRANCH_FIELDS})
    row["boxes"] = ";".join(f"{b['x0']},{b['y0']},{b['x1']},{b['y1']}" for b in row["boxes"])
    return {key: "" if row[key] is None else row[key] for key in CSV_FIELDS}


def write_csv(predictions: Iterable[Prediction], handle: TextIO) -> None:
    writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for prediction in predictions:
        writer.writerow(csv_row(prediction))


def results_table(predictions: list[Prediction], title: str | None = None) -> Table:
    """Path, probability, verdict and what decided it, provenance, size and the strongest patch. An unreadable
    file's row says so; its reason is a line of its own under the table (`error_lines`), so it never folds."""
    table = Table(title=title, show_lines=False)
    table.add_column("path", overflow="fold")
    table.add_column("P(generated)", justify="right")
    table.add_column("verdict")
    table.add_column("basis")
    if any(p.branches for p in predictions):
        table.add_column("real-only branch")
    table.add_column("provenance", overflow="fold")
    table.add_column("size", justify="right")
    table.add_column("top patch (x0,y0,x1,y1)")
    branch = [real_only_word(p) for p in predictions] if any(p.branches for p in predictions) else None
    for i, p in enumerate(predictions):
        provenance = provenance_summary(p.provenance) if p.provenance else ""
        extra = [] if branch is None else [branch[i]]
        if not p.ok:
            table.add_row(Text(p.path), "", Text("unreadable", style="red"), "", *extra, Text(provenance), "", "")
            continue
        top = p.boxes[0] if p.boxes else None
        colour = "red" if p.flagged else "yellow" if p.label == UNCERTAIN else "green"
        table.add_row(Text(p.path), f"{p.probability:.3f}", Text(p.label, style=colour),
                      p.verdict.basis, *extra, Text(provenance), f"{p.width}x{p.height}",
                      f"{top.x0},{top.y0},{top.x1},{top.y1}" if top else "")
    return table


def real_only_word(prediction: Prediction) -> str:
    """The real-only branch's word on one image: unlike real photos, or like them (not in the verdict)."""
    found = prediction.branches
    if found is None or found.real_only is None:
        return ""
    return "unusual" if found.real_only_unusual else "usual"


def disagreements_table(predictions: list[Prediction]) -> Table | None:
    """Files whose provenance and pixels disagree, with what each said; None when there are none."""
    rows = [(p.path, p.verdict.disagreement) for p in predictions if p.verdict and p.verdict.disagreement]
    if not rows:
        return None
    table = Table(title="provenance and pixels disagree")
    table.add_column("path", overflow="fold")
    table.add_column("what each says", overflow="fold")
    for path, text in rows:
        table.add_row(Text(path), Text(text))
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
        console = console or Console(file=handle, width=TABLE_WIDTH, no_color=True)
        console.print(results_table(done))
        for p in done:
            if not p.ok:
                console.print(f"error: {p.path}: {p.error}", markup=False, highlight=False, soft_wrap=True)
        if disagreements := disagreements_table(done):
            console.print(disagreements)
    elif fmt is OutputFormat.json:
        handle.write(json_document(done, checkpoint))
    elif fmt is OutputFormat.csv:
        write_csv(done, handle)

"""A checkpoint's card as a two-column table (`aidetect info`)."""

from __future__ import annotations

import json

from rich.table import Table


def checkpoint_table(summary: dict, name: str) -> Table:
    table = Table(show_header=False, title=f"checkpoint {name}")
    for key, value in summary.items():
        table.add_row(key, json.dumps(value, indent=1, default=str) if isinstance(value, (dict, list)) else str(value))
    return table

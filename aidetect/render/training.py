"""The table of a frozen training run: AP per held-out generator, and their mean (what the run was chosen on)."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table


def selection_table(per_generator: dict[str, float], mean_ap: float, title: str) -> Table:
    table = Table(title=title)
    table.add_column("generator")
    table.add_column("AP", justify="right")
    for name, ap in per_generator.items():
        table.add_row(escape(name), f"{ap:.3f}")
    table.add_row("[bold]mean[/bold]", f"[bold]{mean_ap:.3f}[/bold]")
    return table

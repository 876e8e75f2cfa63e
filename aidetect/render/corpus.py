"""Tables of the training corpus: its manifest (`corpus list`), its data card (`corpus build`, and the
card's text beside corpus.json) and a format-and-size check (`corpus bias`). They read plain dicts, so the
corpus code renders its card without the CLI."""

from __future__ import annotations

from collections import Counter
from typing import Iterable, Mapping

from rich.table import Table


def manifest_table(summary: dict) -> Table:
    """One row per source (corpus.manifest.manifest_summary): kind, generators, families, splits, pin, licence."""
    table = Table(title=f"{len(summary['sources'])} sources, {len(summary['generators'])} generators ({summary['manifest']})")
    for column in ("id", "kind", "generators", "families", "split", "repository", "commit", "licence"):
        table.add_column(column, overflow="fold")
    generators = {g["id"]: g for g in summary["generators"]}
    for source in summary["sources"]:
        names = source["generators"]
        shown = ", ".join(names[:3]) + (f" +{len(names) - 3} more" if len(names) > 3 else "") if names else "-"
        families = sorted({generators[g]["family"] for g in names}) or ["-"]
        splits = Counter(generators[g]["split"] for g in names) if names else Counter({source["split"]: 1})
        split = source["split"] if not names else ", ".join(f"{k} {v}" for k, v in sorted(splits.items()))
        table.add_row(source["id"], source["kind"], shown, ", ".join(families), split, source["repo"], source["commit"][:12],
                      source["licence"])
    return table


def _formats(formats: Mapping[str, int]) -> str:
    return " ".join(f"{name} {count}" for name, count in formats.items())


def _quality(stats: dict | None) -> str:
    return "-" if not stats else f"{stats['median']} [{stats['min']}-{stats['max']}]"


def card_tables(card: dict) -> Iterable[Table]:
    """The card for a terminal: one row per split x source x generator, then per split and class."""
    table = Table(title="corpus: per source and generator")
    for column in ("split", "source", "generator", "class", "images", "formats", "JPEG q", "median size", "MP range", "licence"):
        table.add_column(column, justify="right" if column in ("images", "JPEG q", "MP range") else "left", overflow="fold")
    for group in card["groups"]:
        mp = group["megapixels"]
        table.add_row(group["split"], group["source"], group["generator"] or "-", group["class"], str(group["count"]),
                      _formats(group["formats"]), _quality(group["jpeg_quality"]),
                      f"{group['width']['median']}x{group['height']['median']}", f"{mp['min']}-{mp['max']}",
                      group["licence"])
    yield table
    totals = Table(title="per split and class")
    for column in ("split", "class", "images", "formats", "JPEG q", "median size", "MP range"):
        totals.add_column(column)
    for row in card["by_class"]:
        mp = row["megapixels"]
        totals.add_row(row["split"], row["class"], str(row["count"]), _formats(row["formats"]),
                       _quality(row["jpeg_quality"]), f"{row['width']['median']}x{row['height']['median']}",
                       f"{mp['min']}-{mp['max']}")
    yield totals
    dropped = Table(title="left out, per source")
    dropped.add_column("source")
    dropped.add_column("reasons")
    for source, counts in card["dropped"].items():
        dropped.add_row(source, ", ".join(f"{reason} {count}" for reason, count in counts.items()))
    yield dropped
    bias = card["bias_check"]
    yield bias_table(bias, f"can format and size alone tell real from fake? ROC AUC, {bias.get('folds', '-')}-fold, "
                           f"{bias['split']} split (0.5: no)")


def bias_table(check: dict, title: str) -> Table:
    """A format-and-size check (corpus.card.format_size_auc): ROC AUC per classifier and feature set."""
    table = Table(title=title)
    for column in ("classifier", "features", "AUC"):
        table.add_column(column, justify="right" if column == "AUC" else "left")
    for features, auc in check.get("gradient_boosting_auc", {}).items():
        table.add_row("gradient boosting", features, f"{auc:.3f}")
    if "logistic_regression_auc" in check:
        table.add_row("logistic regression", "format and size", f"{check['logistic_regression_auc']:.3f}")
    return table

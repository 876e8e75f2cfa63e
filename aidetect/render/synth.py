"""The table of `aidetect synth`: per decoder family, how it trained and how its fakes compare with their twins."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

COLUMNS = ("arch", "steps", "sharp by target", "held-out PSNR", "fakes", "PSNR vs twin", "sharpness fake/real",
           "AUC sharpness", "AUC luminance", "AUC saturation", "written to")
AUC_NOTE = ("AUC: how well one trivial statistic alone (Laplacian energy, mean luminance, mean saturation) tells "
            "the fakes from their twins (0.5 = not at all).")


def synth_table(report, out_root: str) -> Table:
    """`report`: a synth.build.SynthReport."""
    table = Table(title=f"{report.reals} real photos -> {out_root}")
    for column in COLUMNS:
        table.add_column(column, justify="left" if column in ("arch", "written to") else "right", overflow="fold")
    for row in report.archs:
        fit = row.fit
        table.add_row(fit.arch, "pretrained" if row.weights else str(fit.steps), "yes" if fit.reached else "[red]no[/red]",
                      f"{fit.psnr:.1f} dB", str(row.images), f"{row.psnr:.1f} dB", f"{row.sharpness_ratio:.2f}",
                      f"{row.sharpness_auc:.2f}", f"{row.luminance_auc:.2f}", f"{row.saturation_auc:.2f}",
                      escape(row.folder))
    return table

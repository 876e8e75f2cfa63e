"""The `aidetect` command line: one module per command group, over the shared options and helpers of
common.py. Commands parse, call the library and render; no model logic lives here.

Start-up matters (`aidetect --help` answers at once): nothing heavy is imported at the top of any of these
modules; each command imports the library it calls, and option defaults come from the torch-free config
dataclasses (config.py, synth/config.py), so every default is written once."""

from __future__ import annotations

import gc

import typer

from . import corpus, evaluation, provenance, scan, synth, training

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Tell AI-generated images from real photographs (fused global + local patches).")
app.command()(scan.scan)
app.command()(scan.explain)
app.command()(scan.info)
app.command()(provenance.provenance)
app.command()(training.train)
app.command()(training.adapt)
app.command("eval")(evaluation.eval_command)
app.command()(evaluation.calibrate)
app.command()(evaluation.convert)
app.command()(evaluation.bench)
app.command()(synth.synth)
app.add_typer(corpus.app, name="corpus")


def main() -> None:
    """The `aidetect` command. On the way out the collector is told to leave every live object alone: the
    interpreter's teardown would otherwise walk all of torch's objects once more (README, "Speed and memory")."""
    try:
        app()
    finally:
        gc.freeze()

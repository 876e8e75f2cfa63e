"""What every command shares: the consoles, exit codes, option types, one-line failures, the progress bar and
the report of inputs left out. Nothing heavy is imported here, so `aidetect --help` answers at once."""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Annotated, Iterable, Iterator, List, NoReturn, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ..config import AdaptConfig, AugmentConfig, BenchConfig, HeadConfig, ModelConfig, TrainConfig
from ..synth.config import FitConfig

if TYPE_CHECKING:
    from ..engine import Detector
    from ..inputs import InputItem

out = Console(width=None if sys.stdout.isatty() else 160)  # full rows when piped to a file
err = Console(stderr=True, soft_wrap=True)  # one message, one line: paths never wrap, so logs grep

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2
PROGRESS_MIN_ITEMS = 8  # fewer inputs than this finish before a bar would help


def defaults(config_class: type) -> SimpleNamespace:
    """A dataclass's field defaults, read without making an instance (making a ModelConfig loads torch)."""
    return SimpleNamespace(**{f.name: f.default for f in dataclasses.fields(config_class)
                              if f.default is not dataclasses.MISSING})


MODEL, AUGMENT, TRAIN, HEADS, ADAPT, BENCH, FIT = (defaults(c) for c in (
    ModelConfig, AugmentConfig, TrainConfig, HeadConfig, AdaptConfig, BenchConfig, FitConfig))

# Options shared by the commands that run a checkpoint on images (one definition each).
Paths = Annotated[List[str], typer.Argument(help="Image files, folders or glob patterns.")]
Weights = Annotated[Optional[Path], typer.Option("--weights", "-w", help="Checkpoint (default: $AIDETECT_WEIGHTS, then the shipped one).")]
Threshold = Annotated[Optional[float], typer.Option("--threshold", "-t", min=0.0, max=1.0, help="P(generated) at or above which the pixels say 'generated' (default: the checkpoint's); its lower threshold of 'no sign of generation' stays, capped at this one.")]
BatchSize = Annotated[Optional[int], typer.Option("--batch-size", "-b", min=1, help="Images per forward pass (default: 1 on the CPU, where it measured fastest; 16 on GPUs).")]
Workers = Annotated[int | None, typer.Option("--workers", "-j", min=0, show_default=False, help="Decoding worker processes (0: decode in this process; default 2, none on a CPU of 2 cores or fewer).")]
Device = Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.")]
Recursive = Annotated[bool, typer.Option("--recursive/--no-recursive", help="Descend into sub-folders.")]
MaxPixels = Annotated[int, typer.Option("--max-pixels", min=1, help="Refuse images with more pixels than this.")]
ShowProgress = Annotated[bool, typer.Option("--progress/--no-progress", help="Progress bar on stderr for more than a few images.")]
ReadProvenance = Annotated[bool, typer.Option("--provenance/--no-provenance", help="Read what each file declares about its origin (Content Credentials, XMP, PNG text, EXIF) and let a declaration decide before the pixels.")]
RunRealOnly = Annotated[bool, typer.Option("--real-only/--no-real-only", help="Run the checkpoint's real-only branch, when it has one, and report its score beside the fused model's (about 40 ms an image on a CPU core).")]


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """One red line on stderr, then exit (2: a usage error, by default)."""
    err.print(f"[bold red]error:[/bold red] {escape(message)}", highlight=False, markup=True)
    raise typer.Exit(code)


def finish(failed: int | bool) -> NoReturn:
    """Exit 1 when some input could not be used, else 0."""
    raise typer.Exit(EXIT_SOME_FAILED if failed else EXIT_OK)


def note(message: str) -> None:
    """A line on stderr, printed as it is (paths with brackets stay whole)."""
    err.print(message, highlight=False, markup=False)


def report_left_out(errors: Iterable[tuple[str, str]]) -> None:
    """One line per input a command could not read: the run went on without it."""
    for path, reason in errors:
        note(f"unreadable, left out: {path}: {reason}")


def load_detector(weights: Optional[Path], **options) -> Detector:
    """Detector.load, with a bad checkpoint or option as a usage error (one line)."""
    from ..checkpoint import CheckpointError
    from ..engine import Detector

    try:
        return Detector.load(weights, **options)
    except (CheckpointError, ValueError) as exc:
        fail(str(exc))


def find_inputs(paths: list[str], recursive: bool) -> list[InputItem]:
    """The images under `paths`; none at all is an error (exit 1)."""
    from ..inputs import iter_inputs

    items = list(iter_inputs(paths, recursive=recursive))
    if not items:
        fail("no images found in the given paths", EXIT_SOME_FAILED)
    return items


def make_folder(path: Path, option: str) -> None:
    """Create an output folder up front, so that a bad one is a usage error before any work."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"{option} {path}: cannot create this folder ({exc.strerror or exc})")


def progress_bar(enabled: bool) -> Progress:
    """The progress bar of every long command: on stderr, gone when done."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    return Progress(*columns, console=err, transient=True, disable=not enabled)


def with_progress(stream: Iterable, total: int, enabled: bool, description: str = "scanning") -> Iterator:
    """Pass a stream through, advancing a bar per item (only for more than a few items)."""
    with progress_bar(enabled and total >= PROGRESS_MIN_ITEMS) as bar:
        task = bar.add_task(description, total=total)
        for item in stream:
            bar.advance(task)
            yield item


@dataclasses.dataclass
class Step:
    """The callbacks a long library call reports its progress through."""

    bar: Progress
    task: int

    def advance(self, n: int = 1) -> None:
        self.bar.advance(self.task, n)

    def stage(self, name: str, done: int, total: int | None) -> None:
        self.bar.update(self.task, description=name, completed=done, total=total)


@contextlib.contextmanager
def running(description: str, enabled: bool = True, total: int | None = None,
            catch: tuple[type[Exception], ...] = (ValueError,)) -> Iterator[Step]:
    """A progress bar for one long library call; the errors in `catch` become one-line usage errors."""
    with progress_bar(enabled) as bar:
        try:
            yield Step(bar, bar.add_task(description, total=total))
        except catch as exc:
            fail(str(exc))


def int_list(text: str) -> tuple[int, ...]:
    """Positive integers separated by commas (--sizes, --batches, --crop)."""
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        fail(f"expected positive integers separated by commas, got {text!r}")
    return values


def crop_text(crop: tuple[int, int] | None) -> str:
    return "whole" if crop is None else f"{crop[0]},{crop[1]}"


def crop_range(text: str) -> tuple[int, int] | None:
    """--crop: 'whole', or MIN,MAX with 1 <= MIN <= MAX."""
    if text == "whole":
        return None
    sides = int_list(text)
    if len(sides) != 2 or sides[0] > sides[1]:
        fail(f"--crop takes MIN,MAX (MIN <= MAX) or 'whole', got {text!r}")
    return sides[0], sides[1]

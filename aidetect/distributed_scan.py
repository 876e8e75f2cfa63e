"""Scans to a JSON-lines file across processes and machines (torchrun), resumable after a kill.

Under torchrun (WORLD_SIZE > 1) rank r scans inputs r, r + W, r + 2W... (the input listing is
sorted, so every rank computes the same one) and appends its lines to OUTPUT.part-r-of-W. After
a barrier, rank 0 interleaves the parts into OUTPUT in input order and removes them. With
`resume`, every rank first reads back what its part (and any result file of an earlier run of
this output: the merged file, parts of another world size) already holds and scans only the rest;
a single process resumes by appending to OUTPUT itself.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Callable, Iterator

from .engine import Detector
from .inputs import InputItem, display_path
from .results import Prediction, record_label
from .resume import ResultsError, done_paths, in_order, interleave, merge_by_path, repair
from .runtime import World

# Ranks that finish early wait at the barrier for the slowest one, up to this long.
BARRIER_TIMEOUT = timedelta(hours=24)

Wrap = Callable[[Iterator[Prediction], int], Iterator[Prediction]]


def part_path(output: Path, world: World, rank: int | None = None) -> Path:
    """Where a rank writes: OUTPUT itself for a single process, else OUTPUT.part-RANK-of-WORLD."""
    if world.size == 1:
        return output
    return output.with_name(f"{output.name}.part-{world.rank if rank is None else rank}-of-{world.size}")


@dataclass
class ScanTotals:
    """Counts over the finished output file (earlier runs' records included)."""

    count: int = 0
    labels: Counter = field(default_factory=Counter)  # verdict label -> how many
    failed: int = 0


def earlier_results(output: Path, world: World) -> list[Path]:
    """Result files of earlier runs of `output` that this run does not write: parts of another world
    size, and the merged output when this run writes parts."""
    own = {part_path(output, world, r) for r in range(world.size)}
    found = sorted(p for p in output.parent.glob(f"{output.name}.part-*-of-*") if p not in own)
    return found + ([output] if world.size > 1 and output.exists() else [])


def _totals(output: Path) -> ScanTotals:
    totals = ScanTotals()
    with open(output, encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            totals.count += 1
            if record.get("error") is None:
                totals.labels[record_label(record)] += 1
            totals.failed += record.get("error") is not None
    return totals


def finish(output: Path, names: list[str], world: World, earlier: list[Path]) -> ScanTotals:
    """Rank 0, after every rank is done: one record per input in OUTPUT, in input order; parts removed."""
    parts = [part_path(output, world, r) for r in range(world.size)]
    aligned = in_order(output, names) if world.size == 1 else interleave(output, parts, names)
    if not aligned:  # the inputs or the world size changed since an earlier run: gather by path
        merge_by_path(output, [p for p in parts + earlier if p.exists()], names)
    for path in set(parts + earlier) - {output}:
        path.unlink(missing_ok=True)
    return _totals(output)


def scan_to_jsonl(detector: Detector, items: list[InputItem], output: Path, world: World, resume: bool,
                  wrap: Wrap = lambda stream, total: stream) -> ScanTotals:
    """This rank's share of the scan, one flushed line per image; every rank returns the final totals.
    `wrap` sees this rank's prediction stream and its length (for a progress bar)."""
    output = Path(output)
    own = part_path(output, world)
    mine = world.take(items)
    earlier = earlier_results(output, world) if resume else []
    if resume:
        done = set(repair(own)).union(*(done_paths(path) for path in earlier))
        mine = [item for item in mine if display_path(item.path) not in done]
    own.parent.mkdir(parents=True, exist_ok=True)
    with open(own, "a" if resume else "w", encoding="utf-8") as handle:
        for prediction in wrap(detector.iter_predict(mine), len(mine)):
            handle.write(prediction.to_json() + "\n")
            handle.flush()  # a kill loses at most the line being written
    names = [display_path(item.path) for item in items]
    if world.size == 1:
        return finish(output, names, world, earlier)
    world.join("gloo", BARRIER_TIMEOUT)  # objects and a barrier only: gloo, whatever the device
    world.barrier()
    try:
        outcome = finish(output, names, world, earlier) if world.main else None
    except ResultsError as exc:  # every rank fails with rank 0, none waits for it
        outcome = exc
    outcome = world.broadcast(outcome)
    world.leave()
    if isinstance(outcome, ResultsError):
        raise outcome
    return outcome

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
import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Callable, Iterator

import torch
import torch.distributed as dist

from .engine import Detector, Prediction
from .formats import prediction_json
from .inputs import InputItem, display_path
from .resume import ResultsError, done_paths, in_order, interleave, merge_by_path, repair

# Ranks that finish early wait at the barrier for the slowest one, up to this long.
BARRIER_TIMEOUT = timedelta(hours=24)

Wrap = Callable[[Iterator[Prediction], int], Iterator[Prediction]]


@dataclass(frozen=True)
class Shard:
    """This process's share of a scan, from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> "Shard":
        env = os.environ
        return cls(int(env.get("RANK", "0")), int(env.get("WORLD_SIZE", "1")), int(env.get("LOCAL_RANK", "0")))

    def take(self, items: list) -> list:
        return items[self.rank::self.world]

    def device(self, device: str) -> str:
        """One GPU per process: a bare auto/cuda becomes cuda:LOCAL_RANK when several processes share a machine."""
        if self.world > 1 and device in ("auto", "cuda") and torch.cuda.is_available():
            return f"cuda:{self.local_rank % torch.cuda.device_count()}"
        return device

    def part(self, output: Path, rank: int | None = None) -> Path:
        """Where a rank writes: OUTPUT itself for a single process, else OUTPUT.part-RANK-of-WORLD."""
        if self.world == 1:
            return output
        return output.with_name(f"{output.name}.part-{self.rank if rank is None else rank}-of-{self.world}")


@dataclass
class ScanTotals:
    """Counts over the finished output file (earlier runs' records included)."""

    count: int = 0
    generated: int = 0
    failed: int = 0


def earlier_results(output: Path, shard: Shard) -> list[Path]:
    """Result files of earlier runs of `output` that this run does not write: parts of another world
    size, and the merged output when this run writes parts."""
    own = {shard.part(output, r) for r in range(shard.world)}
    found = sorted(p for p in output.parent.glob(f"{output.name}.part-*-of-*") if p not in own)
    return found + ([output] if shard.world > 1 and output.exists() else [])


def _totals(output: Path) -> ScanTotals:
    totals = ScanTotals()
    with open(output, encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            totals.count += 1
            totals.generated += record.get("verdict") == "generated"
            totals.failed += record.get("error") is not None
    return totals


def finish(output: Path, names: list[str], shard: Shard, earlier: list[Path]) -> ScanTotals:
    """Rank 0, after every rank is done: one record per input in OUTPUT, in input order; parts removed."""
    parts = [shard.part(output, r) for r in range(shard.world)]
    aligned = in_order(output, names) if shard.world == 1 else interleave(output, parts, names)
    if not aligned:  # the inputs or the world size changed since an earlier run: gather by path
        merge_by_path(output, [p for p in parts + earlier if p.exists()], names)
    for path in set(parts + earlier) - {output}:
        path.unlink(missing_ok=True)
    return _totals(output)


def scan_to_jsonl(detector: Detector, items: list[InputItem], output: Path, shard: Shard, resume: bool,
                  wrap: Wrap = lambda stream, total: stream) -> ScanTotals:
    """This rank's share of the scan, one flushed line per image; every rank returns the final totals.
    `wrap` sees this rank's prediction stream and its length (for a progress bar)."""
    output = Path(output)
    own = shard.part(output)
    mine = shard.take(items)
    earlier = earlier_results(output, shard) if resume else []
    if resume:
        done = set(repair(own)).union(*(done_paths(path) for path in earlier))
        mine = [item for item in mine if display_path(item.path) not in done]
    own.parent.mkdir(parents=True, exist_ok=True)
    with open(own, "a" if resume else "w", encoding="utf-8") as handle:
        for prediction in wrap(detector.iter_predict(mine), len(mine)):
            handle.write(prediction_json(prediction) + "\n")
            handle.flush()  # a kill loses at most the line being written
    names = [display_path(item.path) for item in items]
    if shard.world == 1:
        return finish(output, names, shard, earlier)
    if not dist.is_initialized():
        dist.init_process_group("gloo", timeout=BARRIER_TIMEOUT)
    dist.barrier()
    try:
        box = [finish(output, names, shard, earlier) if shard.rank == 0 else None]
    except ResultsError as exc:  # every rank fails with rank 0, none waits for it
        box = [exc]
    dist.broadcast_object_list(box, src=0)
    dist.destroy_process_group()
    if isinstance(box[0], ResultsError):
        raise box[0]
    return box[0]

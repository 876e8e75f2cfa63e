"""The HTML report of a scan (`aidetect scan --report DIR`): one page to sort, filter and browse.

It must open from disk, offline, years later: DIR/index.html carries its CSS and JS inline and loads
nothing from the network; its images sit beside it (thumbs/ for thumbnails, explain/ for the
explanation pictures and their JSON) and are linked by relative paths. Rows are rendered as HTML, so
the table reads without JS; the script only sorts and filters them.
"""

from __future__ import annotations

import datetime as _dt
import html
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence
from urllib.parse import quote

from ..atomic import atomic_open
from ..explain import Explained
from ..provenance import provenance_summary
from ..results import GENERATED, LABELS, NO_SIGN, UNCERTAIN, Prediction
from .predictions import real_only_word

THUMB_SIDE = 128
BINS = 20
EXPLAIN_DIR, THUMB_DIR = "explain", "thumbs"


@dataclass
class Row:
    """One readable image as the table shows it; links are relative to index.html."""

    prediction: Prediction
    thumb: str
    picture: str
    record: str


class ScanReport:
    """Collects the results of an explain stream (`explain.explain_inputs` into `explain_dir`) while they pass
    by, then writes DIR/index.html. It runs no model: the caller drives the stream."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = Path(out_dir)
        self.explain_dir = self.out_dir / EXPLAIN_DIR  # where the explain stream must write, for the links
        self.rows: list[Row] = []
        self.errors: list[Prediction] = []

    def collect(self, results: Iterable[Explained]) -> Iterator[Prediction]:
        """Record each result (writing its thumbnail) and pass its prediction on."""
        for result in results:
            if result.picture is None or result.display is None:
                self.errors.append(result.prediction)
            else:
                self.rows.append(self._row(result))
            yield result.prediction

    def _row(self, result: Explained) -> Row:
        thumb = result.display.copy()
        thumb.thumbnail((THUMB_SIDE, THUMB_SIDE))
        path = self.out_dir / THUMB_DIR / f"{result.name}.jpg"
        with atomic_open(path, "wb") as handle:
            thumb.save(handle, format="JPEG", quality=85)
        picture = result.picture.name
        return Row(result.prediction, f"{THUMB_DIR}/{quote(path.name)}", f"{EXPLAIN_DIR}/{quote(picture)}",
                   f"{EXPLAIN_DIR}/{quote(picture.removesuffix('.png') + '.json')}")

    def write(self, checkpoint: dict) -> Path:
        """DIR/index.html, atomically; returns its path."""
        path = self.out_dir / "index.html"
        with atomic_open(path, "w", encoding="utf-8") as handle:
            handle.write(render_page(self.rows, self.errors, checkpoint))
        return path


def histogram_svg(probabilities: Sequence[float], threshold: float, bins: int = BINS,
                  lower_threshold: float | None = None) -> str:
    """Counts of probabilities in `bins` equal bins over [0, 1], as inline SVG with the thresholds marked
    (bars of the uncertain band between `lower_threshold` and `threshold` coloured apart)."""
    lower = threshold if lower_threshold is None else min(lower_threshold, threshold)
    counts = [0] * bins
    for p in probabilities:
        counts[min(int(p * bins), bins - 1)] += 1
    width, height, left, bottom, top = 640, 190, 36, 24, 22
    plot_w, plot_h, peak = width - left - 10, height - bottom - top, max(counts + [1])
    bar_w = plot_w / bins
    parts = [f'<svg id="histogram" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" role="img" aria-label="histogram of probabilities">']
    for k, count in enumerate(counts):
        low, high = k / bins, (k + 1) / bins
        bar_h = plot_h * count / peak
        middle = (low + high) / 2
        kind = css_class(GENERATED if middle >= threshold else NO_SIGN if middle < lower else UNCERTAIN)
        parts.append(f'<rect class="bar {kind}" x="{left + k * bar_w + 1:.1f}" y="{top + plot_h - bar_h:.1f}" '
                     f'width="{bar_w - 2:.1f}" height="{bar_h:.1f}" data-count="{count}">'
                     f'<title>{low:.2f} to {high:.2f}: {count} image{"s" if count != 1 else ""}</title></rect>')
    axis_y = top + plot_h
    parts.append(f'<line class="axis" x1="{left}" y1="{axis_y}" x2="{left + plot_w}" y2="{axis_y}"/>')
    for tick in (0, 0.25, 0.5, 0.75, 1):
        parts.append(f'<text x="{left + tick * plot_w:.1f}" y="{height - 6}" text-anchor="middle">{tick:g}</text>')
    parts.append(f'<text x="{left - 6}" y="{top + 4}" text-anchor="end">{peak}</text>'
                 f'<text x="{left - 6}" y="{axis_y}" text-anchor="end">0</text>')
    marks = [(threshold, "threshold")] + ([(lower, "lower")] if lower < threshold else [])
    for value, name in marks:
        x = left + value * plot_w
        anchor = "end" if value > 0.85 else "start" if value < 0.15 else "middle"  # labels stay inside the plot
        parts.append(f'<line class="threshold" x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{axis_y}"/>'
                     f'<text x="{x:.1f}" y="{top - 8}" text-anchor="{anchor}">{name} {value:.3g}</text>')
    parts.append("</svg>")
    return "".join(parts)


def css_class(label: str) -> str:
    return label.replace(" ", "-")


def _table_row(row: Row) -> str:
    p = row.prediction
    esc = html.escape
    provenance = provenance_summary(p.provenance) if p.provenance else "not read"
    return (f'<tr data-path="{esc(p.path)}" data-probability="{p.probability}" data-verdict="{esc(p.label)}" '
            f'data-pixels="{p.width * p.height}">'
            f'<td><a href="{row.picture}"><img src="{row.thumb}" alt="thumbnail of {esc(p.path)}" loading="lazy"></a></td>'
            f'<td class="path">{esc(p.path)}</td><td class="num">{p.probability:.4f}</td>'
            f'<td><span class="verdict {css_class(p.label)}" title="{esc(p.verdict.sentence)}">{esc(p.label)}</span> '
            f'<span class="basis">{esc(p.verdict.basis)}, {esc(p.verdict.strength)}</span>{_branch_note(p)}</td>'
            f'<td class="provenance">{esc(provenance)}</td>'
            f'<td class="num">{p.width}&times;{p.height}</td>'
            f'<td><a class="explanation" href="{row.picture}">picture</a> &middot; '
            f'<a class="record" href="{row.record}">numbers</a></td></tr>')


def _branch_note(p: Prediction) -> str:
    """The real-only branch's word under the verdict (not part of it), when the checkpoint has the branch."""
    word = real_only_word(p)
    return f'<br><span class="basis" title="real-only branch score {p.branches.real_only:.1f} (threshold ' \
           f'{p.branches.real_only_threshold:.1f}); not in the verdict">real-only: {word}</span>' if word else ""


def _disagreements(rows: list[Row]) -> str:
    """The section that lists files whose provenance and pixels disagree (empty when none do)."""
    items = "".join(f"<li><code>{html.escape(r.prediction.path)}</code>: {html.escape(r.prediction.verdict.disagreement)}</li>"
                    for r in rows if r.prediction.verdict.disagreement)
    return f'<section id="disagreements"><h2>Provenance and pixels disagree</h2><ul>{items}</ul></section>' if items else ""


def render_page(rows: list[Row], errors: list[Prediction], checkpoint: dict) -> str:
    """The whole index.html."""
    threshold = float(checkpoint.get("threshold", 0.5))
    labels = {label: sum(1 for r in rows if r.prediction.label == label) for label in LABELS}
    when = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
    error_items = "".join(f"<li><code>{html.escape(p.path)}</code>: {html.escape(p.error or '')}</li>" for p in errors)
    errors_html = (f'<section id="errors"><h2>Unreadable ({len(errors)})</h2><ul>{error_items}</ul></section>'
                   if errors else "")
    return _PAGE.format(
        name=html.escape(str(checkpoint.get("name", ""))), threshold=f"{threshold:g}", when=when,
        total=len(rows) + len(errors), failed=len(errors),
        counts=", ".join(f"{count} {html.escape(label)}" for label, count in labels.items()),
        options="".join(f'<option value="{html.escape(label)}">{html.escape(label)}</option>' for label in labels),
        histogram=histogram_svg([r.prediction.probability for r in rows], threshold,
                                lower_threshold=checkpoint.get("lower_threshold")),
        rows="\n".join(_table_row(r) for r in rows), disagreements=_disagreements(rows), errors=errors_html,
        style=_STYLE, script=_SCRIPT)


_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1a1a1a; background: #fafafa; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; }
.meta { color: #555; margin-bottom: 16px; }
#histogram text { font-size: 11px; fill: #444; }
#histogram .bar.no-sign-of-generation { fill: #3a8f5c; } #histogram .bar.generated { fill: #c8413b; }
#histogram .bar.uncertain { fill: #b08d12; }
#histogram .axis { stroke: #444; } #histogram .threshold { stroke: #222; stroke-dasharray: 4 3; }
.controls { margin: 16px 0 8px; display: flex; gap: 12px; align-items: center; }
.controls input { width: 280px; padding: 4px; }
table { border-collapse: collapse; background: #fff; }
th, td { padding: 4px 10px; border-bottom: 1px solid #ddd; text-align: left; vertical-align: middle; }
th button { font: inherit; font-weight: 600; border: 0; background: none; cursor: pointer; padding: 0; }
th[aria-sort="ascending"] button::after { content: " \\25B2"; }
th[aria-sort="descending"] button::after { content: " \\25BC"; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.path { max-width: 480px; overflow-wrap: anywhere; }
td img { max-width: 128px; max-height: 128px; display: block; }
.verdict { padding: 1px 8px; border-radius: 8px; color: #fff; }
.verdict.no-sign-of-generation { background: #3a8f5c; } .verdict.generated { background: #c8413b; }
.verdict.ai-edited { background: #c27c1b; } .verdict.uncertain { background: #b08d12; }
.verdict.undetermined { background: #777; }
.basis { color: #666; font-size: 0.85em; } td.provenance { max-width: 22em; font-size: 0.9em; }
#errors li { margin: 2px 0; } #errors code { overflow-wrap: anywhere; }
"""

_SCRIPT = """
const table = document.getElementById('results');
const body = table.tBodies[0];
const filter = document.getElementById('filter');
const verdict = document.getElementById('verdict');
const counter = document.getElementById('shown');
let sortKey = null, ascending = true;

for (const th of table.tHead.querySelectorAll('th[data-key]')) {
  th.querySelector('button').addEventListener('click', () => {
    const key = th.dataset.key, numeric = th.dataset.type === 'number';
    ascending = sortKey === key ? !ascending : true;
    sortKey = key;
    const rows = Array.from(body.rows);
    rows.sort((a, b) => {
      const x = a.dataset[key], y = b.dataset[key];
      const order = numeric ? Number(x) - Number(y) : x.localeCompare(y);
      return ascending ? order : -order;
    });
    body.append(...rows);
    for (const other of table.tHead.querySelectorAll('th[data-key]')) other.setAttribute('aria-sort', 'none');
    th.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
  });
}

function applyFilter() {
  const text = filter.value.trim().toLowerCase(), wanted = verdict.value;
  let shown = 0;
  for (const row of body.rows) {
    const keep = (!text || row.dataset.path.toLowerCase().includes(text)) && (!wanted || row.dataset.verdict === wanted);
    row.hidden = !keep;
    shown += keep ? 1 : 0;
  }
  counter.textContent = shown + ' of ' + body.rows.length + ' shown';
}
filter.addEventListener('input', applyFilter);
verdict.addEventListener('change', applyFilter);
applyFilter();
"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>aidetect scan report</title>
<style>{style}</style>
</head>
<body>
<h1>aidetect scan report</h1>
<div class="meta">checkpoint <b>{name}</b> &middot; threshold {threshold} &middot; {total} inputs: {counts},
{failed} unreadable &middot; {when}</div>
<h2>Probability of being generated</h2>
{histogram}
<h2>Images</h2>
<div class="controls">
<input id="filter" type="search" placeholder="filter by path" aria-label="filter by path">
<select id="verdict" aria-label="verdict"><option value="">all verdicts</option>
{options}</select>
<span id="shown"></span>
</div>
<table id="results">
<thead><tr><th>image</th>
<th data-key="path" data-type="text" aria-sort="none"><button type="button">path</button></th>
<th data-key="probability" data-type="number" aria-sort="none"><button type="button">P(generated)</button></th>
<th data-key="verdict" data-type="text" aria-sort="none"><button type="button">verdict</button></th>
<th>provenance</th>
<th data-key="pixels" data-type="number" aria-sort="none"><button type="button">size</button></th>
<th>explanation</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>
{disagreements}
{errors}
<script>{script}</script>
</body>
</html>
"""

"""The corpus manifest: which public repositories, at which commits, give which images.

A manifest is a TOML file (the default one, `sources.toml`, ships with the package). It lists the
generators once (`[generators]`: display name, family, split) and the sources (`[[sources]]`: one
repository pinned by a full commit hash, its licence, whether it holds real photos or generated
images, and entries that select files by glob and say how to name their generator and how to cut
grids into single images). Everything is checked when the manifest is loaded, so a typo fails
before a build starts, with the place it was found.

Repositories that hold the project's evaluation data are refused here, in one place: a corpus
built from them would make every generalisation figure meaningless.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Mapping

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

DEFAULT_MANIFEST = Path(__file__).with_name("sources.toml")

# Held-out test data of the project, or soon: never train, select, calibrate or tune on these.
RESERVED_REPOSITORIES = frozenset({
    "peterwang512/cnndetection", "laboratoriet/real-or-ai-game",
    "ml72/ai-image-classifier-playground", "openai/dalle-2-preview", "picotrex/awesome-nano-banana-images",
    "zho-zho-zho/zho-nano-banana-creation", "evolink-ai/awesome-seedream-5-pro-guide-and-prompt",
})

KINDS = ("real", "generated")
SPLITS = ("train", "val_out")  # val_in is drawn from train by the build, never assigned
FAMILIES = ("gan", "clip-guided", "autoregressive", "diffusion-early", "diffusion-modern")
_ID = re.compile(r"[a-z0-9][a-z0-9._-]*\Z")
_REPO = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*\Z")
_COMMIT = re.compile(r"[0-9a-f]{40}\Z")


class ManifestError(Exception):
    """A manifest that cannot be used; the message names the file and the place in it."""


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A glob over repository paths as a regex: `*` and `?` stay within one folder, `**/` spans any
    number of folders (none included), `[...]` is a character class. Matching is case-sensitive."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:[^/]+/)*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and (end := pattern.find("]", i + 2)) > 0:
            body = pattern[i + 1:end].replace("\\", "\\\\")  # as fnmatch: ranges kept, "!" negates
            out.append("[" + ("^" + body[1:] if body[0] == "!" else "\\" + body if body[0] in "^[" else body) + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


@dataclass(frozen=True)
class Generator:
    id: str  # the folder name under 1_fake/
    name: str
    family: str
    split: str = "train"


@dataclass(frozen=True)
class CutRule:
    """Cut a grid or composite into its images: `rows` x `cols` cells of equal size, `gap` pixels
    apart, over the whole image or over the box given for its path ([x, y, width, height]); cells
    listed in `skip` (row-major, from 0) are left out (inputs, control maps, empty cells); `trim`
    strips uniform borders (letterboxing, frame lines) from each cell. With `files` (globs), the rule
    applies to those files of its entry only."""

    rows: int
    cols: int
    gap: int = 0
    skip: tuple[int, ...] = ()
    trim: bool = False
    boxes: Mapping[str, tuple[int, int, int, int]] = field(default_factory=dict)
    files: tuple[str, ...] = ()
    _files: tuple[re.Pattern[str], ...] = field(default=(), repr=False, compare=False)

    def applies_to(self, path: str) -> bool:
        return not self._files or any(p.match(path) for p in self._files)


@dataclass(frozen=True)
class GeneratorRule:
    """Name the generator per file: group 1 of `pattern` (searched in the repository path) is the key;
    with `lookup`, the key selects an object of that JSON file of the repository and its `field` is the
    key instead (`lookup_key = "lower-underscore"` compares the file's keys with every character
    outside a-z0-9 replaced by "_", lower-cased). `names` maps keys to generator ids; a key it does not
    name is left out of the corpus, with that reason."""

    pattern: re.Pattern[str]
    names: Mapping[str, str]
    lookup: str | None = None
    field: str | None = None
    lookup_key: str = "exact"


@dataclass(frozen=True)
class Entry:
    include: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    generator: str | None = None  # a generated source: a fixed generator id, or generator_from
    generator_from: GeneratorRule | None = None
    cuts: tuple[CutRule, ...] = ()  # the first that applies to a file cuts it; none: the file is one image
    licence: str | None = None  # when it differs from the source's
    _include: tuple[re.Pattern[str], ...] = field(default=(), repr=False, compare=False)
    _exclude: tuple[re.Pattern[str], ...] = field(default=(), repr=False, compare=False)

    def matches(self, path: str) -> bool:
        return any(p.match(path) for p in self._include) and not any(p.match(path) for p in self._exclude)

    def cut_for(self, path: str) -> CutRule | None:
        return next((rule for rule in self.cuts if rule.applies_to(path)), None)

    def generator_ids(self) -> list[str]:
        if self.generator:
            return [self.generator]
        return sorted(set(self.generator_from.names.values())) if self.generator_from else []


@dataclass(frozen=True)
class Source:
    id: str  # the folder name under OUT/<split>/
    repo: str  # owner/name on GitHub
    commit: str  # the full 40-hex commit the files are read at
    licence: str
    kind: str  # real or generated
    entries: tuple[Entry, ...]
    split: str = "train"  # real sources: train or val_out as a whole (generated: per generator)
    description: str = ""

    @property
    def url(self) -> str:
        return f"https://github.com/{self.repo}.git"

    def entry_for(self, path: str) -> Entry | None:
        """The first entry that selects `path`, or None."""
        return next((entry for entry in self.entries if entry.matches(path)), None)

    def generator_ids(self) -> list[str]:
        return sorted({g for entry in self.entries for g in entry.generator_ids()})


@dataclass(frozen=True)
class Manifest:
    path: Path
    generators: Mapping[str, Generator]
    sources: tuple[Source, ...]
    min_side: int = 64  # smaller images are left out: too small to be a photo or a generation
    val_in_percent: int = 10  # share of each train source drawn for in-distribution validation


class _Table:
    """One TOML table being read: typed getters that say where a bad value was, and unknown keys refused."""

    def __init__(self, data: Any, where: str, origin: Path):
        self.where, self.origin = where, origin
        if not isinstance(data, dict):
            self.fail("must be a table")
        self.data, self.used = data, set()

    def fail(self, message: str) -> None:
        raise ManifestError(f"{self.origin}: {self.where}: {message}")

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        self.used.add(key)
        if key not in self.data:
            if default is ...:
                self.fail(f"'{key}' is missing")
            return default
        value = self.data[key]
        if not isinstance(value, kind) or isinstance(value, bool) and kind is int:
            names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            self.fail(f"'{key}' must be of type {names}, not {type(value).__name__}")
        return value

    def strings(self, key: str, required: bool = False) -> tuple[str, ...]:
        value = self.get(key, (list, str), ... if required else [])
        value = [value] if isinstance(value, str) else value
        if not all(isinstance(v, str) and v for v in value) or required and not value:
            self.fail(f"'{key}' must be a non-empty string or a list of them")
        return tuple(value)

    def choice(self, key: str, choices: tuple[str, ...], default: Any = ...) -> str:
        value = self.get(key, str, default)
        if value not in choices:
            self.fail(f"'{key}' is {value!r}; expected one of {', '.join(choices)}")
        return value

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            self.fail(f"unknown key(s) {', '.join(map(repr, unknown))}")


def _ident(table: _Table, key: str, value: str) -> str:
    if not _ID.match(value):
        table.fail(f"'{key}' {value!r} must be lower-case letters, digits, '.', '_' or '-'")
    return value


def _generator(gid: str, data: Any, origin: Path) -> Generator:
    table = _Table(data, f"generators.{gid}", origin)
    _ident(table, "id", gid)
    generator = Generator(gid, table.get("name", str), table.choice("family", FAMILIES), table.choice("split", SPLITS, "train"))
    table.done()
    return generator


def _cut(data: Any, where: str, origin: Path) -> CutRule:
    table = _Table(data, where, origin)
    rows, cols, gap = table.get("rows", int), table.get("cols", int), table.get("gap", int, 0)
    skip, boxes, trim = table.get("skip", list, []), table.get("boxes", dict, {}), table.get("trim", bool, False)
    files = table.strings("files")
    table.done()
    if rows < 1 or cols < 1 or gap < 0:
        table.fail("'rows' and 'cols' must be at least 1 and 'gap' at least 0")
    if not all(isinstance(i, int) and 0 <= i < rows * cols for i in skip):
        table.fail(f"'skip' must list cell numbers from 0 to {rows * cols - 1}")
    for path, box in boxes.items():
        if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, int) and v >= 0 for v in box)
                and box[2] and box[3]):
            table.fail(f"box of {path!r} must be [x, y, width, height] in pixels")
    return CutRule(rows, cols, gap, tuple(skip), trim, {path: tuple(box) for path, box in boxes.items()},
                   files, _globs(table, files))


def _generator_rule(data: Any, where: str, origin: Path, generators: Mapping[str, Generator]) -> GeneratorRule:
    table = _Table(data, where, origin)
    try:
        pattern = re.compile(table.get("pattern", str))
    except re.error as exc:
        table.fail(f"'pattern' is not a regular expression: {exc}")
    if pattern.groups < 1:
        table.fail("'pattern' needs a group: it captures the key that names the generator")
    names = table.get("names", dict)
    lookup, field_name = table.get("lookup", str, None), table.get("field", str, None)
    rule = GeneratorRule(pattern, dict(names), lookup, field_name, table.choice("lookup_key", ("exact", "lower-underscore"), "exact"))
    table.done()
    if (lookup is None) != (field_name is None):
        table.fail("'lookup' and 'field' go together")
    for key, gid in names.items():
        if not isinstance(gid, str) or gid not in generators:
            table.fail(f"names[{key!r}] is {gid!r}, which is not in [generators]")
    return rule


def _entry(data: Any, where: str, origin: Path, kind: str, generators: Mapping[str, Generator]) -> Entry:
    table = _Table(data, where, origin)
    include, exclude = table.strings("include", required=True), table.strings("exclude")
    generator = table.get("generator", str, None)
    rule_data = table.get("generator_from", dict, None)
    rule = _generator_rule(rule_data, f"{where}.generator_from", origin, generators) if rule_data is not None else None
    cut_data = table.get("cut", (dict, list), [])
    cuts = tuple(_cut(c, f"{where}.cut[{i}]", origin) for i, c in enumerate(cut_data if isinstance(cut_data, list) else [cut_data]))
    licence = table.get("licence", str, None)
    table.done()
    if kind == "generated" and (generator is None) == (rule is None):
        table.fail("a generated source's entry needs one of 'generator' and 'generator_from'")
    if kind == "real" and (generator or rule):
        table.fail("a real source's entry names no generator")
    if generator is not None and generator not in generators:
        table.fail(f"generator {generator!r} is not in [generators]")
    return Entry(include, exclude, generator, rule, cuts, licence, _globs(table, include), _globs(table, exclude))


def _globs(table: _Table, patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    compiled = []
    for pattern in patterns:
        if pattern.startswith("/") or ".." in PurePosixPath(pattern).parts:
            table.fail(f"pattern {pattern!r} must be relative to the repository root")
        try:
            compiled.append(glob_regex(pattern))
        except re.error as exc:
            table.fail(f"pattern {pattern!r} is not a valid glob: {exc}")
    return tuple(compiled)


def _source(data: Any, index: int, origin: Path, generators: Mapping[str, Generator]) -> Source:
    table = _Table(data, f"sources[{index}]", origin)
    sid = _ident(table, "id", table.get("id", str))
    table.where = f"sources[{index}] (id {sid!r})"
    repo, commit = table.get("repo", str), table.get("commit", str)
    if not _REPO.match(repo):
        table.fail(f"'repo' {repo!r} must be owner/name")
    if repo.lower() in RESERVED_REPOSITORIES:
        table.fail(f"{repo} is reserved for evaluation and must never be used for training")
    if not _COMMIT.match(commit):
        table.fail(f"'commit' {commit!r} must be a full 40-character lower-case hex hash")
    kind = table.choice("kind", KINDS)
    split = table.choice("split", SPLITS, "train")
    if kind == "generated" and "split" in table.data:
        table.fail("a generated source's split comes from its generators ([generators])")
    entries = table.get("entries", list)
    if not entries:
        table.fail("'entries' must list at least one entry")
    source = Source(sid, repo, commit, table.get("licence", str), kind,
                    tuple(_entry(e, f"{table.where}.entries[{i}]", origin, kind, generators) for i, e in enumerate(entries)),
                    split, table.get("description", str, ""))
    table.done()
    return source


def parse_manifest(data: dict, origin: Path) -> Manifest:
    """A Manifest from parsed TOML; ManifestError names the first problem and where it is."""
    top = _Table(data, "top level", origin)
    generators = {gid: _generator(gid, g, origin) for gid, g in top.get("generators", dict).items()}
    sources = tuple(_source(s, i, origin, generators) for i, s in enumerate(top.get("sources", list)))
    manifest = Manifest(origin, generators, sources, top.get("min_side", int, 64), top.get("val_in_percent", int, 10))
    top.done()
    if not sources:
        top.fail("no [[sources]]")
    seen: dict[str, int] = {}
    for source in sources:
        if source.id in seen:
            top.fail(f"source id {source.id!r} is used twice")
        seen[source.id] = 1
    if not 0 <= manifest.val_in_percent < 100 or manifest.min_side < 1:
        top.fail("'val_in_percent' must be in 0..99 and 'min_side' at least 1")
    used = {g for source in sources for g in source.generator_ids()}
    unused = sorted(set(generators) - used)
    if unused:
        top.fail(f"generator(s) {', '.join(unused)} are defined but no source names them")
    return manifest


def load_manifest(path: str | Path = DEFAULT_MANIFEST) -> Manifest:
    """Read and check a manifest file (the shipped `sources.toml` by default)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read the manifest ({exc.strerror or exc})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: not valid TOML: {exc}") from None
    return parse_manifest(data, path)


def manifest_summary(manifest: Manifest) -> dict:
    """The manifest as JSON-ready data: sources (with the generators each can give) and generators
    (with the sources that give them), for `aidetect corpus list --json` and programs."""
    sources = [{"id": s.id, "kind": s.kind, "repo": s.repo, "commit": s.commit, "licence": s.licence,
                "split": s.split if s.kind == "real" else "per generator", "generators": s.generator_ids(),
                "description": s.description} for s in manifest.sources]
    generators = [{"id": g.id, "name": g.name, "family": g.family, "split": g.split,
                   "sources": [s.id for s in manifest.sources if g.id in s.generator_ids()]}
                  for g in sorted(manifest.generators.values(), key=lambda g: (FAMILIES.index(g.family), g.id))]
    return {"manifest": str(manifest.path), "reserved_repositories": sorted(RESERVED_REPOSITORIES),
            "sources": sources, "generators": generators}

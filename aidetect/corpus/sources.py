"""Local copies of the manifest's repositories: finding them, cloning them, reading their files.

A copy is a git directory (bare, or the `.git` of a clone) that holds the pinned commit, or a plain
folder of files. Files of a git copy are always read at the pinned commit, never from a work tree,
so an edited or updated clone still gives the corpus the manifest describes. A plain folder cannot
be checked against the commit; it is taken as it is, and the data card says so.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from .manifest import Source

GIT_TIMEOUT_S = 3600  # a clone of the largest source takes minutes; never hang for ever
# No password prompt, and no fetching of the objects a partial snapshot lacks: a build reads what
# the copy holds, and says which files were absent.
_GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_NO_LAZY_FETCH": "1"}


class SourceMissing(Exception):
    """No usable copy of a source; the message names it, its repository and commit, and where it looked."""


@dataclass(frozen=True)
class RepoFile:
    path: str  # relative, with "/" separators
    blob: str | None = None  # git object id; None for a plain folder
    symlink: bool = False


@dataclass(frozen=True)
class SourceCopy:
    source: Source
    path: Path
    git: bool  # files come from the pinned commit of this git directory; False: a plain folder

    @property
    def kind(self) -> str:
        return "git" if self.git else "folder (commit not checked)"


def _git(git_dir: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "--git-dir", str(git_dir), *args], input=stdin, capture_output=True,
                          timeout=GIT_TIMEOUT_S, env={**os.environ, **_GIT_ENV})


def _git_dir(path: Path) -> Path | None:
    """`path` itself when it is a git directory, its `.git` folder when it is a clone; else None."""
    for candidate in (path, path / ".git"):
        if (candidate / "HEAD").is_file() and (candidate / "objects").is_dir():
            return candidate
    return None


def has_commit(git_dir: Path, commit: str) -> bool:
    try:
        return _git(git_dir, "cat-file", "-e", f"{commit}^{{commit}}").returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def candidate_paths(source: Source, sources_dirs: Sequence[Path]) -> list[tuple[Path, bool]]:
    """Where a copy of `source` may lie, in the order looked at, each with whether the place names the
    owner: DIR/owner+name/repo, DIR/owner+name, DIR/owner/name, then DIR/name, under each directory."""
    owner, name = source.repo.split("/")
    return [(path, qualified) for root in sources_dirs for path, qualified in (
        (root / f"{owner}+{name}" / "repo", True), (root / f"{owner}+{name}", True), (root / owner / name, True),
        (root / name, False))]


def locate_source(source: Source, sources_dirs: Sequence[Path]) -> SourceCopy:
    """The first usable copy of `source`: a git copy holding the pinned commit, or a plain folder at a
    place that names the owner (DIR/name alone is too ambiguous without a commit to check: two sources
    may share a name). Raises SourceMissing saying what was found at each place."""
    looked = []
    for path, qualified in candidate_paths(source, sources_dirs):
        if not path.is_dir():
            looked.append(f"{path} (absent)")
            continue
        git_dir = _git_dir(path)
        if git_dir is not None:
            if has_commit(git_dir, source.commit):
                return SourceCopy(source, git_dir, git=True)
            looked.append(f"{path} (a git copy without commit {source.commit[:12]})")
        elif qualified:
            return SourceCopy(source, path, git=False)
        else:
            looked.append(f"{path} (a plain folder: without git, only DIR/owner+name or DIR/owner/name is used)")
    raise SourceMissing(f"source {source.id!r} ({source.repo} @ {source.commit}) has no local copy; looked at: "
                        + "; ".join(looked or ["nothing: no --sources directory given"]))


def clone_source(source: Source, sources_dir: Path, url: str | None = None) -> SourceCopy:
    """Clone `source` (bare) into SOURCES_DIR/owner+name/repo, or fetch its commit into a clone already
    there. `url` replaces GitHub's (tests use a local repository)."""
    owner, name = source.repo.split("/")
    target = sources_dir / f"{owner}+{name}" / "repo"
    url = url or source.url
    try:
        if not _git_dir(target):
            target.parent.mkdir(parents=True, exist_ok=True)
            done = subprocess.run(["git", "clone", "--bare", "--quiet", url, str(target)], capture_output=True,
                                  timeout=GIT_TIMEOUT_S, env={**os.environ, **_GIT_ENV})
            if done.returncode:
                reason = (done.stderr.decode(errors="replace").strip().splitlines() or ["no message"])[-1]
                raise SourceMissing(f"source {source.id!r}: git clone {url} failed: {reason}")
        if not has_commit(target, source.commit):
            _git(target, "fetch", "--quiet", "origin", source.commit)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SourceMissing(f"source {source.id!r}: cannot clone {url}: {exc}") from None
    if not has_commit(target, source.commit):
        raise SourceMissing(f"source {source.id!r}: {url} has no commit {source.commit}")
    return SourceCopy(source, target, git=True)


def list_files(copy: SourceCopy) -> list[RepoFile]:
    """Every file of the copy (at the pinned commit for git), sorted by path."""
    if copy.git:
        done = _git(copy.path, "ls-tree", "-r", "-z", "--full-tree", copy.source.commit)
        if done.returncode:
            raise SourceMissing(f"source {copy.source.id!r}: cannot list {copy.path} at {copy.source.commit}: "
                                f"{done.stderr.decode(errors='replace').strip()}")
        files = []
        for record in done.stdout.split(b"\0"):
            if not record:
                continue
            meta, path = record.split(b"\t", 1)
            mode, kind, blob = meta.split()
            if kind == b"blob":
                files.append(RepoFile(path.decode("utf-8", "surrogateescape"), blob.decode(), mode == b"120000"))
        return sorted(files, key=lambda f: f.path)
    files = []
    for folder, dirs, names in os.walk(copy.path):
        dirs[:] = sorted(d for d in dirs if d != ".git")
        for name in names:
            full = Path(folder, name)
            files.append(RepoFile(full.relative_to(copy.path).as_posix(), symlink=full.is_symlink()))
    return sorted(files, key=lambda f: f.path)


def read_files(copy: SourceCopy, files: Sequence[RepoFile]) -> list[bytes | str]:
    """The contents of `files`, each as bytes or a one-line reason it cannot be read. For git, one
    `cat-file --batch` process per call, finished before this returns: no pipe stays open for worker
    processes forked later to inherit (a held pipe would keep git waiting for its input for ever)."""
    if not copy.git:
        return [_read_file(copy.path / file.path) if not file.symlink else _SYMLINK for file in files]
    wanted = [file for file in files if not file.symlink]
    contents = iter(_cat_blobs(copy.path, [file.blob for file in wanted]) if wanted else [])
    return [_SYMLINK if file.symlink else next(contents) for file in files]


_SYMLINK = "a symbolic link, not a file"


def _read_file(path: Path) -> bytes | str:
    try:
        return path.read_bytes()
    except OSError as exc:
        return f"cannot read file: {exc.strerror or exc}"


def _cat_blobs(git_dir: Path, blobs: Sequence[str]) -> list[bytes | str]:
    try:
        done = _git(git_dir, "cat-file", "--batch", stdin="".join(f"{blob}\n" for blob in blobs).encode())
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [f"cannot run git: {exc}"] * len(blobs)
    output, position, contents = done.stdout, 0, []
    for _ in blobs:
        end = output.find(b"\n", position)
        header = output[position:end].split() if end >= 0 else []
        if len(header) != 3:  # "<id> missing", or git stopped early
            contents.append("absent from this copy (its git object is missing: a partial or shallow snapshot)")
            position = end + 1 if end >= 0 else len(output)
            continue
        size = int(header[2])
        contents.append(output[end + 1:end + 1 + size])
        position = end + 1 + size + 1  # the newline after each object
    return contents

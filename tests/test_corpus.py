"""`aidetect corpus`: the manifest, reading sources at their pinned commits, cutting grids, dedup, the card."""

from __future__ import annotations

import io
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from helpers import photo_pixels, run_cli
from PIL import Image

from aidetect.corpus.build import CorpusError, build_corpus
from aidetect.corpus.card import ImageRecord, format_size_auc, jpeg_quality
from aidetect.corpus.dedup import NearIndex, fingerprint
from aidetect.corpus.grids import cut_cells
from aidetect.corpus.manifest import (RESERVED_REPOSITORIES, CutRule, ManifestError, glob_regex, load_manifest,
                                      parse_manifest)
from aidetect.corpus.sources import clone_source

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
           "GIT_AUTHOR_DATE": "2024-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2024-01-01T00:00:00Z"}


def encode(pixels: np.ndarray, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt, **options)
    return buffer.getvalue()


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          env={**os.environ, **GIT_ENV}).stdout.strip()


def commit_files(repo: Path, files: dict[str, bytes], message: str = "files") -> str:
    """Write `files` into the work tree of `repo` (created if needed), commit, return the commit hash."""
    if not repo.exists():
        repo.mkdir(parents=True)
        git(repo, "init", "-q", "-b", "main")
    for name, data in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_bytes(data)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def manifest_file(path: Path, sources: str, generators: str = "") -> Path:
    path.write_text(f"min_side = 16\nval_in_percent = 10\n[generators]\n{generators}\n{sources}", encoding="utf-8")
    return path


def real_source(sid: str, repo: str, commit: str, include: str = "**/*", extra: str = "") -> str:
    return (f'[[sources]]\nid = "{sid}"\nrepo = "{repo}"\ncommit = "{commit}"\nlicence = "test"\nkind = "real"\n{extra}'
            f'[[sources.entries]]\ninclude = "{include}"\n')


GRID = photo_pixels(4 * 40, 3 * 36, seed=50)  # a 3 x 4 grid of 40 x 36 cells


@pytest.fixture
def sources(tmp_path: Path) -> dict:
    """Two repositories in tmp/sources: owner/photos (real: good, duplicate, near-duplicate and bad files)
    and owner/gen (generated: a grid and files named per generator), as bare copies at their commits."""
    base = photo_pixels(seed=1)
    real = {
        "img/a.png": encode(base),
        "img/b_copy.png": encode(base),  # the same pixels: exact duplicate
        "img/c_reencoded.jpg": encode(np.asarray(Image.fromarray(base).resize((90, 75))), "JPEG", quality=85),
        "img/d_other.png": encode(photo_pixels(seed=2)),
        "img/e_empty.png": b"",
        "img/f_truncated.jpg": encode(photo_pixels(seed=3), "JPEG", quality=90)[:300],
        "img/g_text.png": b"not an image at all\n",
        "img/h_other.jpg": encode(photo_pixels(seed=4), "JPEG", quality=75),
        "README.md": b"docs, not selected\n",
    }
    gen = {"grids/m1-grid.png": encode(GRID), "single/m2-0.png": encode(photo_pixels(seed=5)),
           "single/zz-0.png": encode(photo_pixels(seed=6))}
    root = tmp_path / "sources"
    commits = {}
    for name, files in (("photos", real), ("gen", gen)):
        work = tmp_path / "work" / name
        commits[name] = commit_files(work, files)
        git(tmp_path, "clone", "-q", "--bare", str(work), str(root / "owner" / name))
    generators = ('m1 = { name = "Model 1", family = "gan" }\n'
                  'm2 = { name = "Model 2", family = "diffusion-early", split = "val_out" }\n')
    gen_source = (f'[[sources]]\nid = "gen"\nrepo = "owner/gen"\ncommit = "{commits["gen"]}"\nlicence = "test"\n'
                  f'kind = "generated"\n[[sources.entries]]\ninclude = ["grids/*.png", "single/*.png"]\n'
                  f'cut = {{ rows = 3, cols = 4, files = "grids/*" }}\n'
                  f"generator_from = {{ pattern = '/([a-z0-9]+)-[^/]*$', names = {{ m1 = \"m1\", m2 = \"m2\" }} }}\n")
    sources_toml = real_source("photos", "owner/photos", commits["photos"], "img/*") + gen_source
    return {"root": root, "commits": commits, "manifest": manifest_file(tmp_path / "m.toml", sources_toml, generators),
            "base": base, "tmp": tmp_path}


def build(sources: dict, out: Path, **options):
    return build_corpus(load_manifest(sources["manifest"]), out, [sources["root"]], **options)


# --- manifest ---


def test_shipped_manifest_lists_the_sources_the_issue_asks_for_and_no_reserved_repository():
    manifest = load_manifest()
    real = [s for s in manifest.sources if s.kind == "real"]
    stylegan2 = [g for g in manifest.generators.values() if g.id.startswith("stylegan2-") and g.family == "gan"]
    assert len(real) >= 10 and len(manifest.generators) >= 15 and len(stylegan2) >= 20
    assert not {s.repo.lower() for s in manifest.sources} & RESERVED_REPOSITORIES
    held_out = {g.family for g in manifest.generators.values() if g.split == "val_out"}
    assert {"gan", "diffusion-early", "diffusion-modern", "autoregressive"} <= held_out
    assert any(s.split == "val_out" for s in real) and any(s.split == "train" for s in real)


@pytest.mark.parametrize("command", ["build", "list"])
def test_corpus_help(command):
    result = run_cli("corpus", command, "--help")
    assert result.exit_code == 0 and "--manifest" in result.stdout


def test_corpus_list_json_names_sources_and_generators():
    result = run_cli("corpus", "list", "--json")
    assert result.exit_code == 0, result.stderr
    listed = json.loads(result.stdout)
    assert sum(s["kind"] == "real" for s in listed["sources"]) >= 10
    assert len(listed["generators"]) >= 15
    assert not {s["repo"].lower() for s in listed["sources"]} & set(listed["reserved_repositories"])
    dcsan = next(s for s in listed["sources"] if s["repo"] == "dcsan/imagen")
    assert "glid3-xl" in dcsan["generators"] and all(len(s["commit"]) == 40 for s in listed["sources"])


@pytest.mark.parametrize("repo", ["PeterWang512/CNNDetection", "openai/dalle-2-preview", "picotrex/awesome-nano-banana-images"])
def test_manifest_refuses_a_reserved_repository(tmp_path, repo):
    with pytest.raises(ManifestError, match="reserved for evaluation"):
        load_manifest(manifest_file(tmp_path / "m.toml", real_source("x", repo, "a" * 40)))


GOOD = real_source("x", "o/r", "a" * 40)


@pytest.mark.parametrize("text, message", [
    ("min_side = 16\n[generators]\n" + GOOD + "colour = 1\n", "unknown key(s) 'colour'"),
    ("[generators]\n" + real_source("x", "o/r", "abc123"), "full 40-character"),
    ("[generators]\n" + real_source("X y", "o/r", "a" * 40), "lower-case letters"),
    ("[generators]\n" + GOOD + GOOD, "used twice"),
    ("[generators]\n" + real_source("x", "o/r", "a" * 40, extra='split = "val_in"\n'), "'split' is 'val_in'"),
    ("[generators]\n" + GOOD + 'generator = "m"\n', "names no generator"),
    ("[generators]\n" + GOOD.replace('kind = "real"', 'kind = "generated"') + 'generator = "nope"\n', "not in [generators]"),
    ("[generators]\n" + GOOD + "cut = { rows = 2, cols = 2, skip = [4] }\n", "'skip' must list cell numbers from 0 to 3"),
    ("[generators]\n" + GOOD + "generator_from = { pattern = '(x)', names = {} }\n", "names no generator"),
    ("[generators]\nm = { name = 'M', family = 'gan' }\n" + GOOD, "defined but no source names them"),
    ("[generators]\nm = { name = 'M', family = 'vae' }\n" + GOOD, "'family' is 'vae'"),
    ("[generators]\n[[sources]]\nid = 'x'\n", "'repo' is missing"),
    ("[generators]\n" + GOOD.replace('include = "**/*"', 'include = "img/[z-a].png"'), "not a valid glob"),
    ("this is = not toml [", "not valid TOML"),
])
def test_bad_manifests_fail_with_the_place_and_the_reason(tmp_path, text, message):
    path = tmp_path / "m.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ManifestError) as error:
        load_manifest(path)
    assert message in str(error.value) and str(path) in str(error.value)


def test_generator_rule_needs_a_capturing_group():
    data = {"generators": {"m": {"name": "M", "family": "gan"}}, "sources": [{
        "id": "g", "repo": "o/g", "commit": "b" * 40, "licence": "l", "kind": "generated",
        "entries": [{"include": "*", "generator_from": {"pattern": "x", "names": {"x": "m"}}}]}]}
    with pytest.raises(ManifestError, match="needs a group"):
        parse_manifest(data, Path("m.toml"))


def test_globs_stay_in_their_folder_unless_double_star():
    assert glob_regex("img/*.png").match("img/a b.png") and not glob_regex("img/*.png").match("img/x/a.png")
    assert glob_regex("**/dal2-*").match("a/b/dal2-1.png") and glob_regex("**/dal2-*").match("dal2-1.png")
    assert glob_regex("p[0-9]*.png").match("p16b.png") and not glob_regex("p[0-9]*.png").match("pa.png")
    assert not glob_regex("*.JPG").match("x.jpg")  # case-sensitive, like git paths


# --- grids and composites ---


def test_a_3x4_grid_comes_back_as_its_12_exact_cells():
    cells = cut_cells(GRID, CutRule(rows=3, cols=4), "g.png")
    assert [index for index, _ in cells] == list(range(12))
    for index, cell in cells:
        row, col = divmod(index, 4)
        assert np.array_equal(cell, GRID[row * 36:(row + 1) * 36, col * 40:(col + 1) * 40])


def test_a_composite_is_cut_in_its_box_with_gaps_skips_and_letterboxing_trimmed():
    page = np.full((120, 200, 3), 20, np.uint8)  # a dark page with a 2x2 gallery at (100, 10), 4-px gaps
    panels = [photo_pixels(30, 40, seed=10 + i) for i in range(4)]
    for i, panel in enumerate(panels):
        x, y = 100 + (i % 2) * 48, 10 + (i // 2) * 52
        page[y:y + 48, x:x + 44] = 240  # a light cell...
        page[y + 4:y + 44, x + 7:x + 37] = panel  # ...letterboxing the panel
    rule = CutRule(rows=2, cols=2, gap=4, skip=(0,), trim=True, boxes={"page.png": (100, 10, 92, 100)})
    cells = cut_cells(page, rule, "page.png")
    assert [i for i, _ in cells] == [1, 2, 3]
    for index, cell in cells:
        assert np.array_equal(cell, panels[index])
    with pytest.raises(ValueError, match="does not fit"):
        cut_cells(page[:50], rule, "page.png")


# --- building ---


def test_build_writes_the_layout_drops_duplicates_and_bad_files_and_goes_on(sources):
    out = sources["tmp"] / "corpus"
    result = run_cli("corpus", "build", out, "--manifest", sources["manifest"], "--sources", sources["root"],
                     "--no-progress", "-j", "0", "--json")
    assert result.exit_code == 1, result.stderr  # some files were unreadable
    bad_lines = [line for line in result.stderr.splitlines() if line.startswith("unreadable")]
    assert len(bad_lines) == 3
    assert any("e_empty.png: empty file" in line for line in bad_lines)
    assert any("f_truncated.jpg" in line for line in bad_lines)
    assert any("g_text.png: not an image" in line for line in bad_lines)
    card = json.loads(result.stdout)
    assert json.loads((out / "corpus.json").read_text())["totals"] == card["totals"]
    reasons = {s["origin"]: s["reason"] for s in card["skipped"]}
    assert reasons["img/b_copy.png"] == "duplicate" and reasons["img/c_reencoded.jpg"] == "near_duplicate"
    assert reasons["single/zz-0.png"] == "unnamed_generator"
    kept = {r["origin"]: r for r in card["images"]}
    assert {"img/a.png", "img/d_other.png", "img/h_other.jpg"} <= set(kept)
    assert sum(origin.startswith("grids/m1-grid.png#") for origin in kept) == 12
    real = kept["img/h_other.jpg"]
    assert real["path"].startswith(f"{real['split']}/photos/0_real/") and real["format"] == "jpeg"
    assert real["jpeg_quality"] == 75 and (out / real["path"]).read_bytes()[:3] == b"\xff\xd8\xff"  # bytes kept
    m2 = kept["single/m2-0.png"]
    assert m2["split"] == "val_out" and m2["path"].startswith("val_out/gen/1_fake/m2/")  # held-out generator
    cell = kept["grids/m1-grid.png#5"]
    assert cell["path"].endswith("-c05.png") and "/1_fake/m1/" in cell["path"] and cell["written_as"] == "png"
    assert np.array_equal(np.asarray(Image.open(out / cell["path"])), GRID[36:72, 40:80])
    assert {s["split"] for s in card["images"]} <= {"train", "val_in", "val_out"}
    assert card["dropped"]["photos"] == {"duplicate": 1, "near_duplicate": 1, "unreadable": 3}
    assert card["groups"] and card["by_class"] and "bias_check" in card


def test_exclude_near_drops_images_close_to_a_protected_folder(sources):
    protected = sources["tmp"] / "test_set"
    protected.mkdir()
    Image.fromarray(np.asarray(Image.fromarray(photo_pixels(seed=2)).resize((70, 60)))).save(protected / "x.jpg", quality=80)
    report = build(sources, sources["tmp"] / "corpus", exclude_near=[protected])
    dropped = [s for s in report.skipped if s.reason == "near_excluded"]
    assert [s.origin for s in dropped] == ["img/d_other.png"] and dropped[0].duplicate_of == str(protected / "x.jpg")
    assert report.card["exclude_near"] == {str(protected): 1}
    with pytest.raises(CorpusError, match="--exclude-near .*: no such file or folder"):
        build(sources, sources["tmp"] / "corpus", exclude_near=[sources["tmp"] / "typo"])


def test_a_missing_source_is_named_before_anything_is_written(sources):
    text = sources["manifest"].read_text() + real_source("lost", "someone/lost-photos", "c" * 40)
    manifest = manifest_file(sources["tmp"] / "m2.toml", "", "")
    manifest.write_text(text)
    out = sources["tmp"] / "corpus"
    result = run_cli("corpus", "build", out, "--manifest", manifest, "--sources", sources["root"], "--no-progress")
    assert result.exit_code == 2
    message = " ".join(result.stderr.split())
    assert "'lost'" in message and "someone/lost-photos" in message and "c" * 40 in message
    assert str(sources["root"] / "someone+lost-photos") in message and "--skip-missing" in message
    assert not out.exists()
    report = build_corpus(load_manifest(manifest), out, [sources["root"]], skip_missing=True)
    assert "someone/lost-photos" in report.card["missing_sources"][0] and report.records


def test_files_are_read_at_the_pinned_commit_not_a_later_one(tmp_path):
    work = tmp_path / "owner" / "photos"  # a clone with a work tree: a later commit is checked out
    first = commit_files(work, {"a.png": encode(photo_pixels(seed=1))})
    commit_files(work, {"a.png": encode(photo_pixels(seed=7)), "new.png": encode(photo_pixels(seed=8))}, "later")
    bare = tmp_path / "bare"
    git(tmp_path, "clone", "-q", "--bare", str(work), str(bare / "owner+photos" / "repo"))
    manifest = load_manifest(manifest_file(tmp_path / "m.toml", real_source("photos", "owner/photos", first)))
    for root in (tmp_path, bare):
        report = build_corpus(manifest, tmp_path / f"out-{root.name}", [root])
        assert [r.origin for r in report.records] == ["a.png"]
        assert np.array_equal(np.asarray(Image.open(report.out / report.records[0].path)), photo_pixels(seed=1))


def test_a_copy_without_the_pinned_commit_is_not_used(tmp_path):
    commit_files(tmp_path / "owner" / "photos", {"a.png": encode(photo_pixels())})
    manifest = load_manifest(manifest_file(tmp_path / "m.toml", real_source("photos", "owner/photos", "d" * 40)))
    with pytest.raises(CorpusError, match="a git copy without commit dddddddddddd"):
        build_corpus(manifest, tmp_path / "out", [tmp_path])


def test_online_clones_a_missing_source(tmp_path):
    work = tmp_path / "upstream"
    commit = commit_files(work, {"a.png": encode(photo_pixels())})
    manifest = load_manifest(manifest_file(tmp_path / "m.toml", real_source("photos", "owner/photos", commit)))
    copy = clone_source(manifest.sources[0], tmp_path / "sources", url=str(work))
    assert copy.git and copy.path == tmp_path / "sources" / "owner+photos" / "repo"
    report = build_corpus(manifest, tmp_path / "out", [tmp_path / "sources"])  # now found offline
    assert [r.origin for r in report.records] == ["a.png"]


def test_the_same_sources_give_the_same_corpus_byte_for_byte(sources):
    first, second = build(sources, sources["tmp"] / "one"), build(sources, sources["tmp"] / "two", workers=2)

    def tree(root: Path) -> dict:
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
                and p.name != "corpus.json"}

    assert tree(first.out) == tree(second.out) and len(tree(first.out)) == len(first.records) + 1  # + corpus.txt
    cards = [json.loads((r.out / "corpus.json").read_text()) for r in (first, second)]
    for card in cards:
        card.pop("timing")
    assert cards[0] == cards[1]


def test_a_folder_that_is_not_a_corpus_is_never_overwritten(sources):
    out = sources["tmp"] / "precious"
    out.mkdir()
    (out / "thesis.txt").write_text("keep me")
    with pytest.raises(CorpusError, match="is not a corpus"):
        build(sources, out)
    assert (out / "thesis.txt").read_text() == "keep me"
    rebuilt = build(sources, sources["tmp"] / "corpus")
    assert build(sources, rebuilt.out).records == rebuilt.records  # a previous corpus is replaced


def test_generator_named_through_a_json_file_of_the_repository(tmp_path):
    styles = {"My Style!": {"model": "Model A"}, "other": {"model": "Unknown B"}}
    commit = commit_files(tmp_path / "owner" / "styles", {
        "styles.json": json.dumps(styles).encode(), "images/my_style__person.webp": encode(photo_pixels(seed=3), "WEBP"),
        "images/other_place.webp": encode(photo_pixels(seed=4), "WEBP")})
    source = (f'[[sources]]\nid = "styles"\nrepo = "owner/styles"\ncommit = "{commit}"\nlicence = "CC0"\n'
              'kind = "generated"\n[[sources.entries]]\ninclude = "images/*.webp"\n[sources.entries.generator_from]\n'
              "pattern = '/([^/]+)_(?:person|place)\\.webp$'\nlookup = \"styles.json\"\nfield = \"model\"\n"
              'lookup_key = "lower-underscore"\nnames = { "Model A" = "model-a" }\n')
    manifest = load_manifest(manifest_file(tmp_path / "m.toml", source, 'model-a = { name = "A", family = "diffusion-modern" }'))
    report = build_corpus(manifest, tmp_path / "out", [tmp_path])
    assert [(r.origin, r.generator, r.format) for r in report.records] == [("images/my_style__person.webp", "model-a", "webp")]
    assert [(s.origin, s.reason) for s in report.skipped] == [("images/other_place.webp", "unnamed_generator")]


# --- statistics ---


def test_near_duplicates_are_a_resized_re_encoded_copy_not_another_picture_or_the_same_layout_recoloured():
    base = photo_pixels(160, 120, seed=1)
    index = NearIndex()
    index.add(fingerprint(base), "base")
    resized = Image.fromarray(base).resize((120, 90))
    copy = np.asarray(Image.open(io.BytesIO(encode(np.asarray(resized), "JPEG", quality=70))))
    assert index.find(fingerprint(copy)).label == "base"
    assert index.find(fingerprint(photo_pixels(160, 120, seed=2))) is None
    recoloured = fingerprint(base[:, :, ::-1])  # the same layout, other colours: what a fixed seed gives
    assert bin(recoloured.phash ^ fingerprint(base).phash).count("1") <= index.max_distance
    assert index.find(recoloured) is None


@pytest.mark.parametrize("quality", [30, 75, 95, 100])
def test_jpeg_quality_is_read_back_from_the_quantisation_tables(quality):
    image = Image.open(io.BytesIO(encode(photo_pixels(), "JPEG", quality=quality)))
    assert jpeg_quality(image.quantization) == quality


def record(label: str, fmt: str, width: int, index: int) -> ImageRecord:
    return ImageRecord(f"{index}", "s", None if label == "real" else "g", None, label, "train", f"{index}", "l", fmt,
                       fmt, width, width, width * width // 3, 2.7, 90 if fmt == "jpeg" else None, f"{index}", "0")


def test_format_and_size_check_sees_a_format_bias_and_not_an_absent_one():
    biased = [record("real", "jpeg", 500 + i, i) for i in range(40)] + [record("fake", "png", 500 + i, 40 + i) for i in range(40)]
    assert format_size_auc(biased)["gradient_boosting_auc"]["format and size"] == 1.0
    rng = np.random.default_rng(0)  # both classes drawn from one distribution of formats and sizes
    fair = [record(("real", "fake")[i % 2], str(rng.choice(["jpeg", "png", "webp"])), int(rng.integers(300, 900)), i)
            for i in range(160)]
    assert abs(format_size_auc(fair)["gradient_boosting_auc"]["format and size"] - 0.5) < 0.15


def test_bias_check_on_files_and_on_aligned_views(tmp_path):
    """Reals are JPEG photos of varied sizes, fakes PNG squares: the files give themselves away by format;
    the aligned training views (both classes cropped and re-encoded alike) much less so."""
    import dataclasses
    import json

    from aidetect.corpus.card import CARD_NAME, ImageRecord

    rng = np.random.default_rng(0)
    images = []
    for i in range(24):
        fake = i % 2 == 1
        width, height = (256, 256) if fake else (int(rng.integers(300, 420)), int(rng.integers(240, 300)))
        rel = f"train/src/{'1_fake/g' if fake else '0_real'}/{i}.{'png' if fake else 'jpg'}"
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(tmp_path / rel, quality=90)
        record = ImageRecord(rel, "src", "g" if fake else None, "gan" if fake else None, "fake" if fake else "real",
                             "train", rel, "MIT", "png" if fake else "jpeg", "png" if fake else "jpeg", width, height,
                             (tmp_path / rel).stat().st_size, 8.0, None if fake else 90, "0" * 64, "0" * 16)
        images.append(dataclasses.asdict(record))
    (tmp_path / CARD_NAME).write_text(json.dumps({"images": images}))
    files = run_cli("corpus", "bias", tmp_path, "--json")
    aligned = run_cli("corpus", "bias", tmp_path, "--aligned", "--sample", "0", "--json", "--no-progress")
    assert files.exit_code == 0 and aligned.exit_code == 0, files.output + aligned.output
    unaligned = run_cli("corpus", "bias", tmp_path, "--aligned", "--sample", "0", "--json", "--no-progress",
                        "--crop", "whole", "--reencode-prob", "0")
    assert unaligned.exit_code == 0, unaligned.output
    files, aligned, unaligned = (json.loads(r.stdout) for r in (files, aligned, unaligned))
    assert files["what"] == "files" and aligned["what"].startswith("training views (crop 224,256, re-encoded with p=1)")
    assert files["gradient_boosting_auc"]["format only"] == 1.0
    assert aligned["gradient_boosting_auc"]["format only"] < 0.9
    # the same views without re-encoding keep the files' formats: the recipe's options are what hides them
    assert unaligned["gradient_boosting_auc"]["format only"] > aligned["gradient_boosting_auc"]["format only"]
    assert run_cli("corpus", "bias", tmp_path, "--aligned", "--crop", "9,3").exit_code == 2
    assert run_cli("corpus", "bias", tmp_path / "nothing").exit_code == 2

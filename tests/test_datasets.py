"""Labelled folders in the CNNDetection layout: labels, set discovery, families file."""

from pathlib import Path

import pytest
from PIL import Image

from aidetect.datasets import (DatasetError, find_sets, generator_sets, group_of, label_of, labelled_images,
                               read_families)


def _image(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (10, 20, 30)).save(path)
    return path


def test_labels_come_from_the_nearest_label_folder(tmp_path):
    real = _image(tmp_path / "0_real" / "cats" / "a.png")
    fake = _image(tmp_path / "1_fake" / "gen" / "deep" / "b.png")
    nested = _image(tmp_path / "0_real" / "odd" / "1_fake" / "c.png")  # nearest wins
    _image(tmp_path / "unlabelled" / "d.png")
    (tmp_path / "0_real" / "notes.txt").write_text("not an image")
    assert labelled_images(tmp_path) == sorted([(real, 0), (fake, 1), (nested, 1)])
    assert label_of(tmp_path / "x" / "0_real" / "y.png", tmp_path) == 0
    assert label_of(tmp_path / "0_real.png", tmp_path) is None  # a file name is not a folder


def test_each_child_is_a_set(tmp_path):
    for name in ("b_set", "a_set"):
        _image(tmp_path / name / "0_real" / "r.png")
        _image(tmp_path / name / "1_fake" / "f1.png")
        _image(tmp_path / name / "1_fake" / "f2.png")
    (tmp_path / "empty").mkdir()
    _image(tmp_path / ".hidden" / "0_real" / "r.png")
    sets = find_sets(tmp_path)
    assert [(s.name, s.n_real, s.n_fake) for s in sets] == [("a_set", 1, 2), ("b_set", 1, 2)]
    assert all(path.is_relative_to(s.root) for s in sets for path, _ in s.items)


def test_root_with_label_folders_is_one_set(tmp_path):
    _image(tmp_path / "val" / "0_real" / "imagenet" / "r.png")
    _image(tmp_path / "val" / "1_fake" / "sd" / "f.png")
    sets = find_sets(tmp_path / "val")
    assert [(s.name, s.n_real, s.n_fake) for s in sets] == [("val", 1, 1)]


def test_unusable_roots_are_clear_errors(tmp_path):
    with pytest.raises(DatasetError, match="not a folder"):
        find_sets(tmp_path / "missing")
    _image(tmp_path / "set" / "pictures" / "x.png")
    with pytest.raises(DatasetError, match="0_real or 1_fake"):
        find_sets(tmp_path)


def test_families_file(tmp_path):
    good = tmp_path / "families.json"
    good.write_text('{"gan1": "gan", "sd": "diffusion"}')
    assert read_families(good) == {"gan1": "gan", "sd": "diffusion"}
    bad = tmp_path / "bad.json"
    bad.write_text('["gan1"]')
    with pytest.raises(DatasetError, match="JSON object"):
        read_families(bad)
    with pytest.raises(DatasetError, match="cannot read"):
        read_families(tmp_path / "none.json")


def test_group_of_names_the_generator_or_the_source(tmp_path):
    root = tmp_path
    assert group_of(root / "stylegan" / "1_fake" / "ffhq" / "a.png", root) == "ffhq"
    assert group_of(root / "midjourney" / "1_fake" / "a.png", root) == "midjourney"
    assert group_of(root / "kodak" / "0_real" / "sub" / "a.png", root) == "kodak"
    assert group_of(root / "1_fake" / "a.png", root) == tmp_path.name


def test_generator_sets_pair_each_generator_with_every_real(tmp_path):
    for rel in ("cams/0_real/a.png", "phones/0_real/b.png", "sg/1_fake/ffhq/c.png", "sg/1_fake/cats/d.png",
                "mj/1_fake/e.png"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8)).save(tmp_path / rel)
    sets = generator_sets(tmp_path)
    assert [(s.name, s.n_real, s.n_fake) for s in sets] == [("cats", 2, 1), ("ffhq", 2, 1), ("mj", 2, 1)]
    with pytest.raises(DatasetError, match="need real and generated"):
        generator_sets(tmp_path / "cams")  # reals only

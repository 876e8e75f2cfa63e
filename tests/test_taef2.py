"""The taef2 synth family: FLUX.2's tiny autoencoder, pretrained, loaded only from a folder the user names.

Everything here runs on random weights in seconds, except the last test, which uses the real weights
from $AIDETECT_TAEF2 or ../taef2 beside the repository and is skipped when they are absent.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import run_cli
from PIL import Image

from aidetect.evaluation.bench import photo_like
from aidetect.synth.autoencoders import AUTOENCODERS, build_autoencoder, default_archs, load_pretrained
from aidetect.synth.base import WeightsError
from aidetect.synth.build import _unit, find_reals, reconstruct, synthesize
from aidetect.synth.config import FitConfig, SynthConfig
from aidetect.synth.fit import psnr
from aidetect.synth.taesd import TinyAutoencoder

FILES = ("taef2_encoder.pth", "taef2_decoder.pth")
TAEF2 = Path(os.environ.get("AIDETECT_TAEF2", Path(__file__).resolve().parents[2] / "taef2"))


@pytest.fixture(autouse=True)
def one_thread():
    """The CPU may be shared: these networks are small enough for one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def random_weights(folder: Path, seed: int = 0, **architecture) -> Path:
    """The two weight files of a seeded random TAEF2 (or of another architecture), as the reference saves them."""
    torch.manual_seed(seed)
    model = TinyAutoencoder(**architecture)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.half() for k, v in model.encoder.state_dict().items()}, folder / FILES[0])
    torch.save({k: v.half() for k, v in model.decoder.state_dict().items()}, folder / FILES[1])
    return folder


def test_architecture_has_the_references_layers_and_shapes():
    model = build_autoencoder("taef2").eval()
    encoder, decoder = model.encoder.state_dict(), model.decoder.state_dict()
    # the reference's nn.Sequential indices and block names, so its files load key for key
    assert len(encoder) == len(decoder) == 79
    assert {"0.weight", "11.pool.1.weight", "14.weight"} <= set(encoder) and encoder["14.weight"].shape == (32, 64, 3, 3)
    assert {"1.weight", "3.pool.0.weight", "19.bias"} <= set(decoder) and decoder["1.weight"].shape == (64, 32, 3, 3)
    assert sum(p.numel() for p in model.parameters()) == 1_338_528 + 1_338_499
    x = torch.rand(1, 3, 64, 48)
    with torch.no_grad():
        latent = model.encode(x)
        assert latent.shape == (1, 32, 8, 6)
        assert model.decode(latent).shape == model(x).shape == (1, 3, 64, 48)
    with pytest.raises(ValueError, match="multiples of 8"):
        model.encode(torch.rand(1, 3, 60, 48))
    for height, width in ((37, 51), (5, 70)):  # the synthesiser pads to the multiple and crops back
        assert reconstruct(model, photo_like(80, 0)[:height, :width]).shape == (height, width, 3)


def test_tiles_give_the_untiled_result():
    torch.manual_seed(0)
    model = TinyAutoencoder().eval()
    x = torch.rand(1, 3, 64, 320)  # 8 x 40 latent positions: tiles of 8 with 10 of context see only part of it
    with torch.no_grad():
        whole = model(x)
        model.tile = 8
        tiled = model(x)
        model.margin = 2  # less context than the layers' reach: the test would notice
        short = model(x)
    torch.testing.assert_close(tiled, whole, rtol=1e-5, atol=1e-5 * float(whole.abs().max()))
    assert not torch.allclose(short, whole, rtol=1e-3, atol=1e-3 * float(whole.abs().max()))


def test_pretrained_families_need_a_folder_and_are_left_out_by_default():
    assert AUTOENCODERS["taef2"].weights == FILES
    assert "taef2" not in default_archs(pretrained=False) and "taef2" in default_archs(pretrained=True)
    with pytest.raises(WeightsError, match="--pretrained-dir") as error:
        load_pretrained("taef2", None)
    assert all(name in str(error.value) for name in FILES) and "madebyollin/taesd" in str(error.value)


def test_missing_folder_and_missing_file_are_named(tmp_path):
    with pytest.raises(WeightsError, match="not a folder"):
        load_pretrained("taef2", tmp_path / "nowhere")
    folder = random_weights(tmp_path / "w")
    (folder / FILES[1]).unlink()
    with pytest.raises(WeightsError, match=f"{FILES[1]}: not found"):
        load_pretrained("taef2", folder)


def test_weights_of_another_architecture_or_not_weights_at_all_are_refused(tmp_path):
    sd = random_weights(tmp_path / "sd", latent=4, global_norm=False)  # plain TAESD: no global-norm branch
    with pytest.raises(WeightsError, match=r"keys do not match the architecture \(12 missing") as error:
        load_pretrained("taef2", sd)
    assert "\n" not in str(error.value) and FILES[0] in str(error.value)
    f1 = random_weights(tmp_path / "f1", latent=16)  # FLUX.1's latent width: same keys, other shapes
    with pytest.raises(WeightsError, match=r"wrong shape, e.g. 14.weight \(16, 64, 3, 3\)"):
        load_pretrained("taef2", f1)
    junk = random_weights(tmp_path / "junk")
    (junk / FILES[0]).write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="not a readable weights file"):
        load_pretrained("taef2", junk)


class Payload:
    """Stands for pickled code: a file holding it must never be unpickled."""


def test_pickled_objects_are_not_loaded(tmp_path):
    folder = random_weights(tmp_path / "w")
    torch.save({"0.weight": Payload()}, folder / FILES[1])
    with pytest.raises(WeightsError, match="not a readable weights file"):
        load_pretrained("taef2", folder)


@pytest.fixture
def reals(tmp_path: Path) -> Path:
    """Five photo-like reals: JPEGs at two qualities, a PNG, and sizes that are not multiples of 8."""
    root = tmp_path / "reals"
    root.mkdir()
    for index, (width, height) in enumerate(((72, 64), (81, 67), (64, 90), (100, 75))):
        Image.fromarray(photo_like(100, index)[:height, :width]).save(root / f"img{index}.jpg", quality=70 + 20 * (index % 2))
    Image.fromarray(photo_like(70, 9)).save(root / "flat.png")
    return root


def test_synth_writes_aligned_fakes_reports_the_weights_and_resumes(reals, tmp_path):
    weights, out = random_weights(tmp_path / "w"), tmp_path / "out"
    config = SynthConfig(archs=("taef2",), pretrained_dir=str(weights), fit=FitConfig(crop=16, device="cpu"))
    report = synthesize(reals, out, config)
    row = report.archs[0]
    assert row.fit.steps == 0 and row.images == 5 and row.reused == 0 and np.isfinite(row.psnr)
    assert row.weights == json.loads((out / "models" / "taef2.json").read_text()) and set(row.weights) == set(FILES)
    assert not (out / "models" / "taef2.pt").exists()  # nothing trained, nothing saved but the stamp
    fakes = out / row.folder
    for path, rel in find_reals(reals):
        with Image.open(fakes / rel) as fake, Image.open(path) as twin:
            assert (fake.format, fake.size) == (twin.format, twin.size)
    saved = json.loads((out / "synth.json").read_text())["archs"][0]
    assert saved["weights"] == row.weights and saved["psnr"] == pytest.approx(row.psnr)

    first = {rel: (fakes / rel).read_bytes() for _, rel in find_reals(reals)}
    (fakes / "img1.jpg").unlink()  # as if the run had stopped before it
    again = synthesize(reals, out, config)
    assert again.archs[0].reused == 4 and again.archs[0].psnr == pytest.approx(row.psnr)
    assert {rel: (fakes / rel).read_bytes() for rel in first} == first  # same weights, same bytes

    random_weights(weights, seed=1)  # new weights: every fake is made again
    changed = synthesize(reals, out, config)
    assert changed.archs[0].reused == 0 and changed.archs[0].weights != row.weights
    assert (out / changed.archs[0].folder / "img0.jpg").read_bytes() != first[Path("img0.jpg")]


def test_cli_errors_name_the_missing_weights(reals, tmp_path):
    result = run_cli("synth", reals, tmp_path / "out", "-a", "taef2", "--device", "cpu")
    assert result.exit_code == 2 and "--pretrained-dir" in result.stderr and FILES[0] in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    folder = random_weights(tmp_path / "w")
    (folder / FILES[0]).unlink()
    result = run_cli("synth", reals, tmp_path / "out", "-a", "taef2", "--pretrained-dir", folder, "--device", "cpu")
    assert result.exit_code == 2 and f"{FILES[0]}: not found" in result.stderr
    assert not (tmp_path / "out" / "0_real").exists()  # refused before any work
    listing = run_cli("synth", "--list")
    assert "taef2" in listing.stdout and FILES[1] in listing.stdout


def test_cli_passes_the_folder_and_prints_the_family(reals, tmp_path):
    weights = random_weights(tmp_path / "w")
    result = run_cli("synth", reals, tmp_path / "out", "-a", "taef2", "--pretrained-dir", weights, "--crop", "16",
                     "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "pretrained" in result.stdout and "taef2" in result.stdout


def real_weights() -> Path:
    if not all((TAEF2 / name).is_file() for name in FILES):
        pytest.skip(f"{TAEF2} does not hold {' and '.join(FILES)} (set AIDETECT_TAEF2 to the folder; they are in "
                    f"github.com/madebyollin/taesd at commit 5cccb12dc720)")
    return TAEF2


def test_real_weights_reconstruct_a_photo_like_image():
    model, digests = load_pretrained("taef2", real_weights())
    assert set(digests) == set(FILES)
    # measured: 28.7-30.5 dB on photo_like 96 and 128 px, seeds 0-3 (random weights: far below)
    for seed, (height, width) in enumerate(((128, 128), (75, 100))):
        image = photo_like(128, seed)[:height, :width]
        fake = reconstruct(model, image)
        assert fake.shape == image.shape
        assert float(psnr(_unit(fake), _unit(image))) > 27.0

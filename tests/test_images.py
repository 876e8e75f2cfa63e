"""Decoding: every odd but valid image becomes the RGB pixels a viewer shows; every bad file a one-line ImageError."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest
from helpers import corrupt_png_chunk, exif_rotated_jpeg, huge_png_header, noise_pixels, truncated_jpeg, write_image
from PIL import Image

from aidetect.images import ImageError, load_image, looks_like_image, to_rgb_array


def _error(path, **options) -> str:
    with pytest.raises(ImageError) as caught:
        load_image(path, **options)
    message = str(caught.value)
    assert message and "\n" not in message
    return message


# --- valid images that need care ---

def test_one_pixel_image(tmp_path):
    Image.new("RGB", (1, 1), (1, 2, 3)).save(tmp_path / "one.png")
    assert load_image(tmp_path / "one.png").tolist() == [[[1, 2, 3]]]


def test_16_bit_grey_png_is_scaled_to_8_bits(tmp_path):
    grey = np.array([[0, 257, 32768, 65535]], dtype=np.uint16)
    Image.fromarray(grey).save(tmp_path / "grey16.png")
    assert Image.open(tmp_path / "grey16.png").mode.startswith("I;16")
    pixels = load_image(tmp_path / "grey16.png")
    assert pixels.dtype == np.uint8 and pixels.shape == (1, 4, 3)
    assert pixels[0, :, 0].tolist() == [0, 1, 128, 255]
    assert (pixels[..., 0] == pixels[..., 2]).all()


def test_16_bit_colour_png_is_scaled_to_8_bits(tmp_path):
    bgr = np.zeros((2, 2, 3), np.uint16)
    bgr[0, 0] = (0, 32768, 65535)  # OpenCV writes BGR: this pixel is R=65535, G=32768, B=0
    cv2.imwrite(str(tmp_path / "rgb16.png"), bgr)
    assert load_image(tmp_path / "rgb16.png")[0, 0].tolist() == [255, 128, 0]


def test_cmyk_jpeg(tmp_path):
    Image.new("CMYK", (16, 8), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg", quality=100)
    pixels = load_image(tmp_path / "cmyk.jpg")
    assert pixels.shape == (8, 16, 3)
    assert np.abs(pixels[4, 8].astype(int) - (255, 0, 0)).max() <= 3  # cyan-free, magenta+yellow: red


def test_palette_png_transparency_is_composited_on_white(tmp_path):
    image = Image.new("P", (4, 2), 1)
    image.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)
    image.paste(0, (0, 0, 2, 2))  # left half: index 0, transparent
    image.save(tmp_path / "palette.png", transparency=0)
    pixels = load_image(tmp_path / "palette.png")
    assert pixels[0, 0].tolist() == [255, 255, 255]
    assert pixels[0, 3].tolist() == [0, 0, 255]


def test_colour_key_transparency_is_composited_on_white(tmp_path):
    Image.new("RGB", (3, 3), (10, 20, 30)).save(tmp_path / "key.png", transparency=(10, 20, 30))
    assert load_image(tmp_path / "key.png")[1, 1].tolist() == [255, 255, 255]


def test_alpha_channel_is_composited_on_white(tmp_path):
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (0, 0, 0, 0)
    rgba[1, 1] = (0, 0, 0, 255)
    Image.fromarray(rgba).save(tmp_path / "alpha.png")
    pixels = load_image(tmp_path / "alpha.png")
    assert pixels[0, 0].tolist() == [255, 255, 255] and pixels[1, 1].tolist() == [0, 0, 0]


def test_animated_gif_gives_its_first_frame(tmp_path):
    frames = [Image.new("RGB", (30, 20), colour) for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=50, loop=0)
    assert Image.open(tmp_path / "anim.gif").n_frames == 3
    pixels = load_image(tmp_path / "anim.gif")
    assert pixels.shape == (20, 30, 3) and pixels[10, 15].tolist() == [255, 0, 0]


@pytest.mark.parametrize("orientation, red_column", [(6, -1), (8, 0)])
def test_exif_orientation_gives_the_frame_the_user_sees(tmp_path, orientation, red_column):
    path = exif_rotated_jpeg(tmp_path / "rotated.jpg", orientation, width=300, height=150)
    pixels = load_image(path)
    assert pixels.shape == (300, 150, 3)  # portrait, as a viewer shows it
    assert pixels[150, red_column, 0] > 200 and pixels[150, 75, 0] < 50  # the stored top row is now a side


def test_pil_image_input(tmp_path):
    image = Image.fromarray(noise_pixels(20, 10)).convert("LA")
    pixels = to_rgb_array(image)
    assert pixels.shape == (10, 20, 3) and pixels.flags.writeable


# --- sizes ---

def test_huge_declared_size_is_refused_from_the_header(tmp_path, monkeypatch):
    """Refused before any pixel is decoded: 1.2 GB of pixels are never allocated."""
    from PIL import ImageFile

    def decode(self):
        raise AssertionError("pixels decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", decode)
    message = _error(huge_png_header(tmp_path / "bomb.png"))
    assert "too large" in message and "20000x20000" in message


def test_pixel_limit_is_ours_not_pillows(tmp_path, monkeypatch):
    path = write_image(tmp_path / "ok.png", 100, 100)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow would refuse 10,000 pixels
    assert load_image(path, max_pixels=10_000).shape == (100, 100, 3)
    assert Image.MAX_IMAGE_PIXELS == 1000  # restored
    assert "too large" in _error(path, max_pixels=9_999)


# --- bad files ---

def test_zero_byte_file(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    assert "empty" in _error(tmp_path / "empty.jpg")


def test_text_file_named_jpg(tmp_path):
    (tmp_path / "notes.jpg").write_text("not a picture\n")
    assert "not an image" in _error(tmp_path / "notes.jpg")


def test_truncated_jpeg(tmp_path):
    assert "truncated" in _error(truncated_jpeg(tmp_path / "cut.jpg"))


def test_png_with_a_failing_chunk_crc(tmp_path):
    assert "corrupt" in _error(corrupt_png_chunk(tmp_path / "crc.png"))


def test_png_with_corrupt_pixel_data(tmp_path):
    data = bytearray((write_image(tmp_path / "good.png", 32, 32)).read_bytes())
    start = data.index(b"IDAT") + 8
    data[start:start + 16] = bytes(16)
    (tmp_path / "idat.png").write_bytes(bytes(data))
    assert "cannot decode" in _error(tmp_path / "idat.png")


def test_missing_file_and_directory(tmp_path):
    assert "no such file" in _error(tmp_path / "missing.png")
    assert "directory" in _error(tmp_path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_named_pipe_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "pipe.png")
    assert "not a regular file" in _error(tmp_path / "pipe.png")


def test_signatures(tmp_path):
    assert looks_like_image(write_image(tmp_path / "photo.dat", format="JPEG"))
    assert looks_like_image(write_image(tmp_path / "x.bin", format="PNG"))
    (tmp_path / "notes.txt").write_text("hello")
    assert not looks_like_image(tmp_path / "notes.txt")
    assert not looks_like_image(tmp_path / "missing")

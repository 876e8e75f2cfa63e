"""Provenance reading and the provenance-first verdict (aidetect.provenance).

Real files from C2PA and generator projects live in tests/fixtures/provenance (SOURCES.md); the
hostile and degenerate cases are written here into tmp_path.
"""

from __future__ import annotations

import io
import json
import socket
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest
from PIL import Image

from aidetect.provenance import (C2PA_STATES, C2paAction, C2paManifest, Provenance, decide, provenance_summary,
                                 read_provenance)
from aidetect.provenance.verdict import NO_PROVENANCE

FIXTURES = Path(__file__).parent / "fixtures" / "provenance"
IMAGES = sorted(path for path in FIXTURES.iterdir() if path.suffix in (".jpg", ".png"))
IPTC = "cv.iptc.org/newscodes/digitalsourcetype/"
JOB_ID = "Job ID: 3f1c2d4e-5a6b-4c7d-8e9f-0a1b2c3d4e5f"


# --- building hostile files -------------------------------------------------------------------

def _plain(fmt: str, size: tuple[int, int] = (8, 8), **save) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (90, 120, 150)).save(buffer, fmt, **save)
    return buffer.getvalue()


def _jpeg_with(*segments: tuple[int, bytes]) -> bytes:
    """A small JPEG with (marker, payload) segments inserted after SOI."""
    data = _plain("JPEG")
    inserted = b"".join(b"\xff" + bytes([marker]) + struct.pack(">H", len(payload) + 2) + payload
                        for marker, payload in segments)
    return data[:2] + inserted + data[2:]


def _png_with(*chunks: tuple[bytes, bytes]) -> bytes:
    """A 1x1 PNG with (type, data) chunks inserted before IEND."""
    data = _plain("PNG", (1, 1))
    inserted = b"".join(struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
                        for kind, body in chunks)
    return data[:-12] + inserted + data[-12:]


def _xmp(properties: str, namespaces: str = "") -> bytes:
    return (f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            f'<rdf:Description rdf:about="" xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
            f'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/" '
            f'{namespaces}>{properties}</rdf:Description></rdf:RDF></x:xmpmeta>').encode()


def _xmp_app1(packet: bytes) -> tuple[int, bytes]:
    return 0xE1, b"http://ns.adobe.com/xap/1.0/\x00" + packet


def _exif_app1(user_comment: bytes, order: str = "MM") -> tuple[int, bytes]:
    """EXIF with Software in IFD0 and UserComment in the Exif IFD, built by hand in either byte order."""
    e = ">" if order == "MM" else "<"
    software = b"test writer\x00"
    software_at = 8 + 2 + 2 * 12 + 4
    exif_ifd_at = software_at + len(software)
    comment_at = exif_ifd_at + 2 + 12 + 4
    tiff = order.encode() + struct.pack(f"{e}HI", 42, 8) + struct.pack(f"{e}H", 2)
    tiff += struct.pack(f"{e}HHII", 0x0131, 2, len(software), software_at)
    tiff += struct.pack(f"{e}HHII", 0x8769, 4, 1, exif_ifd_at) + struct.pack(f"{e}I", 0) + software
    tiff += struct.pack(f"{e}H", 1) + struct.pack(f"{e}HHII", 0x9286, 7, len(user_comment), comment_at)
    tiff += struct.pack(f"{e}I", 0) + user_comment
    return 0xE1, b"Exif\x00\x00" + tiff


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# --- the committed fixtures ---------------------------------------------------------------------

C2PA_CASES = {
    # file: (state, label with the pixel detector off, basis, strength, failure codes)
    "Firefly_tabby_cat.jpg": ("trusted", "generated", "signed-declaration", "strong", []),
    "ChatGPT_Image.png": ("untrusted", "generated", "signed-declaration", "moderate",
                          ["signingCredential.untrusted", "signingCredential.expired"]),
    "C.jpg": ("untrusted", "generated", "signed-declaration", "moderate", ["signingCredential.untrusted"]),
    "XCA.jpg": ("tampered", "undetermined", "tampered-manifest", "none", ["assertion.dataHash.mismatch"]),
    "E-sig-CA.jpg": ("tampered", "undetermined", "tampered-manifest", "none", ["claimSignature.mismatch"]),
    "cloud.jpg": ("remote", "undetermined", "pixels", "none", []),
    "no_manifest.jpg": ("none", "undetermined", "pixels", "none", []),
}


@pytest.mark.parametrize("name", sorted(C2PA_CASES))
def test_c2pa_fixtures(name):
    state, label, basis, strength, codes = C2PA_CASES[name]
    provenance = read_provenance(FIXTURES / name)
    verdict = decide(provenance, None, None)
    assert (provenance.c2pa_state, verdict.label, verdict.basis, verdict.strength) == (state, label, basis, strength)
    failures = provenance.c2pa_failures.tampering + provenance.c2pa_failures.credential
    assert all(code in failures for code in codes)
    if state in ("trusted", "untrusted", "tampered"):
        assert provenance.trust_list.startswith("C2PA Trust List 20")
        assert provenance.c2pa[0].active and provenance.c2pa[0].signer


def test_signed_declarations_carry_their_evidence():
    firefly = read_provenance(FIXTURES / "Firefly_tabby_cat.jpg")
    action = firefly.c2pa[0].actions[0]
    assert (action.action, action.source_type) == ("c2pa.created", "trainedAlgorithmicMedia")
    assert action.digital_source_type == f"http://{IPTC}trainedAlgorithmicMedia"
    assert [(tool.tool, tool.basis) for tool in firefly.tools] == [("Adobe Firefly", "signed")]
    assert provenance_summary(firefly) == "C2PA signed: trainedAlgorithmicMedia (Adobe Inc.)"

    chatgpt = read_provenance(FIXTURES / "ChatGPT_Image.png")  # the declaration is in the parent manifest
    assert [manifest.active for manifest in chatgpt.c2pa] == [True, False]
    assert chatgpt.c2pa[1].relationship == "parentOf"
    assert chatgpt.c2pa[1].actions[0].software_agent == "GPT-4o"
    assert provenance_summary(chatgpt) == "C2PA signed (untrusted): trainedAlgorithmicMedia (OpenAI)"
    document = json.loads(json.dumps(chatgpt.to_dict()))
    assert document["c2pa_state"] == "untrusted"
    assert document["c2pa_failures"]["credential"] == ["signingCredential.untrusted", "signingCredential.expired"]
    assert document["c2pa"][1]["actions"][0]["source_type"] == "trainedAlgorithmicMedia"


@pytest.mark.parametrize("name", ["ChatGPT_Image.png", "Firefly_tabby_cat.jpg"])
def test_manifests_match_the_published_dumps(name):
    """The example-assets project publishes each file's manifest store as JSON: same manifests, same claims."""
    dump = json.loads((FIXTURES / name).with_suffix(".json").read_text())
    provenance = read_provenance(FIXTURES / name)
    assert provenance.c2pa[0].label == dump["active_manifest"]
    assert {manifest.label for manifest in provenance.c2pa} == set(dump["manifests"])
    declared = {action.get("digitalSourceType") for manifest in dump["manifests"].values()
                for assertion in manifest["assertions"] if assertion["label"].startswith("c2pa.actions")
                for action in assertion["data"]["actions"]} - {None}
    ours = {action.digital_source_type for manifest in provenance.c2pa for action in manifest.actions}
    assert ours - {None} == declared


def test_tampered_manifest_voids_its_declaration():
    provenance = read_provenance(FIXTURES / "XCA.jpg")
    assert provenance.tools == []
    assert provenance_summary(provenance) == "C2PA tampered: altered after signing"
    for probability, label in ((0.9, "generated"), (0.1, "no sign of generation")):
        verdict = decide(provenance, probability, 0.5)
        assert (verdict.label, verdict.basis) == (label, "tampered-manifest")
        assert "altered after signing" in verdict.sentence and "assertion.dataHash.mismatch" in verdict.sentence


def test_remote_manifest_is_named_not_fetched():
    provenance = read_provenance(FIXTURES / "cloud.jpg")
    assert provenance.remote_manifest_url.startswith("https://cai-manifests.adobe.com/manifests/")
    assert any("not fetched" in note for note in provenance.notes)
    assert "not fetched" in decide(provenance, 0.2, 0.5).sentence


def test_stripped_manifest_is_noted():
    provenance = read_provenance(FIXTURES / "no_manifest.jpg")
    assert any("stripped" in note for note in provenance.notes)
    assert provenance_summary(provenance) == "—"
    assert NO_PROVENANCE in decide(provenance, 0.2, 0.5).sentence


GENERATOR_CASES = {
    "automatic1111_cropped.png": ("AUTOMATIC1111", "png:parameters"),
    "automatic1111_cropped.jpg": ("AUTOMATIC1111", "exif:UserComment"),
    "img2img_cropped.png": ("ComfyUI", "png:workflow"),
    "novelai1_cropped.png": ("NovelAI", "png:Software"),
    "invokeai_dream1.png": ("InvokeAI", "png:Dream"),
    "invokeai_imeta1.png": ("InvokeAI", "png:invokeai_metadata"),
    "invokeai_sdmeta1.png": ("InvokeAI", "png:sd-metadata"),
    "fooocus1_cropped.png": ("Fooocus", "png:parameters"),
}


@pytest.mark.parametrize("name", sorted(GENERATOR_CASES))
def test_generator_metadata_is_unsigned_evidence(name):
    provenance = read_provenance(FIXTURES / name)
    tools = {(tool.tool, tool.found_in, tool.basis) for tool in provenance.tools}
    assert (*GENERATOR_CASES[name], "unsigned") in tools
    verdict = decide(provenance, 0.2, 0.5)
    assert (verdict.label, verdict.basis, verdict.strength) == ("generated", "unsigned-metadata", "weak")
    assert verdict.disagreement and "0.200" in verdict.disagreement
    assert decide(provenance, 0.8, 0.5).disagreement is None
    assert provenance.unrecognised_keys == []


def test_reading_never_touches_the_network(monkeypatch):
    def refuse(*_args, **_kwargs):
        raise AssertionError("provenance reading opened a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    for path in IMAGES:
        read_provenance(path)


@pytest.mark.parametrize("path", IMAGES, ids=lambda path: path.name)
@pytest.mark.parametrize("probability", [None, 0.05, 0.95])
def test_no_claim_of_authenticity(path, probability):
    verdict = decide(read_provenance(path), probability, 0.5)
    assert "authentic" not in verdict.label.lower()
    assert "authentic" not in verdict.sentence.replace(NO_PROVENANCE, "").lower()
    assert verdict.label in ("generated", "ai-edited", "no sign of generation", "undetermined")


# --- files written here -------------------------------------------------------------------------

@pytest.mark.parametrize("scheme", ["http", "https"])
def test_xmp_digital_source_type_in_either_scheme(tmp_path, scheme):
    source = f"{scheme}://{IPTC}trainedAlgorithmicMedia"
    packet = _xmp(f"<Iptc4xmpExt:DigitalSourceType>{source}</Iptc4xmpExt:DigitalSourceType>"
                  "<Iptc4xmpExt:AISystemUsed>Imagen</Iptc4xmpExt:AISystemUsed>"
                  "<Iptc4xmpExt:AISystemVersionUsed>3</Iptc4xmpExt:AISystemVersionUsed>"
                  "<Iptc4xmpExt:AIPromptInformation>a red fox</Iptc4xmpExt:AIPromptInformation>"
                  "<Iptc4xmpExt:AIPromptWriterName>Ada</Iptc4xmpExt:AIPromptWriterName>")
    provenance = read_provenance(_write(tmp_path, "x.jpg", _jpeg_with(_xmp_app1(packet))))
    assert provenance.xmp["Iptc4xmpExt:AIPromptInformation"] == "a red fox"
    assert provenance.xmp["Iptc4xmpExt:AIPromptWriterName"] == "Ada"
    [tool] = provenance.tools
    assert (tool.tool, tool.found_in, tool.basis) == ("Imagen 3", "xmp:Iptc4xmpExt:DigitalSourceType", "unsigned")
    assert decide(provenance, None, None).basis == "unsigned-metadata"


def test_xmp_is_read_by_namespace_not_prefix(tmp_path):
    packet = _xmp(f'<ns1:DigitalSourceType rdf:resource="https://{IPTC}compositeWithTrainedAlgorithmicMedia"/>'
                  "<photoshop:Credit>Made with Google AI</photoshop:Credit>",
                  'xmlns:ns1="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"')
    provenance = read_provenance(_write(tmp_path, "x.webp", _plain("WEBP", xmp=packet)))
    assert provenance.xmp["photoshop:Credit"] == "Made with Google AI"
    [tool] = provenance.tools
    assert (tool.tool, tool.declares) == ("Google AI", "ai-edited")
    assert decide(provenance, None, None).label == "ai-edited"


def test_midjourney_png(tmp_path):
    packet = _xmp(f"<Iptc4xmpExt:DigitalSourceType>http://{IPTC}trainedAlgorithmicMedia</Iptc4xmpExt:DigitalSourceType>"
                  f'<dc:description><rdf:Alt><rdf:li xml:lang="x-default">a fox --v 6 {JOB_ID}</rdf:li></rdf:Alt>'
                  "</dc:description>")
    itxt = b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + packet
    description = f"a fox --v 6 {JOB_ID}".encode()
    path = _write(tmp_path, "mj.png", _png_with((b"iTXt", itxt), (b"tEXt", b"Description\x00" + description)))
    provenance = read_provenance(path)
    assert {(tool.tool, tool.found_in) for tool in provenance.tools} == {
        ("Midjourney", "xmp:Iptc4xmpExt:DigitalSourceType"), ("Midjourney", "png:Description")}
    assert "XML:com.adobe.xmp" not in provenance.png_text


def test_other_generators_and_unknown_keys(tmp_path):
    forge = b"parameters\x00a cat\nSteps: 20, Sampler: Euler a, Version: f2.0.1v1.10.1"
    path = _write(tmp_path, "x.png", _png_with(
        (b"tEXt", forge), (b"tEXt", b"sui_image_params\x00{}"), (b"tEXt", b"my_key\x00hello")))
    provenance = read_provenance(path)
    assert {tool.tool for tool in provenance.tools} == {"Forge", "SwarmUI"}
    assert provenance.unrecognised_keys == ["my_key"]
    assert provenance.png_text["my_key"] == "hello"


@pytest.mark.parametrize("comment, order, expected", [
    (b"ASCII\x00\x00\x00Steps: 5, Sampler: Euler", "MM", "Steps: 5, Sampler: Euler"),
    (b"UNICODE\x00" + "Steps: 5, Sampler: Euler".encode("utf-16-be"), "MM", "Steps: 5, Sampler: Euler"),
    (b"UNICODE\x00" + "Steps: 5, Sampler: Euler".encode("utf-16-le"), "MM", "Steps: 5, Sampler: Euler"),
    (b"UNICODE\x00" + "Steps: 5, Sampler: Euler".encode("utf-16-le"), "II", "Steps: 5, Sampler: Euler"),
])
def test_exif_user_comment_encodings(tmp_path, comment, order, expected):
    provenance = read_provenance(_write(tmp_path, "x.jpg", _jpeg_with(_exif_app1(comment, order))))
    assert provenance.exif["UserComment"] == expected
    assert provenance.exif["Software"] == "test writer"
    assert [tool.found_in for tool in provenance.tools] == ["exif:UserComment"]
    assert provenance.notes == []


@pytest.mark.parametrize("body", [b"\x00a\xd8\x00", b"\x00a\x00"])  # a lone surrogate; an odd length
def test_invalid_utf16_user_comment_is_noted(tmp_path, body):
    provenance = read_provenance(_write(tmp_path, "x.jpg", _jpeg_with(_exif_app1(b"UNICODE\x00" + body))))
    assert any("not valid UTF-16" in note for note in provenance.notes)
    assert provenance.exif["UserComment"].startswith("a")


def test_text_chunks_are_bounded(tmp_path):
    huge = b"parameters\x00" + b"x" * (3 << 20)
    bomb = b"bomb\x00\x00" + zlib.compress(b"a" * (64 << 20), 9)
    binary = b"blob\x00" + bytes(range(256))
    path = _write(tmp_path, "x.png", _png_with((b"tEXt", huge), (b"zTXt", bomb), (b"tEXt", binary)))
    started = time.perf_counter()
    provenance = read_provenance(path)
    assert time.perf_counter() - started < 2
    assert (1 << 20) - 100 < len(provenance.png_text["parameters"]) <= 1 << 20
    assert len(provenance.png_text["bomb"]) == 1 << 20
    assert provenance.png_text["blob"].startswith("<binary data")
    notes = " ".join(provenance.notes)
    assert "only the first" in notes and "inflates to over" in notes and "binary data" in notes


def test_entity_bomb_is_refused(tmp_path):
    entities = "".join(f'<!ENTITY e{i} "{f"&e{i - 1};" * 10}">' for i in range(1, 10))
    packet = (f'<?xml version="1.0"?><!DOCTYPE x:xmpmeta [<!ENTITY e0 "lol">{entities}]>'
              '<x:xmpmeta xmlns:x="adobe:ns:meta/">&e9;</x:xmpmeta>').encode()
    started = time.perf_counter()
    provenance = read_provenance(_write(tmp_path, "x.jpg", _jpeg_with(_xmp_app1(packet))))
    assert time.perf_counter() - started < 1
    assert provenance.xmp == {}
    assert any("DOCTYPE" in note for note in provenance.notes)


def test_xmp_that_is_not_xml_is_noted(tmp_path):
    provenance = read_provenance(_write(tmp_path, "x.jpg", _jpeg_with(_xmp_app1(b"<x:xmpmeta><unclosed"))))
    assert any("not well-formed XML" in note for note in provenance.notes)


_JUMBF = struct.pack(">I", 4000) + b"jumb" + struct.pack(">I", 30) + b"jumdc2pa" + b"\x00" * 40


@pytest.mark.parametrize("name, data", [
    ("forged.jpg", _jpeg_with((0xEB, b"JP\x02\x11\x00\x00\x00\x01" + _JUMBF))),
    ("cut.jpg", (FIXTURES / "C.jpg").read_bytes()[:30000]),
    ("cut.png", (FIXTURES / "ChatGPT_Image.png").read_bytes()[:5000]),
])
def test_truncated_jumbf_is_invalid_not_an_error(tmp_path, name, data):
    provenance = read_provenance(_write(tmp_path, name, data))
    assert provenance.c2pa_state == "invalid"
    assert any("C2PA data present but unreadable" in note for note in provenance.notes)
    assert provenance_summary(provenance) == "C2PA unreadable"
    assert decide(provenance, 0.7, 0.5).label == "generated"


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_plain_image_has_no_provenance(tmp_path, fmt):
    provenance = read_provenance(_write(tmp_path, f"x.{fmt.lower()}", _plain(fmt)))
    assert (provenance.c2pa_state, provenance.tools, provenance.notes) == ("none", [], [])
    verdict = decide(provenance, 0.3, 0.5)
    assert (verdict.label, verdict.basis) == ("no sign of generation", "pixels")
    assert verdict.sentence.endswith(f"{NO_PROVENANCE}.")
    assert decide(None, 0.7, None).label == "generated"


@pytest.mark.parametrize("name, data", [
    ("empty.jpg", b""),
    ("truncated.png", (FIXTURES / "ChatGPT_Image.png").read_bytes()[:300000]),
    ("text.jpg", b"this is not an image\n" * 10),
    ("one-pixel.png", _plain("PNG", (1, 1))),
    ("garbage.png", b"\x89PNG\r\n\x1a\n" + b"\xff" * 64),
    ("garbage.jpg", b"\xff\xd8\xff\xe1\x00\x01"),
])
def test_degenerate_files_never_raise(tmp_path, name, data):
    provenance = read_provenance(_write(tmp_path, name, data))
    assert provenance.c2pa_state in C2PA_STATES
    json.dumps(provenance.to_dict())
    assert decide(provenance, None, None).label in ("undetermined", "generated", "no sign of generation")


def test_missing_files_and_folders_are_notes(tmp_path):
    assert read_provenance(tmp_path / "missing.jpg").notes[0].startswith("file unreadable")
    assert read_provenance(tmp_path).notes[0].startswith("file unreadable")


# --- the verdict on its own -----------------------------------------------------------------------

def _signed(*actions: C2paAction, state: str = "trusted") -> Provenance:
    return Provenance(path="x", c2pa_state=state, trust_list="test list",
                      c2pa=[C2paManifest(label="m", active=True, signer="Cam", issuer="Maker", actions=list(actions))])


def test_signed_camera_capture_against_pixels():
    provenance = _signed(C2paAction("c2pa.created", f"https://{IPTC}digitalCapture", "digitalCapture"))
    verdict = decide(provenance, 0.9, 0.5)
    assert (verdict.label, verdict.basis) == ("generated", "pixels")
    assert "camera capture" in verdict.disagreement
    assert decide(provenance, 0.1, 0.5).disagreement is None
    assert provenance_summary(provenance) == "C2PA signed: digitalCapture (Maker)"


@pytest.mark.parametrize("action", [
    C2paAction("c2pa.created", "x", "compositeWithTrainedAlgorithmicMedia"),
    C2paAction("c2pa.edited", "x", "trainedAlgorithmicMedia"),
    C2paAction("c2pa.edited", software_agent="Adobe Firefly Generative Fill"),
])
def test_signed_ai_editing(action):
    verdict = decide(_signed(action), None, None)
    assert (verdict.label, verdict.basis, verdict.strength) == ("ai-edited", "signed-declaration", "strong")
    assert "test list" in verdict.sentence


def test_credential_problem_weakens_and_component_ingredient_edits():
    generated = C2paAction("c2pa.created", "x", "trainedAlgorithmicMedia")
    provenance = _signed(C2paAction("c2pa.placed"), state="untrusted")
    provenance.c2pa.append(C2paManifest(label="i", active=False, relationship="componentOf", actions=[generated]))
    verdict = decide(provenance, 0.2, 0.5)
    assert (verdict.label, verdict.strength) == ("ai-edited", "moderate")
    assert verdict.disagreement is not None


def test_provenance_alone_without_pixels():
    verdict = decide(_signed(C2paAction("c2pa.created", "x", "trainedAlgorithmicMedia")), None, None)
    assert (verdict.label, verdict.strength, verdict.disagreement) == ("generated", "strong", None)
    nothing = decide(Provenance(path="x"), None, None)
    assert (nothing.label, nothing.basis, nothing.strength) == ("undetermined", "pixels", "none")
    assert NO_PROVENANCE in nothing.sentence
    unread = decide(None, 0.2, 0.5)  # --no-provenance: nothing is claimed about metadata
    assert (unread.label, unread.basis) == ("no sign of generation", "pixels")
    assert "not read" in unread.sentence and NO_PROVENANCE not in unread.sentence


def test_import_and_plain_files_stay_light(tmp_path):
    """No torch, numpy, Pillow or c2pa for files without metadata."""
    plain = _write(tmp_path, "plain.png", _plain("PNG"))
    code = ("import sys; from aidetect.provenance import read_provenance; "
            f"[read_provenance(p) for p in ({str(plain)!r}, {str(FIXTURES / 'automatic1111_cropped.png')!r})]; "
            "print(sorted(m for m in ('torch', 'numpy', 'PIL', 'c2pa') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_without_c2pa_a_manifest_is_unverified(monkeypatch):
    monkeypatch.setitem(sys.modules, "c2pa", None)  # `import c2pa` now fails
    provenance = read_provenance(FIXTURES / "Firefly_tabby_cat.jpg")
    assert provenance.c2pa_state == "unverified"
    assert decide(provenance, 0.9, 0.5).basis == "pixels"
    assert provenance_summary(provenance) == "C2PA present (not verified)"

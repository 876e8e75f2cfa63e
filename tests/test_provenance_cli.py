"""Provenance through the commands: `scan` (every format), `--no-provenance`, `explain`, `--report` and
`aidetect provenance`, on the committed fixtures (tests/fixtures/provenance/SOURCES.md) and on broken files."""

from __future__ import annotations

import csv
import io
import json
import shutil
import socket
import struct
from pathlib import Path

import pytest
from helpers import SCAN_OPTIONS, run_cli, scan_json, truncated_jpeg, write_image
from test_provenance import GENERATOR_CASES

FIXTURES = Path(__file__).parent / "fixtures" / "provenance"

# fixture -> (label, basis); None: the pixels decide the label
EXPECTED = {
    "Firefly_tabby_cat.jpg": ("generated", "signed-declaration"),
    "ChatGPT_Image.png": ("generated", "signed-declaration"),
    "C.jpg": ("generated", "signed-declaration"),
    "XCA.jpg": (None, "tampered-manifest"),
    "E-sig-CA.jpg": (None, "tampered-manifest"),
    "cloud.jpg": (None, "pixels"),
    "no_manifest.jpg": (None, "pixels"),
    **{name: ("generated", "unsigned-metadata") for name in GENERATOR_CASES},  # the local tools' own files
}


@pytest.fixture
def no_network(monkeypatch):
    """Any Python socket connection fails the test (c2pa's native library was checked apart, with strace)."""
    def refuse(*args, **kwargs):
        raise AssertionError("network use")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _by_name(doc: dict) -> dict[str, dict]:
    return {Path(r["path"]).name: r for r in doc["results"]}


def test_scan_gives_each_fixture_its_verdict_and_basis(tiny_checkpoint, no_network):
    code, doc, _ = scan_json(tiny_checkpoint, *(FIXTURES / name for name in EXPECTED))
    assert code == 0
    results = _by_name(doc)
    for name, (label, basis) in EXPECTED.items():
        verdict = results[name]["verdict"]
        pixels = "generated" if results[name]["probability"] >= results[name]["threshold"] else "no sign of generation"
        assert (verdict["label"], verdict["basis"]) == (label or pixels, basis), name
        assert "authentic" not in verdict["label"] and verdict["sentence"]
    firefly, chatgpt = results["Firefly_tabby_cat.jpg"], results["ChatGPT_Image.png"]
    assert firefly["verdict"]["strength"] == "strong" and firefly["provenance"]["c2pa_state"] == "trusted"
    assert chatgpt["verdict"]["strength"] == "moderate"  # its signing credential expired
    assert any(not m["active"] for m in chatgpt["provenance"]["c2pa"])  # the declaration sits in an ingredient
    assert results["XCA.jpg"]["provenance"]["c2pa_failures"]["tampering"] == ["assertion.dataHash.mismatch"]
    assert "altered after signing" in results["XCA.jpg"]["verdict"]["sentence"]
    assert results["cloud.jpg"]["provenance"]["remote_manifest_url"].startswith("http")
    assert "no evidence of authenticity" in results["no_manifest.jpg"]["verdict"]["sentence"]


def test_a_declaration_the_pixels_do_not_see_is_a_listed_disagreement(tiny_checkpoint):
    result = run_cli("scan", "-w", tiny_checkpoint, "--threshold", "1.0", *SCAN_OPTIONS, FIXTURES / "Firefly_tabby_cat.jpg")
    assert result.exit_code == 0
    assert "provenance and pixels disagree" in result.stdout and "finds no sign of it" in result.stdout
    _, doc, _ = scan_json(tiny_checkpoint, "--threshold", "1.0", FIXTURES / "Firefly_tabby_cat.jpg")
    assert doc["results"][0]["verdict"]["label"] == "generated"
    assert "no sign" in doc["results"][0]["verdict"]["disagreement"]


def test_no_provenance_lets_the_pixels_decide_alone(tiny_checkpoint):
    _, doc, _ = scan_json(tiny_checkpoint, "--no-provenance", FIXTURES / "Firefly_tabby_cat.jpg",
                          FIXTURES / "automatic1111_cropped.png")
    for record in doc["results"]:
        assert record["provenance"] is None and record["verdict"]["basis"] == "pixels"
        assert "not read" in record["verdict"]["sentence"]


def test_csv_and_table_carry_the_verdict_parts_and_a_provenance_summary(tiny_checkpoint):
    files = [FIXTURES / "Firefly_tabby_cat.jpg", FIXTURES / "novelai1_cropped.png"]
    rows = list(csv.DictReader(io.StringIO(run_cli("scan", "-w", tiny_checkpoint, "--csv", *SCAN_OPTIONS, *files).stdout)))
    assert [(r["verdict"], r["basis"], r["strength"]) for r in rows] == [
        ("generated", "signed-declaration", "strong"), ("generated", "unsigned-metadata", "weak")]
    assert rows[0]["provenance"].startswith("C2PA signed: trainedAlgorithmicMedia") and "NovelAI" in rows[1]["provenance"]
    table = run_cli("scan", "-w", tiny_checkpoint, *SCAN_OPTIONS, *files)
    assert "signed-declaration" in table.stdout and "unsigned-metadata" in table.stdout and "NovelAI" in table.stdout
    assert "2 generated, 0 ai-edited, 0 uncertain, 0 no sign of generation, 0 unreadable" in table.stderr


def _broken_files(folder: Path) -> list[Path]:
    """Files whose metadata is broken in each way the issue names, beside a good image."""
    plain = write_image(folder / "plain.jpg").read_bytes()
    jumbf = (b"JP\x00\x01\x00\x00\x00\x01" + struct.pack(">I", 100_000) + b"jumb"  # a C2PA store cut short
             + struct.pack(">I", 200) + b"jumdc2pa" + b"\x00" * 20)
    (folder / "truncated_jumbf.jpg").write_bytes(plain[:2] + b"\xff\xeb" + struct.pack(">H", len(jumbf) + 2) + jumbf + plain[2:])
    jpeg = (FIXTURES / "C.jpg").read_bytes()
    changed = bytearray(jpeg)
    changed[len(jpeg) // 2] ^= 1  # one bit of the pixels, after signing
    (folder / "wrong_hash.jpg").write_bytes(bytes(changed))
    shutil.copy(FIXTURES / "cloud.jpg", folder / "remote_only.jpg")
    truncated_jpeg(folder / "truncated.jpg")
    write_image(folder / "good.png")
    return sorted(folder.iterdir())


def test_broken_provenance_is_a_note_and_the_scan_goes_on(tiny_checkpoint, tmp_path, no_network):
    files = _broken_files(tmp_path)
    code, doc, stderr = scan_json(tiny_checkpoint, tmp_path)
    results = _by_name(doc)
    assert code == 1 and len(results) == len(files)  # truncated.jpg cannot be decoded; everything else scans
    assert results["truncated.jpg"]["error"] and stderr.count("\n") == 1
    assert results["good.png"]["verdict"]["basis"] == "pixels"
    assert results["wrong_hash.jpg"]["provenance"]["c2pa_failures"]["tampering"] == ["assertion.dataHash.mismatch"]
    assert results["wrong_hash.jpg"]["verdict"]["basis"] == "tampered-manifest"
    truncated = results["truncated_jumbf.jpg"]
    assert truncated["verdict"]["basis"] == "pixels" and truncated["provenance"]["c2pa_state"] == "invalid"
    assert truncated["provenance"]["notes"]
    assert results["remote_only.jpg"]["provenance"]["c2pa_state"] == "remote"


def test_explain_and_report_carry_the_verdict_and_provenance(tiny_checkpoint, tmp_path):
    explain_dir, report_dir = tmp_path / "explain", tmp_path / "report"
    firefly = FIXTURES / "Firefly_tabby_cat.jpg"
    assert run_cli("explain", "-w", tiny_checkpoint, *SCAN_OPTIONS, "-o", explain_dir, firefly).exit_code == 0
    record = json.loads((explain_dir / "Firefly_tabby_cat.explain.json").read_text())
    assert record["prediction"]["verdict"]["basis"] == "signed-declaration"
    assert record["prediction"]["provenance"]["c2pa_state"] == "trusted"
    result = run_cli("scan", "-w", tiny_checkpoint, *SCAN_OPTIONS, "--threshold", "1.0", "--report", report_dir, firefly,
                     FIXTURES / "novelai1_cropped.png")
    assert result.exit_code == 0
    page = (report_dir / "index.html").read_text()
    assert "C2PA signed: trainedAlgorithmicMedia (Adobe Inc.)" in page and "signed-declaration" in page
    assert 'id="disagreements"' in page and "authentic</" not in page


def test_provenance_command_prints_the_evidence(no_network, tmp_path):
    result = run_cli("provenance", "--json", FIXTURES / "ChatGPT_Image.png", FIXTURES / "no_manifest.jpg")
    assert result.exit_code == 0
    chatgpt, stripped = json.loads(result.stdout)
    assert chatgpt["verdict"]["label"] == "generated" and chatgpt["provenance"]["trust_list"]
    assert stripped["verdict"]["label"] == "undetermined"  # no pixels here, and nothing declared
    table = run_cli("provenance", FIXTURES / "Firefly_tabby_cat.jpg")
    assert "Adobe" in table.stdout and "trainedAlgorithmicMedia" in table.stdout
    missing = run_cli("provenance", tmp_path / "missing.jpg")
    assert missing.exit_code == 1 and missing.stderr.count("\n") == 1 and "file unreadable" in missing.stderr

#!/usr/bin/env bash
# The GPU checks, in one run: the test suite, a scan of real and generated images with --device cuda,
# and `aidetect bench` (quick and --full) on the GPU. Run it from the repository root, on a machine with
# a CUDA GPU and aidetect installed (`pip install ".[test]"`):
#
#   bash tests/gpu_check.sh OUT_DIR [SHARED_DIR]     # SHARED_DIR: the shared data (default ../shared)
#
# OUT_DIR receives gpu_figures.json (device, date, test summary, scan and bench figures), the scan's
# results.jsonl and each step's log; the README's GPU figures are copied from gpu_figures.json.
set -uo pipefail
out=${1:?usage: bash tests/gpu_check.sh OUT_DIR [SHARED_DIR]}
shared=$(cd "${2:-../shared}" && pwd) || exit 2
python=${PYTHON:-python3}
device=${DEVICE:-cuda}  # DEVICE=cpu exercises the script itself on a machine without a GPU
mkdir -p "$out"
export AIDETECT_SHARED="$shared" PYTHONUNBUFFERED=1

[ "$device" != cuda ] || "$python" -c 'import torch, sys
sys.exit(0 if torch.cuda.is_available() else "no CUDA device: nothing to check")' || exit 2

"$python" -m pytest -q -p no:cacheprovider > "$out/tests.log" 2>&1
tests_rc=$?

start=$(date +%s%N)
"$python" -m aidetect scan "$shared/data/test" --device "$device" --jsonl --no-progress -o "$out/results.jsonl" \
  2> "$out/scan.log"
scan_rc=$?
scan_ns=$(( $(date +%s%N) - start ))

"$python" -m aidetect bench --device "$device" --weights weights/aidetect-default.pt --json > "$out/bench.json" \
  2> "$out/bench.log"
"$python" -m aidetect bench --device "$device" --full --json > "$out/bench_full.json" 2> "$out/bench_full.log"

"$python" - "$out" "$tests_rc" "$scan_rc" "$scan_ns" <<'EOF'
import datetime, json, pathlib, sys
import torch
out, tests_rc, scan_rc, seconds = pathlib.Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]) / 1e9
lines = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()] if scan_rc in (0, 1) else []
def load(name):
    path = out / name
    return json.loads(path.read_text()) if path.exists() and path.stat().st_size else None
figures = {
    "date": datetime.date.today().isoformat(),
    "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu", "torch": torch.__version__,
    "tests": {"exit_code": tests_rc, "summary": (out / "tests.log").read_text().strip().splitlines()[-1:]},
    "scan": {"exit_code": scan_rc, "images": len(lines), "errors": sum(1 for r in lines if r.get("error")),
             "seconds_with_start_up": round(seconds, 2)},
    "bench": load("bench.json"), "bench_full": load("bench_full.json"),
}
(out / "gpu_figures.json").write_text(json.dumps(figures, indent=2) + "\n")
print(json.dumps({k: figures[k] for k in ("date", "device", "tests", "scan")}, indent=2))
EOF

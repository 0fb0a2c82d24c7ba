#!/usr/bin/env bash
# Run the fuzz targets for a bounded time each: fuzz/run.sh [SECONDS] (default 30).
#   - fuzz_migfile: libFuzzer + ASan/UBSan over csrc/migfile.c (needs clang-14);
#   - fuzz_params:  atheris over Session parameter binding, against the installed
#                   extension (CI runs it in the ASan venv).
# Crashing inputs land in fuzz/crashes/; fixed ones are kept as regression tests
# in tests/test_fuzz_regressions.py.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"
python="${PYTHON:-python3}"
mkdir -p fuzz/build fuzz/crashes fuzz/corpus/migfile fuzz/corpus/params
cp -n migrations/versions/*.sql fuzz/corpus/migfile/ 2>/dev/null || true

clang=$(command -v clang-14 || command -v clang)
"$clang" -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -D_GNU_SOURCE -Icsrc fuzz/fuzz_migfile.c csrc/migfile.c csrc/error.c -lsqlite3 \
    -o fuzz/build/fuzz_migfile
echo "== fuzz_migfile for ${seconds}s"
fuzz/build/fuzz_migfile -max_total_time="$seconds" -max_len=65536 \
    -artifact_prefix=fuzz/crashes/migfile- -print_final_stats=1 fuzz/corpus/migfile \
    fuzz/regressions/migfile

echo "== fuzz_params for ${seconds}s"
"$python" fuzz/fuzz_params.py -max_total_time="$seconds" -artifact_prefix=fuzz/crashes/params- \
    -print_final_stats=1 fuzz/corpus/params fuzz/regressions/params

#!/usr/bin/env bash
# Run the fuzz targets for a bounded time each: fuzz/run.sh [SECONDS] (default 30).
#   fuzz_migfile  libFuzzer + ASan/UBSan over csrc/engine/migfile.c (the migration-file
#                 parser and chain builder), seeded with the shipped migrations.
#   fuzz_params   atheris over Session parameter conversion and binding, against
#                 the extension built with clang, ASan and coverage
#                 (-fsanitize=fuzzer-no-link) in its own venv (fuzz/build/venv).
# Needs clang-14 (or clang) and libclang-rt-14-dev. Crashing inputs are written
# to fuzz/crashes/ and make this script fail; once fixed, keep them in
# fuzz/regressions/ (replayed by tests/test_fuzz_regressions.py).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"
clang=$(command -v clang-14 || command -v clang || true)
if [ -z "$clang" ]; then
    echo "fuzz/run.sh: clang is not installed (needs clang-14 or clang, with libFuzzer and" \
         "the sanitizer runtimes); on Debian/Ubuntu: sudo apt-get install clang-14" \
         "libclang-rt-14-dev" >&2
    exit 1
fi
mkdir -p fuzz/build fuzz/crashes fuzz/corpus/migfile fuzz/corpus/params
cp -n migrations/versions/*.sql fuzz/corpus/migfile/ 2>/dev/null || true

"$clang" -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -D_GNU_SOURCE -Icsrc/engine fuzz/fuzz_migfile.c csrc/engine/migfile.c csrc/engine/error.c \
    csrc/engine/alloc.c -lsqlite3 \
    -o fuzz/build/fuzz_migfile
echo "== fuzz_migfile for ${seconds}s"
fuzz/build/fuzz_migfile -max_total_time="$seconds" -max_len=65536 -print_final_stats=1 \
    -artifact_prefix=fuzz/crashes/migfile- fuzz/corpus/migfile fuzz/regressions/migfile

venv=fuzz/build/venv
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q atheris==3.0.0
fi
rm -rf build
CC="$clang" LDSHARED="$clang -shared" PROMPTLAB_SANITIZE=address,fuzzer-no-link \
    "$venv/bin/pip" install -q --force-reinstall --no-deps .
rm -rf build
runtime=$("$venv/bin/python" -c "import atheris, os; print(os.path.join(atheris.path(), 'asan_with_fuzzer.so'))")
echo "== fuzz_params for ${seconds}s"
(cd /tmp && LD_PRELOAD="$runtime" ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1 \
    "$OLDPWD/$venv/bin/python" "$OLDPWD/fuzz/fuzz_params.py" -max_total_time="$seconds" \
    -print_final_stats=1 -artifact_prefix="$OLDPWD/fuzz/crashes/params-" \
    "$OLDPWD/fuzz/corpus/params" "$OLDPWD/fuzz/regressions/params")

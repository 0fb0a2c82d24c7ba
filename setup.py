"""Build of promptlab._core, the C core, against the system's SQLite, libcrypt and libpq.

Set PROMPTLAB_SANITIZE=address,undefined (or thread) to build with sanitizers
and assertions (lock order, locks held, no GIL in the engine: csrc/engine/lockorder.h),
and PROMPTLAB_DEBUG=1 for -O0 -g with the same assertions.
"""

import glob
import os

from setuptools import Extension, find_packages, setup

extra_compile = ["-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Wno-unused-parameter",
                 "-Wno-missing-field-initializers", "-Wno-cast-function-type",
                 # Messages are cut to their buffers on purpose.
                 "-Wno-format-truncation"]
extra_link = []
undef = []
macros = []
sanitize = os.environ.get("PROMPTLAB_SANITIZE", "").strip()
if sanitize:
    flags = [f"-fsanitize={sanitize}", "-fno-omit-frame-pointer", "-g", "-O1"]
    if "undefined" in sanitize:
        flags.append("-fno-sanitize-recover=undefined")
    extra_compile += flags
    extra_link += flags
    undef.append("NDEBUG")
    macros.append(("PL_SANITIZE", f'"{sanitize}"'))  # _core._sanitize, for tests
if os.environ.get("PROMPTLAB_DEBUG"):
    extra_compile += ["-O0", "-g"]
    if "NDEBUG" not in undef:
        undef.append("NDEBUG")



def libpq_include_dir():
    """Where libpq-fe.h is (Debian: libpq-dev), or a clear stop."""
    import subprocess

    candidates = []
    try:
        candidates.append(subprocess.run(["pg_config", "--includedir"], capture_output=True,
                                         text=True, check=True).stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        pass
    candidates += ["/usr/include/postgresql", "/usr/local/include", "/usr/include"]
    for folder in candidates:
        if folder and os.path.exists(os.path.join(folder, "libpq-fe.h")):
            return folder
    raise SystemExit("PromptLab's C core links libpq (PostgreSQL's client library), whose "
                     "header libpq-fe.h was not found: install libpq-dev (Debian, Ubuntu) "
                     "or libpq-devel (Fedora), then retry.")


LAYERS = ["csrc/engine", "csrc/engine/postgres", "csrc/python"]
core = Extension(
    "promptlab._core",
    # csrc/engine never includes Python.h (.ci/run checks it); csrc/engine/postgres is
    # the engine's PostgreSQL backend (libpq); csrc/python is the binding.
    sources=sorted(c for layer in LAYERS for c in glob.glob(f"{layer}/*.c")),
    depends=sorted(h for layer in LAYERS for h in glob.glob(f"{layer}/*.h")),
    include_dirs=LAYERS + [libpq_include_dir()],
    # libpq is not linked: csrc/engine/postgres/pq.c loads it on first use.
    libraries=["sqlite3", "crypt", "dl", "pthread"],
    extra_compile_args=extra_compile,
    extra_link_args=extra_link,
    undef_macros=undef,
    define_macros=macros,
)

setup(
    ext_modules=[core],
    # The data folders (studio/static, migrations/versions) are listed as packages of
    # their own: setuptools warns about a data folder Python could import but
    # `packages` leaves out.
    packages=find_packages(include=["promptlab", "promptlab.*"])
    + ["promptlab.studio.static", "promptlab.migrations", "promptlab.migrations.versions"],
    package_dir={"promptlab.migrations": "migrations"},
    package_data={
        "promptlab": ["py.typed", "_core.pyi"],
        "promptlab.studio.static": ["*"],
        "promptlab.migrations.versions": ["*.sql"],
        "promptlab.demo": ["*.jsonl"],
    },
)

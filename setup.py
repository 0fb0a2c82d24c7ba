"""Build of promptlab._core, the C core, against the system's SQLite and libcrypt.

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

core = Extension(
    "promptlab._core",
    # csrc/engine never includes Python.h (.ci/run checks it); csrc/python is the binding.
    sources=sorted(glob.glob("csrc/engine/*.c") + glob.glob("csrc/python/*.c")),
    depends=sorted(glob.glob("csrc/engine/*.h") + glob.glob("csrc/python/*.h")),
    include_dirs=["csrc/engine", "csrc/python"],
    libraries=["sqlite3", "crypt"],
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

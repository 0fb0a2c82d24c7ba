"""atheris target for the parameter conversion and binding path of Session.

Random parameter structures (sequences, mappings, generators, nested and
unsupported values, huge integers, surrogates, large texts) are passed to
execute() and executemany() on real statements. Typed errors are fine; a crash,
a sanitizer report or another exception type is a bug. Run: fuzz/run.sh.
"""

import datetime
import os
import sys
import tempfile

import atheris

with atheris.instrument_imports():
    from promptlab.sqlite import DatabaseError, get_session
    from promptlab.sqlite.database_manager import db_manager

STATEMENTS = [
    "SELECT ?",
    "SELECT ?, ?, ?",
    "SELECT :a, :b",
    "SELECT @x, $y, :z",
    "INSERT INTO assets (asset_name, asset_version, asset_binary) VALUES (?, ?, ?)",
    "INSERT INTO assets (asset_name, asset_version, asset_binary) VALUES (:a, :b, :c)",
    "UPDATE assets SET asset_binary = ? WHERE asset_name = ?",
    "SELECT asset_name FROM assets WHERE asset_version > ? LIMIT 3",
]
EXPECTED = (DatabaseError, TypeError, ValueError, OverflowError, UnicodeError)

PATH = os.path.join(tempfile.mkdtemp(prefix="promptlab-fuzz-"), "fuzz.db")
db_manager.initialize_database(PATH)
SESSION = get_session(PATH)


def value(fdp, depth=0):
    kind = fdp.ConsumeIntInRange(0, 13)
    if kind == 0:
        return None
    if kind == 1:
        return fdp.ConsumeInt(fdp.ConsumeIntInRange(1, 20))
    if kind == 2:
        return fdp.ConsumeRegularFloat()
    if kind == 3:
        return fdp.ConsumeUnicode(fdp.ConsumeIntInRange(0, 64))
    if kind == 4:
        return fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 4096))
    if kind == 5:
        return fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 256))
    if kind == 6:
        return bytearray(fdp.ConsumeBytes(8))
    if kind == 7:
        return memoryview(fdp.ConsumeBytes(8))
    if kind == 8:
        return fdp.ConsumeBool()
    if kind == 9:
        return datetime.datetime(2025, 1, 1) + datetime.timedelta(seconds=fdp.ConsumeInt(4))
    if kind == 10 and depth < 2:
        return [value(fdp, depth + 1) for _ in range(fdp.ConsumeIntInRange(0, 3))]
    if kind == 11 and depth < 2:
        return {fdp.ConsumeUnicode(3): value(fdp, depth + 1)}
    if kind == 12:
        return object()
    return 2 ** fdp.ConsumeIntInRange(60, 70)


def params(fdp):
    shape = fdp.ConsumeIntInRange(0, 4)
    if shape == 0:
        return None
    if shape == 1:
        return tuple(value(fdp) for _ in range(fdp.ConsumeIntInRange(0, 4)))
    if shape == 2:
        keys = ["a", "b", "c", "x", "y", "z", fdp.ConsumeUnicode(2)]
        return {keys[fdp.ConsumeIntInRange(0, 6)]: value(fdp)
                for _ in range(fdp.ConsumeIntInRange(0, 5))}
    if shape == 3:
        return [value(fdp) for _ in range(fdp.ConsumeIntInRange(0, 4))]
    return value(fdp)


def TestOneInput(data):
    fdp = atheris.FuzzedDataProvider(data)
    sql = STATEMENTS[fdp.ConsumeIntInRange(0, len(STATEMENTS) - 1)]
    try:
        if fdp.ConsumeBool():
            SESSION.execute(sql, params(fdp))
        else:
            rows = [params(fdp) for _ in range(fdp.ConsumeIntInRange(0, 5))]
            SESSION.executemany(sql, iter(rows) if fdp.ConsumeBool() else rows)
        if fdp.ConsumeIntInRange(0, 7) == 0:
            SESSION.rollback()
    except EXPECTED:
        pass


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()

/* inspect.h: read-only module functions over migrations and database files:
 * the migration chain, a database's revision, history and recognised layout,
 * and schemas (of a database, or of what the migrations produce), for
 * `promptlab db status` and `promptlab db revision`. */
#ifndef PL_INSPECT_H
#define PL_INSPECT_H

#include "module.h"
#include "migfile.h"

extern PyMethodDef pl_inspect_methods[];

/* The migration chain in `directory` (NULL or "": the folder in use, i.e.
 * $PROMPTLAB_MIGRATIONS_DIR or the shipped one), read from disk now, so that
 * an edited file is seen. Free it with pl_chain_free. NULL with `err` set.
 * No GIL needed (call it with the GIL released). */
pl_chain *pl_inspect_load_chain(const char *directory, pl_err *err);

/* Convert an optional folder argument (None, str, bytes, os.PathLike) into a
 * new bytes object in *out (NULL for None). Returns 0, or -1 with an exception. */
int pl_inspect_dir_arg(PyObject *obj, PyObject **out);

#endif

/* inspect.h: read-only module functions over migrations and database files:
 * the migration chain in use, and a database's revision, for `db status`. */
#ifndef PL_INSPECT_H
#define PL_INSPECT_H

#include "module.h"

extern PyMethodDef pl_inspect_methods[];

#endif

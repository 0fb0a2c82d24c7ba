/* migcmd.h: the module functions behind `promptlab db migrate|downgrade`:
 * moving one database file along the migration chain, with an optional
 * online backup first, or printing the SQL that would run. */
#ifndef PL_MIGCMD_H
#define PL_MIGCMD_H

#include "module.h"

extern PyMethodDef pl_migcmd_methods[];

#endif

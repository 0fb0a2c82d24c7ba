/* postgres.h: the binding's PostgreSQL functions (issue 15). Until sessions
 * run on PostgreSQL, one private function: _core._postgres_probe(url). */
#ifndef PL_POSTGRES_H
#define PL_POSTGRES_H

#include "module.h"

extern PyMethodDef pl_postgres_methods[];

#endif

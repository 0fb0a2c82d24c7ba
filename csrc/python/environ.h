/* environ.h: reading the PROMPTLAB_* variables from os.environ (binding).
 *
 * With the GIL held, through os.environ, so that a write to os.environ in
 * another thread can never race with the read (see settings.h for why the
 * engine never calls getenv()). Called once per public call that starts
 * engine work: initialization, migration commands, inspection. */
#ifndef PL_ENVIRON_H
#define PL_ENVIRON_H

#include "module.h"

/* At import, once st->environ is set: the names as bytes, os.environ._data
 * when os.environ has that dict (environ.c), then pl_environ_refresh.
 * Requires the GIL. Returns 0, or -1 with an exception set. */
int pl_environ_setup(pl_state *st);

/* Copy the PROMPTLAB_* variables of pl_settings_text from os.environ into the engine's settings.
 * Requires the GIL. Returns 0, or -1 with an exception set. */
int pl_environ_refresh(pl_state *st);

#endif

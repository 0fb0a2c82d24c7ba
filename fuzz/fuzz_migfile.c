/* fuzz_migfile.c: libFuzzer target for the migration-file parser and chain builder.
 *
 * The input is split on lines holding only "====" into up to 8 files; each is
 * parsed, and the ones that parse are ordered into a chain. Any crash,
 * sanitizer report or leak is a bug. Build and run: fuzz/run.sh.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migfile.h"

#define MAX_FILES 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pl_migration *items = calloc(MAX_FILES, sizeof *items);
    const char *p = (const char *)data, *end = p + size;
    int n = 0, file = 0;
    pl_err err;

    if (items == NULL)
        return 0;
    while (p <= end && file < MAX_FILES) {
        const char *sep = NULL;
        for (const char *q = p; q + 6 <= end; q++) {
            if (memcmp(q, "\n====\n", 6) == 0) {
                sep = q;
                break;
            }
        }
        const char *stop = sep ? sep : end;
        char name[32];
        snprintf(name, sizeof name, "%04d_fuzz.sql", file++);
        if (pl_migration_parse(p, (size_t)(stop - p), name, &items[n], &err) == 0)
            n++;
        if (sep == NULL)
            break;
        p = sep + 6;
    }
    pl_chain *chain = pl_chain_build("fuzz", items, n, &err); /* takes items */
    if (chain != NULL) {
        for (int i = 0; i < chain->count; i++)
            (void)pl_chain_index(chain, chain->items[i].revision);
        pl_chain_free(chain);
    }
    return 0;
}

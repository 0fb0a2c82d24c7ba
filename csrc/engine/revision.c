/* revision.c: checking a database's revision against the chain. */
#include "revision.h"

int pl_migrate_check(const pl_db_version *v, const pl_chain *chain, const char *path, pl_err *err)
{
    const char *head = chain->count > 0 ? chain->items[chain->count - 1].revision : "base";

    if (v->version_rows > 1)
        return pl_err_set(err, PL_E_MIGRATION, path,
                          "alembic_version holds %d rows (several heads); PromptLab keeps one "
                          "linear history. The file was left unchanged.",
                          v->version_rows);
    if (v->revision_too_long || pl_chain_index(chain, v->revision) == -2)
        return pl_err_set(err, PL_E_UNKNOWN_REVISION, path,
                          "the database is at revision %s, which this version of PromptLab "
                          "does not know (its newest is %s): it was written by a newer "
                          "PromptLab. Upgrade PromptLab to open it; the file was left "
                          "unchanged.",
                          v->revision, head);
    return 0;
}

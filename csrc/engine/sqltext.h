/* sqltext.h: the one scanner for SQL trivia (white space, comments).
 *
 * Inline, so that files linked without the connection code (migfile.c in the
 * parser's fuzz target) share it: conn.c (pl_sql_first_keyword), session.c
 * (one statement per execute) and migfile.c (pl_migration_reversible) all
 * read SQL text through it.
 */
#ifndef PL_SQLTEXT_H
#define PL_SQLTEXT_H

#include <ctype.h>

/* The first byte of sql[p:end] that is not white space (isspace), a "--" or
 * block comment, or (when `semicolons` is set) a ';'; `end` when there is
 * none. A "--" comment without a line break and an unterminated block comment
 * run to `end`. */
static inline const char *pl_sql_skip_trivia(const char *p, const char *end, int semicolons)
{
    while (p < end) {
        if (isspace((unsigned char)*p) || (semicolons && *p == ';')) {
            p++;
        } else if (end - p >= 2 && p[0] == '-' && p[1] == '-') {
            while (p < end && *p != '\n')
                p++;
        } else if (end - p >= 2 && p[0] == '/' && p[1] == '*') {
            const char *q = p + 2;
            while (q + 1 < end && !(q[0] == '*' && q[1] == '/'))
                q++;
            p = q + 1 < end ? q + 2 : end; /* an unterminated comment runs to the end */
        } else {
            break;
        }
    }
    return p;
}

#endif

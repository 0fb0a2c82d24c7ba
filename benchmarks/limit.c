/* limit.c: the raw SQLite limit for PromptLab's benchmark workloads.
 *
 * One connection set up as promptlab._core sets up its own (csrc/engine/conn.c):
 * journal_mode=WAL, synchronous=FULL, foreign_keys=ON, a 10 s busy timeout.
 * Each mode does the database work of one workload with the plain C API:
 *
 *   limit version
 *   limit trace  DB ROWS EXPERIMENT_ID      one experiment and ROWS results, one prepared
 *                                           statement, one transaction
 *   limit query  DB REPEATS [SQL...]        the SQL statements (default: the original's
 *                                           SELECT_EXPERIMENTS_QUERY) in one read
 *                                           transaction, every column of every row read
 *                                           (one untimed warm-up)
 *   limit lookup DB CALLS REPEATS {NAME SQL NPARAMS PARAM...}...
 *                                           point lookups, each one prepared one-row
 *                                           SELECT, bind/step/reset per call; a PARAM made
 *                                           of digits is bound as an integer; the seconds
 *                                           per call are reported under each NAME
 *   limit writer DB TRANSACTIONS ROWS INDEX one of the concurrent writers: prints READY,
 *                                           waits for a line on stdin, then commits
 *                                           TRANSACTIONS experiments of ROWS results each
 *
 * The rows are the ones benchmarks/worker.py builds (same strings, same numbers),
 * generated before the clock starts. Output: one line "@@RESULT {json}". trace and
 * query also report "peak_bytes": the extra peak RSS of the insert (of the warm-up
 * read), VmHWM after it minus VmRSS before it, the peak reset first (clear_refs).
 * Built by the runner: gcc -O2 -o benchmarks/build/limit benchmarks/limit.c -lsqlite3
 */
#define _POSIX_C_SOURCE 200809L
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOREM                                                                                  \
    "The quick brown fox jumps over the lazy dog. The quick brown fox jumps over the lazy "  \
    "dog. The quick brown fox jumps over the lazy dog. The quick brown fox jumps over the "  \
    "lazy dog."
#define CREATED_AT "2026-01-01T00:00:00.000000"
#define MODEL_JSON                                                                             \
    "{\"completion_model_config\": {\"name\": \"ollama/llama3.2\", \"type\": \"ollama\", "    \
    "\"api_key\": null, \"api_version\": null, \"endpoint\": null, "                          \
    "\"max_concurrent_tasks\": 5, \"model\": null}, \"embedding_model_config\": null}"
#define ASSET_JSON                                                                             \
    "{\"prompt_template_name\": \"bench-pt\", \"prompt_template_version\": 0, "               \
    "\"dataset_name\": \"bench-ds\", \"dataset_version\": 0}"

static const char *INSERT_EXPERIMENT =
    "INSERT INTO experiments (experiment_id, model, asset, status, created_at, user_id) "
    "VALUES (?, ?, ?, 1, ?, ?)";
static const char *INSERT_RESULT =
    "INSERT INTO experiment_result (experiment_id, dataset_record_id, completion, "
    "prompt_tokens, completion_tokens, latency_ms, evaluation, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)";

/* SQLQuery.SELECT_EXPERIMENTS_QUERY of PromptLab 0.1.11 (promptlab/sqlite/sql.py). */
static const char *SELECT_EXPERIMENTS =
    "SELECT e.experiment_id, "
    "json_extract(model, '$.completion_model_config.name') AS completion_model, "
    "json_extract(model, '$.embedding_model_config.name') AS embedding_model, "
    "json_extract(asset, '$.prompt_template_name') AS prompt_template_name, "
    "json_extract(asset, '$.prompt_template_version') AS prompt_template_version, "
    "json_extract(asset, '$.dataset_name') AS dataset_name, "
    "json_extract(asset, '$.dataset_version') AS dataset_version, "
    "er.dataset_record_id as dataset_record_id, er.completion as completion, "
    "er.prompt_tokens as prompt_tokens, er.completion_tokens as completion_tokens, "
    "er.latency_ms as latency_ms, er.evaluation as evaluation, a.asset_binary, u.username, "
    "e.created_at "
    "FROM experiments e JOIN experiment_result er on e.experiment_id = er.experiment_id "
    "LEFT JOIN assets a ON a.asset_name = prompt_template_name "
    "AND a.asset_version = prompt_template_version "
    "LEFT JOIN users u ON e.user_id = u.id "
    "ORDER BY e.created_at DESC";


typedef struct {
    char record_id[32];
    char completion[256];
    char evaluation[64];
    int prompt_tokens, completion_tokens;
    double latency_ms;
} row_t;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A field of /proc/self/status in bytes ("VmRSS:", "VmHWM:"), or 0. */
static long long status_bytes(const char *field)
{
    char line[256];
    long long kib = 0;
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, field, strlen(field)) == 0) {
            kib = atoll(line + strlen(field));
            break;
        }
    fclose(f);
    return kib * 1024;
}

/* Resets VmHWM to the current RSS (Linux 4.0+) and returns that RSS in bytes. */
static long long peak_reset(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (f != NULL) {
        fputs("5", f);
        fclose(f);
    }
    return status_bytes("VmRSS:");
}

static void die(sqlite3 *db, const char *what)
{
    fprintf(stderr, "limit: %s: %s\n", what, db ? sqlite3_errmsg(db) : "error");
    exit(1);
}

static sqlite3 *open_db(const char *path)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
        die(db, "open");
    sqlite3_busy_timeout(db, 10000);
    if (sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;",
                     NULL, NULL, NULL) != SQLITE_OK)
        die(db, "pragmas");
    return db;
}

/* The same rows as worker.make_rows(): record i of an experiment. */
static row_t *make_rows(int n)
{
    row_t *rows = calloc((size_t)(n > 0 ? n : 1), sizeof *rows);
    if (rows == NULL) {
        fprintf(stderr, "limit: out of memory\n");
        exit(1);
    }
    for (int i = 0; i < n; i++) {
        snprintf(rows[i].record_id, sizeof rows[i].record_id, "rec-%06d", i);
        snprintf(rows[i].completion, sizeof rows[i].completion, "Completion %d: %s", i, LOREM);
        snprintf(rows[i].evaluation, sizeof rows[i].evaluation,
                 "[{\"metric\": \"exact_match\", \"result\": %d}]", i % 2);
        rows[i].prompt_tokens = 100 + i % 50;
        rows[i].completion_tokens = 20 + i % 30;
        rows[i].latency_ms = 100.0 + i % 400;
    }
    return rows;
}

static sqlite3_int64 admin_id(sqlite3 *db)
{
    sqlite3_stmt *st;
    sqlite3_int64 id = 0;
    if (sqlite3_prepare_v2(db, "SELECT id FROM users WHERE username = 'admin'", -1, &st, NULL) != SQLITE_OK)
        die(db, "prepare admin lookup");
    if (sqlite3_step(st) == SQLITE_ROW)
        id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return id;
}

/* One transaction: the experiment row and its results. Returns SQLITE_OK or the error. */
static int insert_experiment(sqlite3 *db, const char *exp_id, const row_t *rows, int n, sqlite3_int64 uid)
{
    sqlite3_stmt *exp = NULL, *res = NULL;
    int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_prepare_v2(db, INSERT_EXPERIMENT, -1, &exp, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(exp, 1, exp_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(exp, 2, MODEL_JSON, -1, SQLITE_STATIC);
        sqlite3_bind_text(exp, 3, ASSET_JSON, -1, SQLITE_STATIC);
        sqlite3_bind_text(exp, 4, CREATED_AT, -1, SQLITE_STATIC);
        sqlite3_bind_int64(exp, 5, uid);
        rc = sqlite3_step(exp) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(db);
    }
    sqlite3_finalize(exp);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db, INSERT_RESULT, -1, &res, NULL);
    for (int i = 0; rc == SQLITE_OK && i < n; i++) {
        sqlite3_bind_text(res, 1, exp_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(res, 2, rows[i].record_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(res, 3, rows[i].completion, -1, SQLITE_STATIC);
        sqlite3_bind_int(res, 4, rows[i].prompt_tokens);
        sqlite3_bind_int(res, 5, rows[i].completion_tokens);
        sqlite3_bind_double(res, 6, rows[i].latency_ms);
        sqlite3_bind_text(res, 7, rows[i].evaluation, -1, SQLITE_STATIC);
        sqlite3_bind_text(res, 8, CREATED_AT, -1, SQLITE_STATIC);
        rc = sqlite3_step(res) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(db);
        sqlite3_reset(res);
    }
    sqlite3_finalize(res);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static int mode_trace(const char *path, int n, const char *exp_id)
{
    sqlite3 *db = open_db(path);
    row_t *rows = make_rows(n);
    sqlite3_int64 uid = admin_id(db);
    long long rss = peak_reset();
    double t0 = now();
    int rc = insert_experiment(db, exp_id, rows, n, uid);
    double t1 = now();
    long long peak = status_bytes("VmHWM:") - rss;
    if (rc != SQLITE_OK)
        die(db, "trace insert");
    printf("@@RESULT {\"seconds\": %.9f, \"rows\": %d, \"peak_bytes\": %lld}\n", t1 - t0, n,
           peak);
    free(rows);
    sqlite3_close(db);
    return 0;
}

static long long value_bytes; /* the text and blob bytes read_all read, in all */

/* Reads every column of every row, as a client building result rows must. */
static long long read_all(sqlite3_stmt *st, unsigned long long *sink)
{
    long long count = 0;
    int ncol = sqlite3_column_count(st);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        for (int c = 0; c < ncol; c++) {
            switch (sqlite3_column_type(st, c)) {
            case SQLITE_INTEGER:
                *sink += (unsigned long long)sqlite3_column_int64(st, c);
                break;
            case SQLITE_FLOAT:
                *sink += (unsigned long long)sqlite3_column_double(st, c);
                break;
            case SQLITE_TEXT: {
                const unsigned char *t = sqlite3_column_text(st, c);
                int len = sqlite3_column_bytes(st, c);
                *sink += (unsigned long long)len + (t ? t[0] : 0);
                value_bytes += len;
                break;
            }
            case SQLITE_BLOB: {
                const void *b = sqlite3_column_blob(st, c);
                int len = sqlite3_column_bytes(st, c);
                *sink += (unsigned long long)len + (b != NULL);
                value_bytes += len;
                break;
            }
            default:
                break;
            }
        }
        count++;
    }
    if (rc != SQLITE_DONE)
        return -1;
    return count;
}

/* Each repeat reads every statement in `sqls`, in order, in one read
 * transaction (as ours reads its two get_experiments queries). */
static int mode_query(const char *path, int repeats, int nsql, char **sqls)
{
    sqlite3 *db = open_db(path);
    sqlite3_stmt *st[8];
    unsigned long long sink = 0;
    long long count = 0, rss = 0, peak = 0, bytes = 0;
    if (nsql > 8)
        nsql = 8;
    for (int i = 0; i < nsql; i++)
        if (sqlite3_prepare_v2(db, sqls[i], -1, &st[i], NULL) != SQLITE_OK)
            die(db, "prepare query");
    printf("@@RESULT {\"seconds\": [");
    for (int r = -1; r < repeats; r++) { /* r = -1: warm-up, untimed, peak RSS measured */
        if (r == -1)
            rss = peak_reset();
        else if (r == 0) {
            peak = status_bytes("VmHWM:") - rss;
            bytes = value_bytes;
        }
        double t0 = now();
        if (nsql > 1 && sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
            die(db, "begin");
        for (int i = 0; i < nsql; i++) {
            count = read_all(st[i], &sink);
            sqlite3_reset(st[i]);
            if (count < 0)
                die(db, "query");
        }
        if (nsql > 1 && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
            die(db, "commit");
        double t1 = now();
        if (r >= 0)
            printf("%s%.9f", r ? ", " : "", t1 - t0);
    }
    if (repeats <= 0) {
        peak = status_bytes("VmHWM:") - rss;
        bytes = value_bytes;
    }
    printf("], \"rows\": %lld, \"peak_bytes\": %lld, \"value_bytes\": %lld, \"sink\": %llu}\n",
           count, peak, bytes, sink % 1000);
    for (int i = 0; i < nsql; i++)
        sqlite3_finalize(st[i]);
    sqlite3_close(db);
    return 0;
}

/* Binds PARAM i as an integer when it is made of digits, else as text. */
static void bind_params(sqlite3_stmt *st, int nparams, char **params)
{
    for (int p = 0; p < nparams; p++) {
        const char *v = params[p];
        size_t digits = strspn(v, "0123456789");
        if (digits > 0 && v[digits] == '\0')
            sqlite3_bind_int64(st, p + 1, atoll(v));
        else
            sqlite3_bind_text(st, p + 1, v, -1, SQLITE_STATIC);
    }
}

/* `calls` times per timed run: bind the params, step the one row, reset; for each
 * group NAME SQL NPARAMS PARAM... of `args`, in turn. */
static int mode_lookup(const char *path, int calls, int repeats, int argc, char **args)
{
    sqlite3 *db = open_db(path);
    unsigned long long sink = 0;
    printf("@@RESULT {");
    for (int g = 0; g + 3 <= argc;) {
        const char *name = args[g], *sql = args[g + 1];
        int nparams = atoi(args[g + 2]);
        char **params = args + g + 3;
        sqlite3_stmt *st;
        if (nparams < 0 || g + 3 + nparams > argc) {
            fprintf(stderr, "limit: lookup %s: %d parameters missing\n", name, nparams);
            exit(2);
        }
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
            die(db, "prepare lookup");
        printf("%s\"%s\": [", g ? ", " : "", name);
        for (int r = 0; r < repeats; r++) {
            double t0 = now();
            for (int i = 0; i < calls; i++) {
                bind_params(st, nparams, params);
                if (read_all(st, &sink) != 1)
                    die(db, "row not found");
                sqlite3_reset(st);
            }
            double t1 = now();
            printf("%s%.12f", r ? ", " : "", (t1 - t0) / calls);
        }
        printf("]");
        sqlite3_finalize(st);
        g += 3 + nparams;
    }
    printf(", \"sink\": %llu}\n", sink % 1000);
    sqlite3_close(db);
    return 0;
}

static int mode_writer(const char *path, int transactions, int n, int index)
{
    sqlite3 *db = open_db(path);
    row_t *rows = make_rows(n);
    sqlite3_int64 uid = admin_id(db);
    char line[64], exp_id[64];
    int ok = 0, failed = 0;
    double t0, t1;

    printf("READY\n");
    fflush(stdout);
    if (fgets(line, sizeof line, stdin) == NULL)
        return 1;
    t0 = now();
    for (int k = 0; k < transactions; k++) {
        snprintf(exp_id, sizeof exp_id, "writer-%d-%d", index, k);
        if (insert_experiment(db, exp_id, rows, n, uid) == SQLITE_OK)
            ok++;
        else
            failed++;
    }
    t1 = now();
    printf("@@RESULT {\"start\": %.9f, \"end\": %.9f, \"ok\": %d, \"failed\": %d, \"rows\": %d}\n",
           t0, t1, ok, failed, ok * n);
    free(rows);
    sqlite3_close(db);
    return failed ? 3 : 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "version") == 0) {
        printf("@@RESULT {\"sqlite_version\": \"%s\"}\n", sqlite3_libversion());
        return 0;
    }
    if (argc == 5 && strcmp(argv[1], "trace") == 0)
        return mode_trace(argv[2], atoi(argv[3]), argv[4]);
    if (argc >= 4 && argc <= 12 && strcmp(argv[1], "query") == 0) {
        char *original[] = {(char *)SELECT_EXPERIMENTS};
        return argc == 4 ? mode_query(argv[2], atoi(argv[3]), 1, original)
                         : mode_query(argv[2], atoi(argv[3]), argc - 4, argv + 4);
    }
    if (argc >= 8 && strcmp(argv[1], "lookup") == 0)
        return mode_lookup(argv[2], atoi(argv[3]), atoi(argv[4]), argc - 5, argv + 5);
    if (argc == 6 && strcmp(argv[1], "writer") == 0)
        return mode_writer(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]));
    fprintf(stderr, "usage: limit version | trace DB ROWS EXP_ID | query DB REPEATS [SQL...] | "
                    "lookup DB CALLS REPEATS {NAME SQL NPARAMS PARAM...}... | "
                    "writer DB TRANSACTIONS ROWS INDEX\n");
    return 2;
}

/* tally.c: TraceTally, the aggregates trace_experiment stores beside an
 * experiment's results (promptlab/store/summaries.py: record count, latency and
 * token averages and sums, the average and count of each metric of the
 * evaluations), computed from the records' Python values while executemany
 * walks them, instead of by SQL that parses every stored evaluation again.
 *
 * A TraceTally wraps the records: iterating it yields each dict record as the
 * tuple of its values for the INSERT's parameter names (what the binder would
 * look up by name: it binds a tuple by position with no lookups, so each record
 * is unpacked once, here, instead of twice), and tallies each one as it goes by
 * (while the binder is about to read it, so it is in the cache). A record that
 * is not a dict or lacks a name is yielded as it is, and the binder reports it
 * as before. summary() gives the aggregates, or None when some record
 * had a shape this file does not reproduce exactly (the caller then computes
 * them in SQL over the stored rows, as before). Exactly means: the values are
 * those SQLite's AVG, SUM and COUNT return over the rows as stored (values
 * bound by params.c, evaluations as the JSON text json.dumps writes and
 * SQLite's JSON functions read):
 * - AVG: SQLite before 3.43 adds the values as doubles in row order (tested
 *   against the linked SQLite in tests/test_summaries.py); 3.43 and later add
 *   them with compensation, which agrees with that only when no addition
 *   rounded, so there a rounded sum means None;
 * - SUM of integers: an int64 sum; an overflow (an SQL error) means None;
 * - a float is read back from its repr() text, which is the float (SQLite's
 *   parser and Python's agree on those texts); a float written as other text
 *   in a JSON evaluation means None;
 * - metric names: ASCII text without control characters or escapes; any other
 *   name, a nested object where a metric or value is looked for, a duplicate
 *   "metric" or "result" key, non-JSON text, a record that is not a dict or
 *   names another experiment: None.
 * Cost: the record's five values are first looked for where they were in the
 * previous record (records built by one dict literal share their layout), and
 * a JSON text seen among the last few adds again what it added (a metric that
 * is 0 or 1 gives two texts) instead of being scanned again. Nothing here
 * raises but MemoryError: a lookup that fails is a form not followed. */
#include "tally.h"
#include "compat.h"
#include "pyutil.h"

#include <math.h>
#include <sqlite3.h>
#include <stdint.h>
#include <string.h>

/* Sum of doubles in order, as SQLite's AVG, noting whether any addition rounded. */
typedef struct {
    double sum;
    Py_ssize_t count;
    int rounded;
} acc;

typedef struct {
    char *name; /* UTF-8 (ASCII), not NUL-terminated */
    Py_ssize_t len;
    PyObject *seen; /* a str object with this name (strong): skips the memcmp */
    acc a;
} metric;

/* An evaluation text seen recently and what it added: texts repeat (a metric
 * that is 0 or 1 gives two texts), and adding again what a text added is what
 * parsing it again would do. */
#define MEMO_TEXTS 4
#define MEMO_BYTES 256
#define MEMO_ITEMS 8

typedef struct {
    Py_ssize_t metric; /* index in metrics */
    double value;
} contribution;

typedef struct {
    char text[MEMO_BYTES];
    Py_ssize_t len; /* 0: empty slot */
    int n;
    contribution items[MEMO_ITEMS];
} memo;

typedef struct {
    PyObject_HEAD PyObject *iter;
    PyObject *experiment_id;
    PyObject *names;   /* the statement's parameter names (interned str), in order */
    Py_ssize_t *hints; /* per name: where it was in the previous record */
    int agg[5];        /* the positions in names of the five values tallied */
    PyObject *k_metric, *k_result;
    int exact;          /* 0 once a record is out of this file's reach */
    int rounding_known; /* SQLite adds doubles plainly (before 3.43) */
    Py_ssize_t records;
    acc latency, prompt, completion;
    int64_t prompt_sum, completion_sum;
    metric *metrics;
    Py_ssize_t nmetrics, capmetrics;
    char number[64]; /* a float token, NUL-terminated, for parsing */
    memo memos[MEMO_TEXTS];
    int next_memo;
    int recording; /* add_metric notes what it adds in `recorded` */
    int nrecorded;
    contribution recorded[MEMO_ITEMS];
} TallyObject;

static void acc_add(acc *a, double x)
{
    double s = a->sum + x;
    if (!a->rounded) {
        /* TwoSum: the exact error of the addition */
        double bp = s - a->sum;
        double err = (a->sum - (s - bp)) + (x - bp);
        if (err != 0.0 || !isfinite(s))
            a->rounded = 1;
    }
    a->sum = s;
    a->count++;
}

/* The metric named `name` (creating it): NULL with MemoryError set. */
/* Integers whose double is the integer itself. Beyond, converting rounds
 * without acc_add seeing it, while SQLite 3.43+ averages integers from an
 * exact int64 sum: such a value is a form not followed. */
#define EXACT_INT_MAX (1LL << 53)

static int exact_in_double(long long x)
{
    return x <= EXACT_INT_MAX && x >= -EXACT_INT_MAX;
}

static metric *find_metric(TallyObject *t, const char *name, Py_ssize_t len, PyObject *obj)
{
    for (Py_ssize_t i = 0; i < t->nmetrics; i++) {
        metric *m = &t->metrics[i];
        if ((obj != NULL && obj == m->seen) ||
            (m->len == len && memcmp(m->name, name, (size_t)len) == 0))
            return m;
    }
    if (t->nmetrics == t->capmetrics) {
        Py_ssize_t cap = t->capmetrics ? t->capmetrics * 2 : 8;
        metric *ms = PyMem_Realloc(t->metrics, (size_t)cap * sizeof *ms);
        if (ms == NULL) {
            PyErr_NoMemory();
            return NULL;
        }
        t->metrics = ms;
        t->capmetrics = cap;
    }
    metric *m = &t->metrics[t->nmetrics];
    memset(m, 0, sizeof *m);
    m->name = PyMem_Malloc(len > 0 ? (size_t)len : 1);
    if (m->name == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    memcpy(m->name, name, (size_t)len);
    m->len = len;
    m->seen = Py_XNewRef(obj);
    t->nmetrics++;
    return m;
}

static int add_metric(TallyObject *t, const char *name, Py_ssize_t len, PyObject *obj, double v)
{
    metric *m = find_metric(t, name, len, obj);
    if (m == NULL)
        return -1;
    acc_add(&m->a, v);
    if (t->recording) {
        if (t->nrecorded < MEMO_ITEMS)
            t->recorded[t->nrecorded] = (contribution){m - t->metrics, v};
        t->nrecorded++;
    }
    return 0;
}

/* --- evaluations as Python values (json.dumps writes them) --------------------- */

enum { V_SKIP, V_NUMBER, V_NESTED, V_UNKNOWN };

/* What SQLite reads back from json.dumps(v) for a scalar `v`: a number (*out),
 * nothing averaged (V_SKIP: text, null, NaN and infinities, which params.c
 * stores as null), a dict or list (V_NESTED), or a value this file does not
 * follow (V_UNKNOWN). */
static int py_number(PyObject *v, double *out)
{
    if (v == Py_True || v == Py_False) {
        *out = v == Py_True ? 1.0 : 0.0;
        return V_NUMBER;
    }
    if (PyLong_CheckExact(v)) {
        int overflow = 0;
        long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (overflow || (x == -1 && PyErr_Occurred())) {
            PyErr_Clear();
            return V_UNKNOWN;
        }
        if (!exact_in_double(x))
            return V_UNKNOWN; /* the double would round (and 19 digits: SQLite may read a real) */
        *out = (double)x;
        return V_NUMBER;
    }
    if (PyFloat_CheckExact(v)) {
        double d = PyFloat_AS_DOUBLE(v);
        if (!isfinite(d))
            return V_SKIP;
        *out = d;
        return V_NUMBER;
    }
    if (v == Py_None || PyUnicode_CheckExact(v))
        return V_SKIP;
    if (PyDict_CheckExact(v) || PyList_CheckExact(v))
        return V_NESTED;
    return V_UNKNOWN;
}

/* The UTF-8 of a metric name this file can compare byte for byte with what
 * SQLite decodes from json.dumps' text: ASCII without control characters. */
static const char *py_name(PyObject *s, Py_ssize_t *len)
{
    if (!PyUnicode_CheckExact(s) || !PyUnicode_IS_ASCII(s))
        return NULL;
    const char *p = (const char *)PyUnicode_1BYTE_DATA(s);
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    for (Py_ssize_t i = 0; i < n; i++)
        if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
            return NULL;
    *len = n;
    return p;
}

/* PyDict_GetItemWithError, as a new reference; a lookup that fails (a key's
 * __eq__ raising) is only a form this file does not follow: NULL, with *failed
 * set and no exception. */
static PyObject *get(PyObject *dict, PyObject *key, int *failed)
{
    PyObject *v;

    if (pl_dict_get_ref(dict, key, &v) < 0) {
        PyErr_Clear();
        *failed = 1;
    }
    return v;
}

/* One {"metric": name, "result": value} of a list. 0, 1 (not followed), -1.
 * References are held across lookups: a key's __eq__ could change the dict. */
static int py_item(TallyObject *t, PyObject *item)
{
    int failed = 0, rc = 0;
    PyObject *name = get(item, t->k_metric, &failed), *value = NULL;
    const char *s;
    Py_ssize_t len;
    double v;

    if (name == NULL || name == Py_None) /* no metric: skipped */
        goto done;
    if ((s = py_name(name, &len)) == NULL) {
        rc = 1;
        goto done;
    }
    value = get(item, t->k_result, &failed);
    if (value == NULL)
        goto done;
    switch (py_number(value, &v)) {
    case V_NUMBER:
        rc = add_metric(t, s, len, name, v);
        break;
    case V_SKIP:
    case V_NESTED: /* json_type 'object' or 'array': not averaged */
        break;
    default:
        rc = 1;
    }
done:
    Py_XDECREF(name);
    Py_XDECREF(value);
    return rc != 0 ? rc : failed;
}

static int py_evaluation_locked(TallyObject *t, PyObject *ev)
{
    if (PyList_CheckExact(ev)) {
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(ev); i++) {
            PyObject *item = PyList_GET_ITEM(ev, i);
            int rc;
            if (PyDict_CheckExact(item)) {
                Py_INCREF(item); /* py_item's lookups could change the list */
                rc = py_item(t, item);
                Py_DECREF(item);
                if (rc != 0)
                    return rc;
            } else if (PyDict_Check(item))
                return 1;
            /* anything else in the list has no metric: skipped */
        }
        return 0;
    }
    /* {metric: value} */
    PyObject *key, *value;
    Py_ssize_t pos = 0, len;
    while (PyDict_Next(ev, &pos, &key, &value)) {
        const char *s = py_name(key, &len);
        double v;
        int kind;
        if (s == NULL)
            return 1;
        kind = py_number(value, &v);
        if (kind == V_NUMBER) {
            if (add_metric(t, s, len, key, v) < 0)
                return -1;
        } else if (kind == V_UNKNOWN || PyDict_Check(value))
            return 1; /* an object value is read as {"metric", "result"} */
    }
    return 0;
}

/* A list or dict evaluation, iterated inside a critical section on it (its
 * items are borrowed while they are read). 0, 1 (not followed), -1. */
static int py_evaluation(TallyObject *t, PyObject *ev)
{
    int rc;

    PL_BEGIN_CRITICAL(ev);
    rc = py_evaluation_locked(t, ev);
    PL_END_CRITICAL();
    return rc;
}

/* --- evaluations as JSON text ------------------------------------------------ */

/* A cursor over JSON text that accepts a strict subset of JSON: no escapes in
 * strings, objects only where a metric is looked for, no nesting beyond. */
typedef struct {
    const char *p, *end;
} cur;

static void skip_ws(cur *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\n' || *c->p == '\t' || *c->p == '\r'))
        c->p++;
}

/* A string without escapes: its bytes, or NULL. */
static const char *j_string(cur *c, Py_ssize_t *len)
{
    const char *s;
    if (c->p >= c->end || *c->p != '"')
        return NULL;
    s = ++c->p;
    while (c->p < c->end && *c->p != '"') {
        unsigned char ch = (unsigned char)*c->p;
        if (ch < 0x20 || ch == '\\' || ch >= 0x7f)
            return NULL;
        c->p++;
    }
    if (c->p >= c->end)
        return NULL;
    *len = c->p - s;
    c->p++;
    return s;
}

static int j_number(TallyObject *t, cur *c, double *out);

/* A scalar: V_NUMBER (*out), V_SKIP (a string or null), V_NESTED ({ or [,
 * not consumed) or V_UNKNOWN. */
static int j_scalar(TallyObject *t, cur *c, double *out)
{
    const char *s = c->p;
    Py_ssize_t n = c->end - s, len;

    if (n <= 0)
        return V_UNKNOWN;
    if (*s == '"')
        return j_string(c, &len) ? V_SKIP : V_UNKNOWN;
    if (*s == '{' || *s == '[')
        return V_NESTED;
    if (n >= 4 && memcmp(s, "true", 4) == 0) {
        c->p += 4;
        *out = 1.0;
        return V_NUMBER;
    }
    if (n >= 5 && memcmp(s, "false", 5) == 0) {
        c->p += 5;
        *out = 0.0;
        return V_NUMBER;
    }
    if (n >= 4 && memcmp(s, "null", 4) == 0) {
        c->p += 4;
        return V_SKIP;
    }
    return j_number(t, c, out);
}

/* A JSON number at c->p: V_NUMBER (*out, the cursor moved past it) when its
 * value is read back exactly (an integer within 2^53, or a real written as
 * repr() writes that float), else V_UNKNOWN. */
static int j_number(TallyObject *t, cur *c, double *out)
{
    /* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
    const char *s = c->p, *p = s, *digits;
    int real = 0;
    if (p < c->end && *p == '-')
        p++;
    digits = p;
    if (p < c->end && *p == '0')
        p++;
    else if (p < c->end && *p >= '1' && *p <= '9')
        while (p < c->end && *p >= '0' && *p <= '9')
            p++;
    else
        return V_UNKNOWN;
    Py_ssize_t ndigits = p - digits;
    if (p < c->end && *p == '.') {
        real = 1;
        if (++p >= c->end || *p < '0' || *p > '9')
            return V_UNKNOWN;
        while (p < c->end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < c->end && (*p == 'e' || *p == 'E')) {
        real = 1;
        p++;
        if (p < c->end && (*p == '+' || *p == '-'))
            p++;
        if (p >= c->end || *p < '0' || *p > '9')
            return V_UNKNOWN;
        while (p < c->end && *p >= '0' && *p <= '9')
            p++;
    }
    if (!real) {
        long long x = 0;
        if (ndigits > 18)
            return V_UNKNOWN;
        for (const char *q = digits; q < p; q++)
            x = x * 10 + (*q - '0');
        if (!exact_in_double(x))
            return V_UNKNOWN;
        *out = (double)(*s == '-' ? -x : x);
        c->p = p;
        return V_NUMBER;
    }
    /* A real: only the text repr() writes for the float it denotes. */
    if ((size_t)(p - s) >= sizeof t->number)
        return V_UNKNOWN;
    memcpy(t->number, s, (size_t)(p - s));
    t->number[p - s] = '\0';
    double d = PyOS_string_to_double(t->number, NULL, NULL);
    if (d == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        return V_UNKNOWN;
    }
    if (!isfinite(d))
        return V_UNKNOWN;
    char *r = PyOS_double_to_string(d, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    int same;
    if (r == NULL) {
        PyErr_Clear();
        return V_UNKNOWN;
    }
    same = strcmp(r, t->number) == 0;
    PyMem_Free(r);
    if (!same)
        return V_UNKNOWN;
    *out = d;
    c->p = p;
    return V_NUMBER;
}

/* An object: as a list item ({"metric", "result"}) when `item`, else as the
 * evaluation {metric: value}. 0, 1 (not followed), -1. */
static int j_object(TallyObject *t, cur *c, int item)
{
    const char *name = NULL;
    Py_ssize_t name_len = 0;
    int has_name = 0, has_result = 0, has_value = 0, rc;
    double value = 0;

    c->p++; /* { */
    skip_ws(c);
    if (c->p < c->end && *c->p == '}') {
        c->p++;
        return 0;
    }
    for (;;) {
        const char *key;
        Py_ssize_t key_len;
        double v;
        int kind;

        skip_ws(c);
        if ((key = j_string(c, &key_len)) == NULL)
            return 1;
        skip_ws(c);
        if (c->p >= c->end || *c->p != ':')
            return 1;
        c->p++;
        skip_ws(c);
        if (item && key_len == 6 && memcmp(key, "metric", 6) == 0) {
            if (has_name++)
                return 1;
            if (c->p < c->end && *c->p == '"') {
                if ((name = j_string(c, &name_len)) == NULL)
                    return 1;
            } else if (c->end - c->p >= 4 && memcmp(c->p, "null", 4) == 0)
                c->p += 4; /* a null metric: skipped */
            else
                return 1;
        } else {
            kind = j_scalar(t, c, &v);
            if (kind == V_UNKNOWN || kind == V_NESTED)
                return 1;
            if (item && key_len == 6 && memcmp(key, "result", 6) == 0) {
                if (has_result++)
                    return 1;
                if (kind == V_NUMBER) {
                    has_value = 1;
                    value = v;
                }
            } else if (!item && kind == V_NUMBER) {
                if (add_metric(t, key, key_len, NULL, v) < 0)
                    return -1;
            }
        }
        skip_ws(c);
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            continue;
        }
        if (c->p < c->end && *c->p == '}') {
            c->p++;
            break;
        }
        return 1;
    }
    if (name != NULL && has_value) {
        rc = add_metric(t, name, name_len, NULL, value);
        if (rc < 0)
            return -1;
    }
    return 0;
}

static int parse_text(TallyObject *t, const char *s, Py_ssize_t n);

static int text_evaluation(TallyObject *t, PyObject *ev)
{
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(ev, &n);
    int rc;

    if (s == NULL) {
        PyErr_Clear(); /* not UTF-8: params.c refuses it */
        return 1;
    }
    for (int i = 0; i < MEMO_TEXTS && n > 0; i++) {
        memo *m = &t->memos[i];
        if (m->len == n && memcmp(m->text, s, (size_t)n) == 0) {
            for (int k = 0; k < m->n; k++)
                acc_add(&t->metrics[m->items[k].metric].a, m->items[k].value);
            return 0;
        }
    }
    t->recording = 1;
    t->nrecorded = 0;
    rc = parse_text(t, s, n);
    t->recording = 0;
    if (rc == 0 && n > 0 && n <= MEMO_BYTES && t->nrecorded <= MEMO_ITEMS) {
        memo *m = &t->memos[t->next_memo];
        t->next_memo = (t->next_memo + 1) % MEMO_TEXTS;
        memcpy(m->text, s, (size_t)n);
        m->len = n;
        m->n = t->nrecorded;
        memcpy(m->items, t->recorded, (size_t)t->nrecorded * sizeof *m->items);
    }
    return rc;
}

/* Tally the metrics of JSON text `s`. 0, 1 (not followed), -1. */
static int parse_text(TallyObject *t, const char *s, Py_ssize_t n)
{
    cur c;
    int rc;

    c.p = s;
    c.end = s + n;
    skip_ws(&c);
    if (c.p < c.end && *c.p == '{') {
        if ((rc = j_object(t, &c, 0)) != 0)
            return rc;
    } else if (c.p < c.end && *c.p == '[') {
        c.p++;
        skip_ws(&c);
        if (c.p < c.end && *c.p == ']')
            c.p++;
        else
            for (;;) {
                double v;
                int kind;
                skip_ws(&c);
                if (c.p < c.end && *c.p == '{') {
                    if ((rc = j_object(t, &c, 1)) != 0)
                        return rc;
                } else if ((kind = j_scalar(t, &c, &v)) == V_UNKNOWN || kind == V_NESTED)
                    return 1; /* a scalar item has no metric: skipped */
                skip_ws(&c);
                if (c.p < c.end && *c.p == ',') {
                    c.p++;
                    continue;
                }
                if (c.p < c.end && *c.p == ']') {
                    c.p++;
                    break;
                }
                return 1;
            }
    } else
        return 1;
    skip_ws(&c);
    return c.p == c.end ? 0 : 1;
}

/* --- records ------------------------------------------------------------------ */

/* A token column (INTEGER affinity): an int or None. 0, or 1 (not followed). */
static int tokens(PyObject *v, acc *a, int64_t *sum)
{
    long long x;
    int overflow = 0;

    if (v == Py_None)
        return 0;
    if (!PyLong_Check(v))
        return 1;
    x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (overflow || (x == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        return 1;
    }
    if (!exact_in_double(x) || __builtin_add_overflow(*sum, (int64_t)x, sum))
        return 1; /* the double would round; SUM() fails with "integer overflow" */
    acc_add(a, (double)x);
    return 0;
}

/* A tuple of the record's values for t->names, in order (new reference), or
 * NULL: with an exception (MemoryError), or without one when the record is not
 * a dict or lacks a name (the binder then gets the record itself, and says what
 * is wrong with it as before).
 * Records are usually dicts built by one literal: the same interned keys at the
 * same places. Each key is first looked for where it was in the previous record
 * (PyDict_Next from that position: bounds-checked, and the key's identity is
 * checked), then looked up. Values are held as new references: a lookup can run
 * a key's __eq__, which could change the dict. */
static PyObject *unpack_locked(TallyObject *t, PyObject *row)
{
    Py_ssize_t n = PyTuple_GET_SIZE(t->names);
    PyObject *values;
    int failed = 0;

    if ((values = PyTuple_New(n)) == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *name = PyTuple_GET_ITEM(t->names, i), *key, *value;
        Py_ssize_t pos = t->hints[i], before = 0;
        if (PyDict_Next(row, &pos, &key, &value) && key == name) {
            PyTuple_SET_ITEM(values, i, Py_NewRef(value));
            continue;
        }
        if ((value = get(row, name, &failed)) == NULL) {
            Py_DECREF(values);
            return NULL;
        }
        PyTuple_SET_ITEM(values, i, value);
        for (pos = 0; PyDict_Next(row, &pos, &key, &value); before = pos)
            if (key == name) {
                t->hints[i] = before;
                break;
            }
    }
    return values;
}

/* unpack_locked inside a critical section on the record (PyDict_Next hands
 * out borrowed entries). */
static PyObject *unpack(TallyObject *t, PyObject *row)
{
    PyObject *values;

    if (!PyDict_CheckExact(row))
        return NULL;
    PL_BEGIN_CRITICAL(row);
    values = unpack_locked(t, row);
    PL_END_CRITICAL();
    return values;
}

/* Tally one record's values (borrowed). 0, 1 (not followed), -1. */
static int tally_values(TallyObject *t, PyObject *experiment_id, PyObject *latency,
                        PyObject *prompt, PyObject *completion, PyObject *evaluation)
{
    int rc;

    if (experiment_id != t->experiment_id) {
        if (!PyUnicode_CheckExact(experiment_id))
            return 1;
        rc = PyUnicode_Compare(experiment_id, t->experiment_id);
        if (rc != 0)
            return rc == -1 && PyErr_Occurred() ? -1 : 1;
    }
    if (PyFloat_Check(latency)) {
        double d = PyFloat_AS_DOUBLE(latency);
        if (!isfinite(d))
            return 1;
        acc_add(&t->latency, d);
    } else if (PyLong_Check(latency)) {
        int overflow = 0;
        long long x = PyLong_AsLongLongAndOverflow(latency, &overflow);
        if (overflow || (x == -1 && PyErr_Occurred())) {
            PyErr_Clear();
            return 1;
        }
        if (!exact_in_double(x))
            return 1;
        acc_add(&t->latency, (double)x);
    } else if (latency != Py_None)
        return 1;
    if (tokens(prompt, &t->prompt, &t->prompt_sum) ||
        tokens(completion, &t->completion, &t->completion_sum))
        return 1;
    if (evaluation == Py_None)
        rc = 0;
    else if (PyUnicode_CheckExact(evaluation))
        rc = text_evaluation(t, evaluation);
    else if (PyList_CheckExact(evaluation) || PyDict_CheckExact(evaluation))
        rc = py_evaluation(t, evaluation);
    else
        rc = 1;
    if (rc != 0)
        return rc;
    t->records++;
    return 0;
}

/* The next record as the tuple of its values for t->names (or the record
 * itself when it cannot be unpacked), tallied on the way. */
static PyObject *tally_next_locked(TallyObject *t)
{
    PyObject *row = t->iter != NULL ? PyIter_Next(t->iter) : NULL, *values;

    if (row == NULL)
        return NULL;
    if ((values = unpack(t, row)) == NULL) {
        if (PyErr_Occurred()) {
            Py_DECREF(row);
            return NULL;
        }
        t->exact = 0;
        return row;
    }
    Py_DECREF(row);
    if (!t->exact)
        return values;
    switch (tally_values(t, PyTuple_GET_ITEM(values, t->agg[0]),
                         PyTuple_GET_ITEM(values, t->agg[1]), PyTuple_GET_ITEM(values, t->agg[2]),
                         PyTuple_GET_ITEM(values, t->agg[3]),
                         PyTuple_GET_ITEM(values, t->agg[4]))) {
    case 0:
        break;
    case 1:
        t->exact = 0;
        break;
    default:
        Py_DECREF(values);
        return NULL;
    }
    return values;
}

/* One thread at a time advances a tally (its sums and tables are unlocked). */
static PyObject *tally_next(TallyObject *t)
{
    PyObject *values;

    PL_BEGIN_CRITICAL(t);
    values = tally_next_locked(t);
    PL_END_CRITICAL();
    return values;
}

static PyObject *tally_iter(PyObject *self)
{
    return Py_NewRef(self);
}

static PyObject *avg(const acc *a)
{
    if (a->count == 0)
        Py_RETURN_NONE;
    return PyFloat_FromDouble(a->sum / (double)a->count);
}

/* An average SQLite would compute the same way: see the file's comment. */
static int reproducible(const TallyObject *t, const acc *a)
{
    return !a->rounded || (t->rounding_known && isfinite(a->sum));
}

static PyObject *tally_summary_locked(TallyObject *t)
{
    PyObject *metrics = NULL, *out = NULL;

    if (!t->exact || !reproducible(t, &t->latency) || !reproducible(t, &t->prompt) ||
        !reproducible(t, &t->completion))
        Py_RETURN_NONE;
    for (Py_ssize_t i = 0; i < t->nmetrics; i++)
        if (!reproducible(t, &t->metrics[i].a))
            Py_RETURN_NONE;
    metrics = PyTuple_New(t->nmetrics);
    if (metrics == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < t->nmetrics; i++) {
        metric *m = &t->metrics[i];
        PyObject *item =
            Py_BuildValue("(s#dn)", m->name, m->len, m->a.sum / (double)m->a.count, m->a.count);
        if (item == NULL)
            goto done;
        PyTuple_SET_ITEM(metrics, i, item);
    }
    out = Py_BuildValue("(nNNNNNO)", t->records, avg(&t->latency),
                        t->prompt.count ? PyLong_FromLongLong(t->prompt_sum) : Py_NewRef(Py_None),
                        t->completion.count ? PyLong_FromLongLong(t->completion_sum)
                                            : Py_NewRef(Py_None),
                        avg(&t->prompt), avg(&t->completion), metrics);
done:
    Py_DECREF(metrics);
    return out;
}

static PyObject *tally_summary(TallyObject *t, PyObject *Py_UNUSED(ignored))
{
    PyObject *out;

    PL_BEGIN_CRITICAL(t);
    out = tally_summary_locked(t);
    PL_END_CRITICAL();
    return out;
}

static PyObject *tally_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"records", "experiment_id", "names", NULL};
    static const char *tallied[5] = {"experiment_id", "latency_ms", "prompt_tokens",
                                     "completion_tokens", "evaluation"};
    PyObject *records, *experiment_id, *names;
    TallyObject *t;
    Py_ssize_t n;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOO!:TraceTally", kwlist, &records,
                                     &experiment_id, &PyTuple_Type, &names))
        return NULL;
    t = (TallyObject *)type->tp_alloc(type, 0);
    if (t == NULL)
        return NULL;
    n = PyTuple_GET_SIZE(names);
    t->experiment_id = Py_NewRef(experiment_id);
    if ((t->iter = PyObject_GetIter(records)) == NULL || (t->names = PyTuple_New(n)) == NULL)
        goto fail;
    t->hints = PyMem_Calloc((size_t)(n > 0 ? n : 1), sizeof *t->hints);
    if (t->hints == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *name = PyTuple_GET_ITEM(names, i);
        if (!PyUnicode_CheckExact(name)) {
            PyErr_SetString(PyExc_TypeError, "TraceTally: names must be a tuple of str");
            goto fail;
        }
        Py_INCREF(name);
        PyUnicode_InternInPlace(&name);
        PyTuple_SET_ITEM(t->names, i, name);
    }
    for (int k = 0; k < 5; k++) {
        t->agg[k] = -1;
        for (Py_ssize_t i = 0; i < n && t->agg[k] < 0; i++)
            if (PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(t->names, i), tallied[k]) == 0)
                t->agg[k] = (int)i;
        if (t->agg[k] < 0) {
            PyErr_Format(PyExc_ValueError, "TraceTally: names must include '%s'", tallied[k]);
            goto fail;
        }
    }
    t->k_metric = PyUnicode_InternFromString("metric");
    t->k_result = PyUnicode_InternFromString("result");
    if (t->k_metric == NULL || t->k_result == NULL)
        goto fail;
    t->exact = PyUnicode_CheckExact(experiment_id);
    t->rounding_known = sqlite3_libversion_number() < 3043000;
    return (PyObject *)t;
fail:
    Py_DECREF(t);
    return NULL;
}

static int tally_traverse(TallyObject *t, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(t));
    Py_VISIT(t->iter);
    Py_VISIT(t->experiment_id);
    for (Py_ssize_t i = 0; i < t->nmetrics; i++)
        Py_VISIT(t->metrics[i].seen);
    return 0;
}

static int tally_clear(TallyObject *t)
{
    Py_CLEAR(t->iter);
    Py_CLEAR(t->experiment_id);
    for (Py_ssize_t i = 0; i < t->nmetrics; i++)
        Py_CLEAR(t->metrics[i].seen);
    return 0;
}

static void tally_dealloc(TallyObject *t)
{
    PyTypeObject *type = Py_TYPE(t);

    PyObject_GC_UnTrack(t);
    tally_clear(t);
    Py_CLEAR(t->names);
    PyMem_Free(t->hints);
    Py_CLEAR(t->k_metric);
    Py_CLEAR(t->k_result);
    for (Py_ssize_t i = 0; i < t->nmetrics; i++)
        PyMem_Free(t->metrics[i].name);
    PyMem_Free(t->metrics);
    type->tp_free(t);
    Py_DECREF(type);
}

static PyMethodDef tally_methods[] = {
    {"summary", (PyCFunction)tally_summary, METH_NOARGS,
     "summary() -> (records, avg_latency_ms, prompt_tokens, completion_tokens, "
     "avg_prompt_tokens, avg_completion_tokens, ((metric, average, count), ...)) of the "
     "records iterated so far, as SQLite computes them over the stored rows; None when a "
     "record was out of reach (compute them in SQL then)."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot tally_slots[] = {
    {Py_tp_new, tally_new},
    {Py_tp_dealloc, tally_dealloc},
    {Py_tp_traverse, tally_traverse},
    {Py_tp_clear, tally_clear},
    {Py_tp_iter, tally_iter},
    {Py_tp_iternext, tally_next},
    {Py_tp_methods, tally_methods},
    {Py_tp_doc, "TraceTally(records, experiment_id, names): iterates over `records`, giving "
                "each dict record as the tuple of its values for `names` (the INSERT's "
                "parameters, in order; any other record as it is), and tallies the aggregates "
                "trace_experiment stores (see summary())."},
    {0, NULL},
};

static PyType_Spec tally_spec = {
    .name = "promptlab._core.TraceTally",
    .basicsize = sizeof(TallyObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = tally_slots,
};

int pl_tally_register(PyObject *module)
{
    PyTypeObject *type;
    int rc = pl_type_register(module, &tally_spec, &type);

    Py_XDECREF(type);
    return rc;
}

-- revision: 6d1e9a4c2b70
-- parent: 28f160511eaa
-- message: per-experiment summaries: record counts, latency and token aggregates, metric averages
-- created: 2026-12-07 22:00:00
--
-- experiment_summary holds one row per experiment, experiment_metric one row per
-- experiment and metric, as the studio's experiment list shows them; promptlab.store
-- (store/summaries.py) writes them in the transaction that stores the experiment's
-- results, with the same SELECTs as the backfill below (keep them equal). Columns
-- without a type keep the type of what the aggregate returned (SUM of integers is an
-- integer, a metric named by a number stays a number), so values read back are the
-- values computed from the results.

-- migrate:up
CREATE TABLE experiment_summary (
    experiment_id VARCHAR NOT NULL PRIMARY KEY REFERENCES experiments (experiment_id),
    records INTEGER NOT NULL,
    avg_latency_ms REAL,
    prompt_tokens,
    completion_tokens,
    avg_prompt_tokens REAL,
    avg_completion_tokens REAL,
    last_result_id INTEGER
);
CREATE TABLE experiment_metric (
    experiment_id VARCHAR NOT NULL REFERENCES experiments (experiment_id),
    metric NOT NULL,
    average REAL,
    count INTEGER,
    PRIMARY KEY (experiment_id, metric)
);

INSERT INTO experiment_summary (experiment_id, records, avg_latency_ms, prompt_tokens,
                                completion_tokens, avg_prompt_tokens, avg_completion_tokens,
                                last_result_id)
    SELECT e.experiment_id, COUNT(er.id), AVG(er.latency_ms), SUM(er.prompt_tokens),
           SUM(er.completion_tokens), AVG(er.prompt_tokens), AVG(er.completion_tokens),
           MAX(er.id)
    FROM experiments e
    LEFT JOIN experiment_result er ON er.experiment_id = e.experiment_id
    GROUP BY e.experiment_id;

-- Evaluations as promptlab.store.formats.decode_evaluation reads them: a JSON list of
-- {"metric": ..., "result": ...}, or a JSON object {metric: value}. Only numbers and
-- booleans are averaged; anything else (text, invalid JSON) is skipped.
INSERT INTO experiment_metric (experiment_id, metric, average, count)
    SELECT experiment_id, metric, AVG(value), COUNT(value)
    FROM (SELECT er.experiment_id AS experiment_id,
                 CASE WHEN j.type = 'object' THEN json_extract(j.value, '$.metric')
                      WHEN typeof(j.key) = 'text' THEN j.key END AS metric,
                 CASE WHEN j.type = 'object' THEN
                          CASE WHEN json_type(j.value, '$.result')
                                    IN ('integer', 'real', 'true', 'false')
                               THEN json_extract(j.value, '$.result') END
                      WHEN j.type IN ('integer', 'real', 'true', 'false') THEN j.value
                 END AS value
          FROM experiment_result er,
               json_each(CASE WHEN json_valid(er.evaluation) THEN er.evaluation
                              ELSE '[]' END) j
          WHERE er.experiment_id IN (SELECT experiment_id FROM experiments))
    WHERE metric IS NOT NULL AND value IS NOT NULL
    GROUP BY experiment_id, metric;

-- migrate:down
DROP TABLE experiment_metric;
DROP TABLE experiment_summary;
-- migrate:up:postgresql
-- The same tables and backfill. Columns SQLite leaves untyped get the type of what
-- the aggregates return here (SUM of INTEGER is BIGINT); a metric's name is TEXT.
CREATE TABLE experiment_summary (
    experiment_id VARCHAR NOT NULL PRIMARY KEY REFERENCES experiments (experiment_id),
    records INTEGER NOT NULL,
    avg_latency_ms DOUBLE PRECISION,
    prompt_tokens BIGINT,
    completion_tokens BIGINT,
    avg_prompt_tokens DOUBLE PRECISION,
    avg_completion_tokens DOUBLE PRECISION,
    last_result_id BIGINT
);
CREATE TABLE experiment_metric (
    experiment_id VARCHAR NOT NULL REFERENCES experiments (experiment_id),
    metric TEXT NOT NULL,
    average DOUBLE PRECISION,
    count INTEGER,
    PRIMARY KEY (experiment_id, metric)
);

INSERT INTO experiment_summary (experiment_id, records, avg_latency_ms, prompt_tokens,
                                completion_tokens, avg_prompt_tokens, avg_completion_tokens,
                                last_result_id)
    SELECT e.experiment_id, COUNT(er.id), AVG(er.latency_ms), SUM(er.prompt_tokens),
           SUM(er.completion_tokens), AVG(er.prompt_tokens), AVG(er.completion_tokens),
           MAX(er.id)
    FROM experiments e
    LEFT JOIN experiment_result er ON er.experiment_id = e.experiment_id
    GROUP BY e.experiment_id;

-- The evaluations as on SQLite: a JSON list of {"metric": ..., "result": ...} or a
-- JSON object {metric: value}; numbers and booleans (as 1 and 0) are averaged,
-- anything else, and text that is not JSON, is skipped. PostgreSQL 15 has no
-- "IS JSON": a text that does not parse is caught by a function of this session.
CREATE FUNCTION pg_temp.pl_jsonb_or_null(doc TEXT) RETURNS JSONB
    LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN doc::jsonb;
EXCEPTION WHEN others THEN
    RETURN NULL;
END
$$;
CREATE FUNCTION pg_temp.pl_number(v JSONB) RETURNS DOUBLE PRECISION
    LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE jsonb_typeof(v)
               WHEN 'number' THEN (v #>> '{}')::DOUBLE PRECISION
               WHEN 'boolean' THEN CASE WHEN (v #>> '{}') = 'true' THEN 1.0 ELSE 0.0 END
           END
$$;
INSERT INTO experiment_metric (experiment_id, metric, average, count)
    SELECT experiment_id, metric, AVG(value), COUNT(value)
    FROM (SELECT er.experiment_id,
                 CASE WHEN jsonb_typeof(j.value) = 'object' THEN j.value ->> 'metric'
                      ELSE j.key END AS metric,
                 CASE WHEN jsonb_typeof(j.value) = 'object'
                          THEN pg_temp.pl_number(j.value -> 'result')
                      ELSE pg_temp.pl_number(j.value) END AS value
          FROM experiment_result er
          CROSS JOIN LATERAL pg_temp.pl_jsonb_or_null(er.evaluation) AS doc
          CROSS JOIN LATERAL (
              SELECT key, value FROM jsonb_each(CASE WHEN jsonb_typeof(doc) = 'object'
                                                     THEN doc END)
              UNION ALL
              SELECT NULL, value FROM jsonb_array_elements(CASE WHEN jsonb_typeof(doc) = 'array'
                                                                THEN doc END)) AS j
          WHERE er.experiment_id IN (SELECT experiment_id FROM experiments)) AS m
    WHERE metric IS NOT NULL AND value IS NOT NULL
    GROUP BY experiment_id, metric;

-- migrate:down:postgresql
DROP TABLE experiment_metric;
DROP TABLE experiment_summary;

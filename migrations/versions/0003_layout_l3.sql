-- revision: c84044d14c12
-- parent: 9ab590290932
-- message: PromptLab 0.1.4-0.1.11 layout: users, user_id and status, completion
-- created: 2025-07-01 00:00:00
--
-- Produces exactly the tables PromptLab 0.1.4-0.1.11 created (SQLAlchemy
-- create_all: VARCHAR/DATETIME types, NOT NULL keys, no defaults), so that a
-- database of that release is recognised as this revision. The three tables
-- are rebuilt (new table, copy, drop, rename); experiment_result.inference
-- becomes completion and the JSON key inference_model_config of
-- experiments.model becomes completion_model_config. Every value is copied.

-- migrate:up
CREATE TABLE users (
	id INTEGER NOT NULL,
	username VARCHAR NOT NULL,
	password_hash VARCHAR NOT NULL,
	role VARCHAR NOT NULL,
	status INTEGER,
	created_at DATETIME,
	PRIMARY KEY (id),
	UNIQUE (username)
);

CREATE TABLE assets_l3 (
	asset_name VARCHAR NOT NULL,
	asset_version INTEGER NOT NULL,
	asset_description TEXT,
	asset_type VARCHAR,
	asset_binary TEXT,
	is_deployed BOOLEAN,
	deployment_time DATETIME,
	status INTEGER,
	created_at DATETIME,
	user_id INTEGER,
	PRIMARY KEY (asset_name, asset_version),
	FOREIGN KEY(user_id) REFERENCES users (id)
);
INSERT INTO assets_l3 (asset_name, asset_version, asset_description, asset_type, asset_binary,
                       is_deployed, deployment_time, created_at)
    SELECT asset_name, asset_version, asset_description, asset_type, asset_binary,
           is_deployed, deployment_time, created_at
    FROM assets ORDER BY rowid;
DROP TABLE assets;
ALTER TABLE assets_l3 RENAME TO assets;

CREATE TABLE experiments_l3 (
	experiment_id VARCHAR NOT NULL,
	model TEXT,
	asset TEXT,
	status INTEGER,
	created_at DATETIME,
	user_id INTEGER,
	PRIMARY KEY (experiment_id),
	FOREIGN KEY(user_id) REFERENCES users (id)
);
INSERT INTO experiments_l3 (experiment_id, model, asset, created_at)
    SELECT experiment_id, model, asset, created_at FROM experiments ORDER BY rowid;
DROP TABLE experiments;
ALTER TABLE experiments_l3 RENAME TO experiments;

CREATE TABLE experiment_result_l3 (
	id INTEGER NOT NULL,
	experiment_id VARCHAR,
	dataset_record_id VARCHAR,
	completion TEXT,
	prompt_tokens INTEGER,
	completion_tokens INTEGER,
	latency_ms FLOAT,
	evaluation TEXT,
	created_at DATETIME,
	PRIMARY KEY (id),
	FOREIGN KEY(experiment_id) REFERENCES experiments (experiment_id)
);
INSERT INTO experiment_result_l3 (id, experiment_id, dataset_record_id, completion,
                                  prompt_tokens, completion_tokens, latency_ms, evaluation,
                                  created_at)
    SELECT id, experiment_id, dataset_record_id, inference, prompt_tokens, completion_tokens,
           latency_ms, evaluation, created_at
    FROM experiment_result ORDER BY id;
DROP TABLE experiment_result;
ALTER TABLE experiment_result_l3 RENAME TO experiment_result;

UPDATE experiments
SET model = json_set(
        json_remove(model, '$.inference_model_config'),
        '$.completion_model_config',
        CASE json_type(model, '$.inference_model_config')
            WHEN 'object' THEN json(json_extract(model, '$.inference_model_config'))
            WHEN 'array' THEN json(json_extract(model, '$.inference_model_config'))
            ELSE json_extract(model, '$.inference_model_config')
        END)
WHERE json_valid(model)
  AND json_type(model) = 'object'
  AND json_type(model, '$.inference_model_config') IS NOT NULL
  AND json_type(model, '$.completion_model_config') IS NULL;

-- migrate:down
UPDATE experiments
SET model = json_set(
        json_remove(model, '$.completion_model_config'),
        '$.inference_model_config',
        CASE json_type(model, '$.completion_model_config')
            WHEN 'object' THEN json(json_extract(model, '$.completion_model_config'))
            WHEN 'array' THEN json(json_extract(model, '$.completion_model_config'))
            ELSE json_extract(model, '$.completion_model_config')
        END)
WHERE json_valid(model)
  AND json_type(model) = 'object'
  AND json_type(model, '$.completion_model_config') IS NOT NULL
  AND json_type(model, '$.inference_model_config') IS NULL;

CREATE TABLE experiment_result_l2 (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    experiment_id TEXT,
    dataset_record_id TEXT,
    inference TEXT,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    latency_ms REAL,
    evaluation BLOB,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    FOREIGN KEY(experiment_id) REFERENCES experiments(experiment_id)
);
INSERT INTO experiment_result_l2 (id, experiment_id, dataset_record_id, inference,
                                  prompt_tokens, completion_tokens, latency_ms, evaluation,
                                  created_at)
    SELECT id, experiment_id, dataset_record_id, completion, prompt_tokens, completion_tokens,
           latency_ms, evaluation, created_at
    FROM experiment_result ORDER BY id;
DROP TABLE experiment_result;
ALTER TABLE experiment_result_l2 RENAME TO experiment_result;

CREATE TABLE experiments_l2 (
    experiment_id TEXT PRIMARY KEY,
    model BLOB,
    asset BLOB,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);
INSERT INTO experiments_l2 (experiment_id, model, asset, created_at)
    SELECT experiment_id, model, asset, created_at FROM experiments ORDER BY rowid;
DROP TABLE experiments;
ALTER TABLE experiments_l2 RENAME TO experiments;

CREATE TABLE assets_l2 (
    asset_name TEXT,
    asset_version INTEGER,
    asset_description TEXT,
    asset_type TEXT,
    asset_binary BLOB,
    is_deployed BOOLEAN DEFAULT 0,
    deployment_time TIMESTAMP,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (asset_name, asset_version)
);
INSERT INTO assets_l2 (asset_name, asset_version, asset_description, asset_type, asset_binary,
                       is_deployed, deployment_time, created_at)
    SELECT asset_name, asset_version, asset_description, asset_type, asset_binary,
           is_deployed, deployment_time, created_at
    FROM assets ORDER BY rowid;
DROP TABLE assets;
ALTER TABLE assets_l2 RENAME TO assets;
DROP TABLE users;
-- migrate:up:postgresql
-- Nothing: this layout exists only in SQLite files the original PromptLab wrote.
-- A PostgreSQL database starts empty and gets its tables at 28f160511eaa.

-- migrate:down:postgresql
-- Nothing (see above).

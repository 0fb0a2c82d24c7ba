-- revision: 28f160511eaa
-- parent: c84044d14c12
-- message: PromptLab C core schema: per-row created_at defaults, indexes, rows owned by admin
-- created: 2026-11-27 00:00:00
--
-- Rebuilds the four tables with the documented ALTER TABLE procedure (new
-- table, copy, drop, rename) because SQLite cannot add defaults in place.
-- Every value is copied as it is; rows without a user are attached to admin.
-- The admin is created without a usable password ('!'): PromptLab sets one
-- from PROMPTLAB_ADMIN_PASSWORD or `promptlab db init`.

-- migrate:up
CREATE TABLE IF NOT EXISTS legacy_asset_ids (
    asset_name TEXT,
    asset_version INTEGER,
    asset_id TEXT
);

CREATE TABLE users_new (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username VARCHAR NOT NULL UNIQUE,
    password_hash VARCHAR NOT NULL,
    role VARCHAR NOT NULL,
    status INTEGER DEFAULT 1,
    created_at DATETIME DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);
INSERT INTO users_new (id, username, password_hash, role, status, created_at)
    SELECT id, username, password_hash, role, status, created_at FROM users ORDER BY id;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;
INSERT INTO users (username, password_hash, role, status)
    SELECT 'admin', '!', 'admin', 1
    WHERE NOT EXISTS (SELECT 1 FROM users WHERE username = 'admin');

CREATE TABLE assets_new (
    asset_name VARCHAR NOT NULL,
    asset_version INTEGER NOT NULL,
    asset_description TEXT,
    asset_type VARCHAR,
    asset_binary TEXT,
    is_deployed BOOLEAN DEFAULT 0,
    deployment_time DATETIME,
    status INTEGER DEFAULT 1,
    created_at DATETIME DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    user_id INTEGER REFERENCES users (id),
    PRIMARY KEY (asset_name, asset_version)
);
INSERT INTO assets_new (asset_name, asset_version, asset_description, asset_type, asset_binary,
                        is_deployed, deployment_time, status, created_at, user_id)
    SELECT asset_name, asset_version, asset_description, asset_type, asset_binary,
           is_deployed, deployment_time, status, created_at,
           COALESCE(user_id, (SELECT id FROM users WHERE username = 'admin'))
    FROM assets ORDER BY rowid;
DROP TABLE assets;
ALTER TABLE assets_new RENAME TO assets;

CREATE TABLE experiments_new (
    experiment_id VARCHAR NOT NULL PRIMARY KEY,
    model TEXT,
    asset TEXT,
    status INTEGER DEFAULT 1,
    created_at DATETIME DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    user_id INTEGER REFERENCES users (id)
);
INSERT INTO experiments_new (experiment_id, model, asset, status, created_at, user_id)
    SELECT experiment_id, model, asset, status, created_at,
           COALESCE(user_id, (SELECT id FROM users WHERE username = 'admin'))
    FROM experiments ORDER BY rowid;
DROP TABLE experiments;
ALTER TABLE experiments_new RENAME TO experiments;

CREATE TABLE experiment_result_new (
    id INTEGER PRIMARY KEY,
    experiment_id VARCHAR REFERENCES experiments (experiment_id),
    dataset_record_id VARCHAR,
    completion TEXT,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    latency_ms FLOAT,
    evaluation TEXT,
    created_at DATETIME DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);
INSERT INTO experiment_result_new (id, experiment_id, dataset_record_id, completion,
                                   prompt_tokens, completion_tokens, latency_ms, evaluation,
                                   created_at)
    SELECT id, experiment_id, dataset_record_id, completion, prompt_tokens, completion_tokens,
           latency_ms, evaluation, created_at
    FROM experiment_result ORDER BY id;
DROP TABLE experiment_result;
ALTER TABLE experiment_result_new RENAME TO experiment_result;

CREATE INDEX ix_experiment_result_experiment_id ON experiment_result (experiment_id);
CREATE INDEX ix_assets_asset_type ON assets (asset_type);
CREATE INDEX ix_experiments_created_at ON experiments (created_at);

-- migrate:down
DROP INDEX ix_experiments_created_at;
DROP INDEX ix_assets_asset_type;
DROP INDEX ix_experiment_result_experiment_id;

CREATE TABLE users_l3 (
	id INTEGER NOT NULL,
	username VARCHAR NOT NULL,
	password_hash VARCHAR NOT NULL,
	role VARCHAR NOT NULL,
	status INTEGER,
	created_at DATETIME,
	PRIMARY KEY (id),
	UNIQUE (username)
);
INSERT INTO users_l3 (id, username, password_hash, role, status, created_at)
    SELECT id, username, password_hash, role, status, created_at FROM users ORDER BY id;
DROP TABLE users;
ALTER TABLE users_l3 RENAME TO users;

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
                       is_deployed, deployment_time, status, created_at, user_id)
    SELECT asset_name, asset_version, asset_description, asset_type, asset_binary,
           is_deployed, deployment_time, status, created_at, user_id
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
INSERT INTO experiments_l3 (experiment_id, model, asset, status, created_at, user_id)
    SELECT experiment_id, model, asset, status, created_at, user_id
    FROM experiments ORDER BY rowid;
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
    SELECT id, experiment_id, dataset_record_id, completion, prompt_tokens, completion_tokens,
           latency_ms, evaluation, created_at
    FROM experiment_result ORDER BY id;
DROP TABLE experiment_result;
ALTER TABLE experiment_result_l3 RENAME TO experiment_result;
-- migrate:up:postgresql
-- The tables of this revision, made directly: a PostgreSQL database has no older
-- layout to rebuild (the revisions before this one do nothing on it). Types are
-- chosen so that values read back as they do from SQLite: TEXT for SQLite's TEXT,
-- VARCHAR, DATETIME and the JSON/binary columns (timestamps are the same text,
-- 'YYYY-MM-DD HH:MM:SS.SSS' in UTC, so they sort and compare as on SQLite), INTEGER
-- for SQLite's INTEGER and BOOLEAN, DOUBLE PRECISION for FLOAT and REAL.
CREATE TABLE legacy_asset_ids (
    asset_name TEXT,
    asset_version INTEGER,
    asset_id TEXT
);

CREATE TABLE users (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    username VARCHAR NOT NULL UNIQUE,
    password_hash VARCHAR NOT NULL,
    role VARCHAR NOT NULL,
    status INTEGER DEFAULT 1,
    created_at TEXT DEFAULT to_char(clock_timestamp() AT TIME ZONE 'UTC',
                                    'YYYY-MM-DD HH24:MI:SS.MS')
);
INSERT INTO users (username, password_hash, role, status)
    VALUES ('admin', '!', 'admin', 1)
    ON CONFLICT (username) DO NOTHING;

CREATE TABLE assets (
    asset_name VARCHAR NOT NULL,
    asset_version INTEGER NOT NULL,
    asset_description TEXT,
    asset_type VARCHAR,
    asset_binary TEXT,
    is_deployed INTEGER DEFAULT 0,
    deployment_time TEXT,
    status INTEGER DEFAULT 1,
    created_at TEXT DEFAULT to_char(clock_timestamp() AT TIME ZONE 'UTC',
                                    'YYYY-MM-DD HH24:MI:SS.MS'),
    user_id BIGINT REFERENCES users (id),
    PRIMARY KEY (asset_name, asset_version)
);

CREATE TABLE experiments (
    experiment_id VARCHAR NOT NULL PRIMARY KEY,
    model TEXT,
    asset TEXT,
    status INTEGER DEFAULT 1,
    created_at TEXT DEFAULT to_char(clock_timestamp() AT TIME ZONE 'UTC',
                                    'YYYY-MM-DD HH24:MI:SS.MS'),
    user_id BIGINT REFERENCES users (id)
);

CREATE TABLE experiment_result (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    experiment_id VARCHAR REFERENCES experiments (experiment_id),
    dataset_record_id VARCHAR,
    completion TEXT,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    latency_ms DOUBLE PRECISION,
    evaluation TEXT,
    created_at TEXT DEFAULT to_char(clock_timestamp() AT TIME ZONE 'UTC',
                                    'YYYY-MM-DD HH24:MI:SS.MS')
);

CREATE INDEX ix_experiment_result_experiment_id ON experiment_result (experiment_id);
CREATE INDEX ix_assets_asset_type ON assets (asset_type);
CREATE INDEX ix_experiments_created_at ON experiments (created_at);

-- migrate:down:postgresql
-- Empty: below this revision a PostgreSQL database holds no tables, so going down
-- would only delete every row. Refused; drop the database instead.

-- revision: 402e541d4c74
-- parent: base
-- message: PromptLab 0.0.3 (early) layout: assets with asset_id, completions in inference
-- created: 2025-03-01 00:00:00
--
-- The schema the first PromptLab releases wrote. A database found with this
-- layout and no revision is marked here and upgraded by the migrations after it.

-- migrate:up
CREATE TABLE assets (
    asset_id TEXT,
    asset_name TEXT,
    asset_version INTEGER,
    asset_description TEXT,
    asset_type TEXT,
    asset_binary BLOB,
    is_deployed BOOLEAN DEFAULT 0,
    deployment_time TIMESTAMP,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE experiments (
    experiment_id TEXT PRIMARY KEY,
    model BLOB,
    asset BLOB,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE experiment_result (
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

-- migrate:down
DROP TABLE experiment_result;
DROP TABLE experiments;
DROP TABLE assets;
-- migrate:up:postgresql
-- Nothing: this layout exists only in SQLite files the original PromptLab wrote.
-- A PostgreSQL database starts empty and gets its tables at 28f160511eaa.

-- migrate:down:postgresql
-- Nothing (see above).

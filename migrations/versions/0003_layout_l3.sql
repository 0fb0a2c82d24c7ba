-- revision: c84044d14c12
-- parent: 9ab590290932
-- message: PromptLab 0.1.4-0.1.11 layout: users, user_id and status, completion
-- created: 2025-07-01 00:00:00
--
-- Renames experiment_result.inference to completion and the JSON key
-- inference_model_config to completion_model_config in experiments.model.

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
ALTER TABLE assets ADD COLUMN status INTEGER;
ALTER TABLE assets ADD COLUMN user_id INTEGER REFERENCES users (id);
ALTER TABLE experiments ADD COLUMN status INTEGER;
ALTER TABLE experiments ADD COLUMN user_id INTEGER REFERENCES users (id);
ALTER TABLE experiment_result RENAME COLUMN inference TO completion;
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
ALTER TABLE experiment_result RENAME COLUMN completion TO inference;
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

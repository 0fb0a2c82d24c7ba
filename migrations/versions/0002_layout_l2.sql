-- revision: 9ab590290932
-- parent: 402e541d4c74
-- message: PromptLab 0.0.3-0.1.3 layout: assets keyed by (asset_name, asset_version)
-- created: 2025-04-01 00:00:00
--
-- Drops assets.asset_id as PromptLab 0.0.3 did; its values are kept in
-- legacy_asset_ids so that no value of an upgraded database is lost.

-- migrate:up
CREATE TABLE IF NOT EXISTS legacy_asset_ids (
    asset_name TEXT,
    asset_version INTEGER,
    asset_id TEXT
);
INSERT INTO legacy_asset_ids (asset_name, asset_version, asset_id)
    SELECT asset_name, asset_version, asset_id FROM assets WHERE asset_id IS NOT NULL;
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

-- migrate:down
CREATE TABLE assets_l1 (
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
INSERT INTO assets_l1 (asset_id, asset_name, asset_version, asset_description, asset_type,
                       asset_binary, is_deployed, deployment_time, created_at)
    SELECT (SELECT l.asset_id FROM legacy_asset_ids l
             WHERE l.asset_name IS a.asset_name AND l.asset_version IS a.asset_version
             LIMIT 1),
           a.asset_name, a.asset_version, a.asset_description, a.asset_type, a.asset_binary,
           a.is_deployed, a.deployment_time, a.created_at
    FROM assets a ORDER BY a.rowid;
DROP TABLE assets;
ALTER TABLE assets_l1 RENAME TO assets;
DROP TABLE legacy_asset_ids;
-- migrate:up:postgresql
-- Nothing: this layout exists only in SQLite files the original PromptLab wrote.
-- A PostgreSQL database starts empty and gets its tables at 28f160511eaa.

-- migrate:down:postgresql
-- Nothing (see above).

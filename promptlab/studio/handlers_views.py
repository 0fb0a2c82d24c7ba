"""The page's read-only views (``/api/studio/...``): experiment summaries, record
pages, comparisons, datasets with their records; and ``/health``."""

from __future__ import annotations

import time
from typing import Any, Dict, Optional

from promptlab import __version__
from promptlab.enums import AssetType
from promptlab.studio.http import ApiError, Principal, Request, Response, iso, json_response
from promptlab.studio.state import StudioState

MAX_PAGE = 500
MAX_COMPARED = 8
PREVIEW_MAX = 50
COMPARE_ONLY = ("differ", "failures")


def username_of(asset: Any) -> Optional[str]:
    """The owner's name of an asset (the original's ``user_id`` field)."""
    return asset.user.username if asset.user is not None else None


class ViewHandlers(StudioState):
    """The studio page's views and the health check.

    Part of ``StudioApp`` (``promptlab.studio.app``).
    """

    def studio_experiments(self, request: Request, who: Principal) -> Dict[str, Any]:
        return {"experiments": self.read.summaries()}

    def _experiment(self, experiment_id: Optional[str]) -> Dict[str, Any]:
        if not experiment_id:
            raise ApiError(400, "experiment_id is required")
        experiment = self.read.summary(experiment_id)
        if experiment is None:
            raise ApiError(404, f"Experiment {experiment_id} not found")
        return experiment

    def studio_records(self, request: Request, who: Principal) -> Dict[str, Any]:
        experiment = self._experiment(request.param("experiment_id"))
        offset = request.int_param("offset", 0, 0, 2 ** 62)
        limit = request.int_param("limit", 50, 1, MAX_PAGE)
        search = (request.param("q") or "").strip()[:200] or None
        page = self.read.records(experiment, offset, limit, search)
        return {"experiment": experiment, **page}

    def studio_compare(self, request: Request, who: Principal) -> Dict[str, Any]:
        ids = [i for i in request.query.get("experiment_id", []) if i]
        ids = list(dict.fromkeys(ids))
        if not 2 <= len(ids) <= MAX_COMPARED:
            raise ApiError(400, f"Give 2 to {MAX_COMPARED} different experiment_id values")
        experiments = [self._experiment(i) for i in ids]
        offset = request.int_param("offset", 0, 0, 2 ** 62)
        limit = request.int_param("limit", 50, 1, MAX_PAGE)
        only = request.param("only") or None
        if only is not None and only not in COMPARE_ONLY:
            raise ApiError(400, f"only must be one of {', '.join(COMPARE_ONLY)}")
        return {"experiments": experiments,
                **self.read.compare(experiments, offset, limit, only)}

    def studio_datasets(self, request: Request, who: Principal) -> Dict[str, Any]:
        """The datasets with their record counts (None and a ``note`` when the file is
        not read)."""
        out = []
        for d in self.tracer.get_assets_by_type(AssetType.DATASET):
            path = d.file_path
            records: Dict[str, Any]
            note: Optional[str]
            if path is None:
                records, note = {}, "the dataset names no file"
            else:
                records, note = self.read.datasets.records(path)
            out.append({"asset_name": d.asset_name, "asset_version": d.asset_version,
                        "asset_description": d.asset_description,
                        "created_at": iso(d.created_at), "file_path": path,
                        "user_id": username_of(d),
                        "records": None if note else len(records), "note": note})
        return {"datasets": out}

    def studio_dataset(self, request: Request, who: Principal) -> Dict[str, Any]:
        """The first ``limit`` records of one dataset version's file."""
        name = request.param("asset_name")
        if not name:
            raise ApiError(400, "asset_name is required")
        version = request.int_param("asset_version", 0, 0, 2 ** 62)
        limit = request.int_param("limit", 5, 1, PREVIEW_MAX)
        try:
            asset = self.tracer.get_asset(name, version)
        except ValueError:
            asset = None
        if asset is None or asset.asset_type != AssetType.DATASET.value:
            raise ApiError(404, f"Dataset {name} version {version} not found")
        path = asset.file_path
        records, note = self.read.datasets.records(path) if path else ({}, "no file")
        return {"asset_name": name, "asset_version": version, "file_path": path,
                "records": None if note else len(records), "note": note,
                "preview": list(records.values())[:limit]}

    def health(self, request: Request, who: Optional[Principal]) -> Response:
        """The original answer; with a valid token also the database's health (the
        integrity check reads the whole file, so strangers only get a ping)."""
        if who is None:
            ok = self.read.ping()
            return json_response({"status": "healthy" if ok else "unhealthy",
                                  "service": "promptlab-studio"}, 200 if ok else 503)
        database = self.read.health()
        return json_response({
            "status": "healthy" if database["ok"] else "unhealthy",
            "service": "promptlab-studio", "version": __version__,
            "uptime_seconds": round(time.time() - self.started, 1),
            "database": database}, 200 if database["ok"] else 503)

"""Experiments as the original studio's clients read and write them: ``GET`` one
row per result (a page at a time), ``POST`` from a remote tracer."""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

from promptlab import _core
from promptlab.store.formats import display_prompt_template
from promptlab.studio.http import ApiError, Principal, Request
from promptlab.studio.state import StudioState
from promptlab.studio.validation import experiment_config, experiment_summary

EXPERIMENT_ROWS_PAGE = 10000  # GET /api/experiments: rows per page by default...
EXPERIMENT_ROWS_MAX = 50000   # ...and at most


class ExperimentHandlers(StudioState):
    """``GET`` and ``POST /api/experiments``.

    Part of ``StudioApp`` (``promptlab.studio.app``).
    """

    def get_experiments(self, request: Request, who: Principal) -> Dict[str, Any]:
        """The original shape, one object per result row with the prompts split out,
        a page at a time (the original sent every row: 497 MB for 1M rows). The first
        page is what the original's clients read; ``next_offset`` asks for the next.
        ``experiment_id`` keeps one experiment's rows."""
        offset = request.int_param("offset", 0, 0, 2 ** 62)
        limit = request.int_param("limit", EXPERIMENT_ROWS_PAGE, 1, EXPERIMENT_ROWS_MAX)
        experiment_id = request.param("experiment_id") or None
        # one more row: is there a next page?
        rows = self.read.experiment_rows(offset, limit + 1, experiment_id)
        more = len(rows) > limit
        split: Dict[Optional[str], Tuple[str, str]] = {}
        out = []
        for row in rows[:limit]:
            data = dict(row)
            binary = data.pop("asset_binary", None)
            if binary not in split:
                split[binary] = display_prompt_template(binary)
            data["system_prompt_template"], data["user_prompt_template"] = split[binary]
            data["user_id"] = data.get("username")
            out.append(data)
        return {"experiments": out, "offset": offset, "limit": limit,
                "next_offset": offset + limit if more else None}

    def post_experiment(self, request: Request, who: Principal) -> Dict[str, Any]:
        data = request.json_object()
        config_data = data.get("experiment_config")
        summary = data.get("experiment_summary")
        if not config_data or not summary:
            raise ApiError(400, "Missing experiment_config or experiment_summary data")
        if not isinstance(config_data, dict):
            raise ApiError(400, "experiment_config must be a JSON object")
        if not isinstance(summary, list):
            raise ApiError(400, "experiment_summary must be a JSON array")
        config = experiment_config(config_data)
        config.user = who.username
        records = experiment_summary(summary)
        try:
            self.tracer.trace_experiment(config, records)
        except _core.IntegrityError:
            raise ApiError(409, f"Experiment {records[0]['experiment_id']} already "
                                "exists") from None
        return {"success": True}

"""Prompt templates and datasets: listed, read by version, and created (one
handler for both kinds, ``ASSET_KINDS``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, Tuple

from promptlab import _core
from promptlab.enums import AssetType
from promptlab.store.formats import display_prompt_template
from promptlab.studio.handlers_views import username_of
from promptlab.studio.http import ApiError, Principal, Request, iso
from promptlab.studio.state import StudioState
from promptlab.studio.validation import as_int, build, check_asset
from promptlab.tracer.local_tracer import LocalTracer
from promptlab.types import Dataset, PromptTemplate


@dataclass(frozen=True)
class AssetKind:
    """What differs between creating a dataset and a prompt template."""

    record: type  # the promptlab.types record the body is built into
    key: str  # the body's name in messages, and the answer's key
    title: str
    create: Callable[[Any, Any], None]  # the LocalTracer method that stores it
    answer: Tuple[str, ...]  # the fields the answer echoes, in the original's order
    no_nul: Tuple[str, ...] = ()


ASSET_KINDS = {
    AssetType.DATASET: AssetKind(Dataset, "dataset", "Dataset", LocalTracer.create_dataset,
                                 ("name", "version", "description", "file_path"),
                                 no_nul=("file_path",)),
    AssetType.PROMPT_TEMPLATE: AssetKind(
        PromptTemplate, "template", "Prompt template", LocalTracer.create_prompttemplate,
        ("name", "version", "description", "system_prompt", "user_prompt")),
}


class AssetHandlers(StudioState):
    """The ``/api/prompts``, ``/api/datasets``, ``/api/templates`` and ``/api/assets``
    routes.

    Part of ``StudioApp`` (``promptlab.studio.app``).
    """

    def get_prompts(self, request: Request, who: Principal) -> Dict[str, Any]:
        out = []
        for t in self.tracer.get_assets_by_type(AssetType.PROMPT_TEMPLATE):
            system, user = display_prompt_template(t.asset_binary)
            out.append({"asset_name": t.asset_name, "asset_description": t.asset_description,
                        "asset_version": t.asset_version, "asset_type": t.asset_type,
                        "created_at": iso(t.created_at), "system_prompt_template": system,
                        "user_prompt_template": user, "is_deployed": t.is_deployed,
                        "deployment_time": iso(t.deployment_time),
                        "user_id": username_of(t)})
        return {"prompt_templates": out}

    def get_datasets(self, request: Request, who: Principal) -> Dict[str, Any]:
        out = []
        for d in self.tracer.get_assets_by_type(AssetType.DATASET):
            file_path = d.file_path
            out.append({"asset_name": d.asset_name, "asset_description": d.asset_description,
                        "asset_version": d.asset_version, "asset_type": d.asset_type,
                        "created_at": iso(d.created_at), "file_path": file_path,
                        "user_id": username_of(d)})
        return {"datasets": out}

    def get_asset(self, request: Request, who: Principal) -> Dict[str, Any]:
        name = request.param("asset_name")
        raw_version = request.param("asset_version")
        if not name:
            raise ApiError(400, "asset_name is required")
        if raw_version is None:
            raise ApiError(400, "asset_version is required (-1 for the latest)")
        version = as_int(raw_version, "asset_version")
        if version == -1:
            asset = self.tracer.get_latest_asset(name)
        else:
            try:
                asset = self.tracer.get_asset(name, version)
            except ValueError:
                asset = None
        if asset is None:
            raise ApiError(404, f"Asset {name} with version {version} not found")
        return {"success": True, "asset": {
            "asset_name": asset.asset_name, "asset_version": asset.asset_version,
            "asset_description": asset.asset_description, "asset_type": asset.asset_type,
            "asset_binary": asset.asset_binary, "created_at": iso(asset.created_at),
            "user_id": asset.user_id, "is_deployed": asset.is_deployed,
            "deployment_time": iso(asset.deployment_time)}}

    def post_asset(self, request: Request, who: Principal, kind: "AssetKind") -> Dict[str, Any]:
        """Create one asset version from the JSON body, owned by the signed-in user."""
        asset = build(kind.record, request.json_object(), kind.key)
        check_asset(asset.name, asset.version, kind.key)
        for name in kind.no_nul:  # a path with NUL names no file
            if "\0" in getattr(asset, name):
                raise ApiError(400, f"{kind.key}.{name} holds a NUL character")
        asset.user = who.username
        try:
            kind.create(self.tracer, asset)
        except _core.IntegrityError:
            raise ApiError(409, f"{kind.title} {asset.name} version {asset.version} "
                                "already exists") from None
        return {"success": True, "message": f"{kind.title} created successfully",
                kind.key: {name: getattr(asset, name) for name in kind.answer}}

    def post_dataset(self, request: Request, who: Principal) -> Dict[str, Any]:
        return self.post_asset(request, who, ASSET_KINDS[AssetType.DATASET])

    def post_template(self, request: Request, who: Principal) -> Dict[str, Any]:
        return self.post_asset(request, who, ASSET_KINDS[AssetType.PROMPT_TEMPLATE])

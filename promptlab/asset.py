"""``pl.asset``: create, version and read prompt templates and datasets."""

from __future__ import annotations

import os
import re
from typing import Any, TypeVar, Union

from promptlab.enums import AssetType
from promptlab.types import Dataset, PromptTemplate

T = TypeVar("T", Dataset, PromptTemplate)

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*\Z")


class Asset:
    """Versioned assets over a tracer: version 0 from ``create``, the next from ``update``."""

    def __init__(self, tracer: Any) -> None:
        self.tracer = tracer

    @staticmethod
    def is_valid_name(name: str) -> bool:
        """A letter, then letters, digits, ``_`` or ``-`` (the original's rule)."""
        return isinstance(name, str) and bool(_NAME.match(name))

    def create(self, asset: T) -> T:
        """Store ``asset`` at its version (0 unless set) and return it.

        ValueError for an invalid name or a name and version that exist;
        FileNotFoundError for a dataset whose file is missing.
        """
        self._check(asset)
        if not self.is_valid_name(asset.name):
            raise ValueError(f"Invalid asset name {asset.name!r}: a name must begin with a "
                             "letter and use only letters, digits, underscore or hyphen.")
        if asset.version is None:
            asset.version = 0
        if self._exists(asset.name, asset.version):
            raise ValueError(f"Asset {asset.name!r} version {asset.version} already exists; "
                             "pl.asset.update(...) stores the next version.")
        return self._store(asset)

    def update(self, asset: T) -> T:
        """Store ``asset`` as the next version of its name and return it; fields left
        None are taken from the latest version. ValueError when there is no version
        yet or the latest one is of the other asset type."""
        self._check(asset)
        latest = self.tracer.get_latest_asset(asset.name)
        if latest is None:
            raise ValueError(f"There is no asset named {asset.name!r} to update; create it "
                             "with pl.asset.create(...) first.")
        kind = _type_of(asset)
        if latest.asset_type != kind.value:
            raise ValueError(f"Asset {asset.name!r} is a {latest.asset_type}, not a "
                             f"{kind.value}.")
        if asset.description is None:
            asset.description = latest.asset_description
        if isinstance(asset, PromptTemplate):
            system_prompt, user_prompt = latest.prompts()
            if asset.system_prompt is None:
                asset.system_prompt = system_prompt
            if asset.user_prompt is None:
                asset.user_prompt = user_prompt
        elif asset.file_path is None:
            asset.file_path = _file_of(latest)
        asset.version = latest.asset_version + 1
        return self._store(asset)

    def get(self, asset_name: str, version: int) -> Union[Dataset, PromptTemplate]:
        """The asset at ``version`` as a Dataset or PromptTemplate; ValueError when missing."""
        asset = self.tracer.get_asset(asset_name, version)
        if asset.asset_type == AssetType.DATASET.value:
            return Dataset(name=asset_name, version=asset.asset_version,
                           description=asset.asset_description,
                           file_path=_file_of(asset))
        if asset.asset_type == AssetType.PROMPT_TEMPLATE.value:
            system_prompt, user_prompt = asset.prompts()
            return PromptTemplate(name=asset_name, version=asset.asset_version,
                                  description=asset.asset_description,
                                  system_prompt=system_prompt, user_prompt=user_prompt)
        raise ValueError(f"Asset {asset_name!r} has an unknown type {asset.asset_type!r}.")

    # --- helpers -------------------------------------------------------------

    @staticmethod
    def _check(asset: Any) -> None:
        _type_of(asset)
        if isinstance(asset, Dataset) and asset.file_path is not None:
            if not os.path.isfile(asset.file_path):
                raise FileNotFoundError(f"Dataset {asset.name!r}: no file at "
                                        f"{asset.file_path!r}.")

    def _exists(self, name: str, version: int) -> bool:
        try:
            self.tracer.get_asset(name, version)
        except ValueError:
            return False
        return True

    def _store(self, asset: T) -> T:
        from promptlab.sqlite import IntegrityError

        try:
            if isinstance(asset, Dataset):
                # Absolute, so that experiments and the studio find the file from any folder.
                asset.file_path = os.path.abspath(asset.file_path)
                self.tracer.create_dataset(asset)
            else:
                self.tracer.create_prompttemplate(asset)
        except IntegrityError:  # written by another process since the check
            raise ValueError(f"Asset {asset.name!r} version {asset.version} already "
                             "exists.") from None
        return asset


def _file_of(asset: Any) -> str:
    """The file a stored dataset names; ValueError when its record names none."""
    if asset.file_path is None:
        raise ValueError(f"Dataset {asset.asset_name!r} version {asset.asset_version} "
                         "names no file.")
    return asset.file_path


def _type_of(asset: Any) -> AssetType:
    if isinstance(asset, Dataset):
        return AssetType.DATASET
    if isinstance(asset, PromptTemplate):
        return AssetType.PROMPT_TEMPLATE
    raise TypeError(f"Unsupported asset type: {type(asset).__name__} (a Dataset or "
                    "PromptTemplate)")

"""The tracer interface: where assets, experiments and users are recorded."""

from __future__ import annotations

from abc import ABC, abstractmethod

# Annotations only: a script that opens a tracer need not load the types and models.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional, Sequence

    from promptlab.sqlite.models import Asset, User
    from promptlab.types import Dataset, ExperimentConfig, PromptTemplate, TracerConfig


class Tracer(ABC):
    """Abstract tracer, with the method names of PromptLab 0.1.x."""

    # Not abstract: a subclass may call super().__init__(tracer_config), as in the original.
    def __init__(self, tracer_config: TracerConfig) -> None:  # noqa: B027
        pass

    @abstractmethod
    def create_dataset(self, dataset: Dataset) -> None: ...

    @abstractmethod
    def create_prompttemplate(self, template: PromptTemplate) -> None: ...

    @abstractmethod
    def trace_experiment(
        self, experiment_config: ExperimentConfig, experiment_summary: List[Dict[str, Any]]
    ) -> None: ...

    @abstractmethod
    def get_asset(self, asset_name: str, asset_version: int) -> Asset: ...

    @abstractmethod
    def get_assets_by_type(self, asset_type: str) -> List[Asset]: ...

    @abstractmethod
    def get_latest_asset(self, asset_name: str) -> Optional[Asset]: ...

    @abstractmethod
    def get_user_by_username(self, username: str) -> User: ...

    @abstractmethod
    def get_experiments(self, experiment_id: Optional[str] = None, *,
                        limit: Optional[int] = None, offset: int = 0) -> Sequence[Any]: ...

    @abstractmethod
    def get_users(self) -> List[User]: ...

    @abstractmethod
    def create_user(self, user: User) -> None: ...

    @abstractmethod
    def deactivate_user_by_username(self, username: str) -> None: ...

    @abstractmethod
    def me(self) -> User: ...

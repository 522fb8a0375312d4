"""Per-process state: settings, database, blob store and the (lazily loaded) analyzer.

Built once when a process starts (API start-up, Celery worker start and each
worker child), never at import, and passed to whoever needs it.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from cdat.analysis import PhotoAnalyzer
from cdat.errors import ConfigurationError, ModelUnavailable
from cdat.pipeline import AssessmentPolicy, load_policy
from cdat.settings import Settings
from mobile_api.storage.blobs import BlobStore, make_blob_store
from mobile_api.storage.db import make_engine, make_session_factory


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    blobs: BlobStore
    _analyzer: PhotoAnalyzer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _policy: AssessmentPolicy | None = None

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        engine = make_engine(settings.resolved_database_url)
        return cls(settings, engine, make_session_factory(engine), make_blob_store(settings))

    def analyzer(self) -> PhotoAnalyzer:
        """The process's analyzer, loaded on first use; ModelUnavailable if a model is missing."""
        with self._lock:
            if self._analyzer is None:
                self._analyzer = load_factory(self.settings.analyzer)(self.settings)
            return self._analyzer

    def policy(self) -> AssessmentPolicy:
        """Catalog, rules and triage policy, validated once per process."""
        with self._lock:
            if self._policy is None:
                self._policy = load_policy(self.settings)
            return self._policy

    def try_load_analyzer(self) -> str | None:
        """Load the analyzer now; return why it is unavailable, or None when it is ready."""
        try:
            self.analyzer()
        except ModelUnavailable as exc:
            return exc.message
        return None

    def dispose(self) -> None:
        self.engine.dispose()


def load_factory(path: str) -> Callable[[Settings], PhotoAnalyzer]:
    module_name, _, attribute = path.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"CDAT_ANALYZER={path!r} cannot be imported: {exc}") from exc
    if not callable(factory):
        raise ConfigurationError(f"CDAT_ANALYZER={path!r} is not callable")
    return factory


_current: Runtime | None = None


def install(runtime: Runtime) -> Runtime:
    global _current
    _current = runtime
    return runtime


def current() -> Runtime:
    if _current is None:
        raise RuntimeError("no runtime installed in this process; start it through the cdat CLI")
    return _current

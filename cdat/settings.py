"""The one typed settings object. Read once at start-up and passed in.

Every field can be set from the environment with the `CDAT_` prefix
(e.g. `CDAT_DATABASE_URL`), or from a `.env` file in the working directory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from cdat.errors import ConfigurationError
from cdat.whole_car import WholeCarRule

DEFAULT_SECRET = "insecure-development-secret-change-me"
SHIPPED_MODEL_DIR = Path(__file__).resolve().parent.parent / "inference" / "models"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CDAT_", env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    data_dir: Path = Path("var")
    """Embedded default home: SQLite database, broker, blobs."""

    database_url: str | None = None
    broker_url: str | None = None
    storage_backend: Literal["local", "s3"] = "local"
    s3_bucket: str = "cdat-photos"
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None

    secret_key: str = DEFAULT_SECRET
    ops_token: str | None = None
    """Bearer token for `/metrics` and `/readyz` in production (not served there without it)."""
    public_docs: bool = False
    """Serve `/docs`, `/redoc` and `/openapi.json` in production too (always served elsewhere)."""
    bootstrap_adjuster_token: str | None = None
    """When set, `cdat serve` ensures an adjuster with this API token exists (development aid)."""

    max_upload_bytes: int = 20 * 1024 * 1024
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    """Largest request body other than a photo upload (JSON, forms): 413 beyond it."""
    max_image_pixels: int = 50_000_000
    min_image_side: int = 64
    max_photos_per_claim: int = 40
    max_claim_pixels: int = Field(default=600_000_000, ge=1)
    """Pixels of all the photos on one claim together: bounds what a claim can make the
    workers decode, whatever the mix of photo sizes (413 beyond)."""
    photo_check_workers: int = Field(default=2, ge=1)
    """Photos one API process checks at once (header, bounded decode, location-free copy)."""
    photo_check_queue: int = Field(default=8, ge=0)
    """Photos waiting for a check beyond those; more get 503 with `Retry-After`."""
    max_photos_per_request: int = 12

    job_lease_seconds: float = 300.0
    job_max_attempts: int = 3
    job_retry_backoff_seconds: float = 2.0
    stale_job_scan_seconds: float = 15.0
    long_poll_max_seconds: float = 30.0
    idempotency_ttl_seconds: float = Field(default=24 * 3600, gt=0)
    """How long a retry with the same Idempotency-Key replays the first answer."""
    capture_session_hours: int = Field(default=48, ge=1, le=14 * 24)
    """How long a claimant stays signed in to the capture page (mobile_api.capture). Two days
    covers taking the photos, a retake the adjuster asks for, and most decisions, while a
    lost or shared phone does not keep a claim with a name, phone and policy open for
    weeks. After it, staff send a new one-time link (one button in the workspace)."""

    webhook_timeout_seconds: float = 5.0
    webhook_max_attempts: int = 6
    webhook_backoff_seconds: float = 5.0
    webhook_lease_seconds: float = Field(default=60.0, gt=0)
    """A worker's hold on a delivery it is sending; a dead worker's delivery is resent after it.
    Keep it above `webhook_timeout_seconds`."""
    webhook_allow_private: bool | None = None
    """May webhook URLs reach private, loopback or metadata addresses? Unset: only outside
    production. On-premises installs list their receivers in `webhook_allowed_hosts` instead."""
    webhook_allowed_hosts: list[str] = Field(default_factory=list)
    """Host names that may receive webhooks whatever they resolve to (JSON list in the env)."""

    upload_requests_per_minute: int = Field(default=30, ge=1)
    """Per claim: a phone on a retry loop cannot fill the disk."""
    claims_per_hour_per_address: int = Field(default=30, ge=1)
    """Claims opened per client address and hour: bounds what per-claim limits cannot."""
    signin_failures_per_address: int = Field(default=20, ge=1)
    """Failed sign-ins per client address (any accounts) per window: stops password spraying."""
    signin_failures_per_account: int = Field(default=30, ge=1)
    """Failed sign-ins per account (any addresses) per `signin_account_window_seconds`: slows
    guessing one password from many addresses. Larger than the address budget and short, so
    an attacker cannot lock the account's owner out for long."""
    signin_window_seconds: int = Field(default=300, ge=1)
    """The window of `signin_failures_per_address`."""
    signin_account_window_seconds: int = Field(default=60, ge=1)
    rate_limit_url: str | None = None
    """Where rate-limit counters live, e.g. `redis://redis:6379/1`, shared by every API replica.
    Unset: the broker when it is Redis, else each API process's memory (per-process limits)."""

    analyzer: str = "inference.loading:build_analyzer"
    """Import path of a factory `(Settings) -> PhotoAnalyzer`."""
    model_dir: Path = SHIPPED_MODEL_DIR
    onnx_threads: int = Field(default=2, ge=1)
    """CPU threads of the whole analyzer; with 2+, the damage and part models run side by side."""
    onnx_batch_size: int = Field(default=1, ge=1)
    """Photos per model call when a claim's photos are analysed together."""
    claim_photos_side_by_side: bool = False
    """With 2+ threads, a claim's photos run one per core, each through both models, instead
    of all photos through the two models side by side (not faster on the 2-core CI machine
    under load; see the README's performance section)."""
    inference_runtime: Literal["auto", "onnxruntime", "openvino"] = "auto"
    """Backend of both models. `auto`: chosen from the CPU's instruction sets at start-up
    (inference.runtime_choice); ONNX Runtime FP32 where nothing better passed."""
    inference_precision: Literal["auto", "fp32", "bf16", "int8", "bf16-fp32-head"] = "auto"
    """Pins the precision; served only where the model passed the precision gate in it (its
    registry entry's `precisions`), else FP32."""
    damage_conf: float | None = Field(default=None, gt=0.0, lt=1.0)
    """Lowest confidence at which a damage detection is reported. Unset: the promoted damage
    model's own threshold, chosen on its val split (`cdat threshold`) and recorded in its
    registry entry, so a newly promoted model is served as it was evaluated."""
    parts_conf: float | None = Field(default=None, gt=0.0, lt=1.0)
    """Lowest confidence at which a car part is reported (none found -> `no_vehicle`). Unset:
    the promoted part model's own threshold, as for damage."""
    nms_iou: float = Field(default=0.7, gt=0.0, le=1.0)
    damage_flip_tta: bool = False
    """Look at each photo a second time, mirrored, and report damage either view finds
    (inference/flip_tta.py): one more pass of the damage model per photo."""
    damage_crop_look: bool | None = None
    """Look at the middle of each photo a second time, magnified, and report damage either
    look finds (inference/crop_look.py): one more pass of the damage model per photo.
    Unset: as the promoted damage model was chosen and measured (`crop_look` in its
    registry entry)."""
    damage_verifier: bool = True
    """Where the promoted damage model has a damage verifier (`verifier` in its registry
    entry: cdat/verified.py), damage under the model's usual threshold is reported when the
    verifier confirms it. False: the model is served at the verifier rule's `base_conf` with
    no second look, as before."""
    damage_placer: bool = True
    """Where the promoted damage model has a damage placer (`placer` in its registry entry:
    a second head on its backbone that says which part each damage is on, cdat/placement.py),
    each damage takes the part the placer gives it. False: the damage model's own masks, as
    before."""
    part_family: bool = True
    """Where the promoted part model has a part-family stage (`family_stage` in its registry
    entry: a classifier on each damage's crop, inference/part_family.py), its confident answer
    overrules the part masks by the entry's rule. False: the masks alone, as before."""
    damage_whole_car: bool = True
    """On a photo of the whole car a damage needs a higher score than on a close-up, by the
    promoted damage model's own rule (`whole_car_rule` in its registry entry, chosen on val
    for its scores: cdat/whole_car.py). False: every damage at the served threshold is
    reported, whatever the view, as before the rule."""
    damage_calibration: bool = True
    """Each damage's score (`confidence`) is also read as the chance it is damage (`chance`)
    by the curves in the damage model's registry entry (`confidence_calibration`, fitted on
    val: cdat/calibration.py); triage, the estimate's range and the workspace read the
    chance. False, or an entry without curves: they read the score, which ranks damages but
    is no chance."""
    damage_whole_car_rule: WholeCarRule | None = None
    """The operator's whole-car rule over the model's own. JSON, e.g.
    `{"min_parts": 10, "whole_car_conf": 0.2}`. Unset: the promoted damage model's."""

    def whole_car_rule(self, model_rule: WholeCarRule | None) -> WholeCarRule | None:
        """The rule the analyzer applies: the operator's, else the model's; None when off."""
        if not self.damage_whole_car:
            return None
        return self.damage_whole_car_rule or model_rule

    # Estimating, total loss and triage (cdat.pipeline.load_policy; cdat/data/CATALOG.md).
    catalog_dir: Path | None = None
    """Insurer's own `catalogs/<CURRENCY>.yaml`, `rules.yaml`, `triage.yaml`; each file
    missing there falls back to the shipped default in `cdat/data/`."""
    currency: str = Field(default="INR", pattern=r"^[A-Za-z]{3}$")
    """ISO 4217 code; picks `catalogs/<CURRENCY>.yaml` (shipped: INR, USD)."""
    region: str = "default"
    """Region in that catalog: labour rates, tax, and the total-loss jurisdiction."""
    cache_dir: Path = Field(default_factory=lambda: _user_cache_dir())
    """What depends only on files and code and is slow to redo, remembered between
    processes: today, that a policy passed its load-time checks (seconds a `cdat assess`).
    Deleting it is always safe."""

    worker_concurrency: int = Field(default=1, ge=1)
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    trusted_proxies: list[str] = Field(default_factory=list)
    """Addresses or networks of the load balancers in front of `cdat serve` (JSON list in the
    env, e.g. `["10.0.0.0/8"]`): only their `X-Forwarded-For` and `X-Forwarded-Proto` are
    believed. Empty (the default): none, so no client can pick the address its rate limits
    count against, not even one on the same machine."""

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'cdat.sqlite3'}"

    @property
    def resolved_broker_url(self) -> str:
        return self.broker_url or f"sqla+sqlite:///{self.data_dir / 'broker.sqlite3'}"

    @property
    def max_upload_request_bytes(self) -> int:
        """A full upload request: every photo at its limit, plus room for the multipart framing."""
        return self.max_upload_bytes * self.max_photos_per_request + 64 * 1024

    @property
    def resolved_rate_limit_url(self) -> str:
        if self.rate_limit_url:
            return self.rate_limit_url
        if self.broker_url and self.broker_url.startswith(("redis://", "rediss://")):
            return self.broker_url
        return "memory://"

    @property
    def webhooks_may_reach_private(self) -> bool:
        if self.webhook_allow_private is None:
            return self.environment != "production"
        return self.webhook_allow_private

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    def check_production_ready(self) -> None:
        """Refuse to run production on development defaults."""
        if self.environment != "production":
            return
        problems = []
        if self.secret_key == DEFAULT_SECRET or len(self.secret_key) < 32:
            problems.append("CDAT_SECRET_KEY must be set to a random value of 32+ characters")
        if self.ops_token is not None and len(self.ops_token) < 32:
            problems.append("CDAT_OPS_TOKEN must be a random value of 32+ characters")
        if self.bootstrap_adjuster_token:
            problems.append("CDAT_BOOTSTRAP_ADJUSTER_TOKEN must not be set in production")
        if problems:
            raise ConfigurationError("refusing to start in production: " + "; ".join(problems))


def _user_cache_dir() -> Path:
    """The XDG cache home's `cdat` folder, as pip and ruff keep theirs."""
    home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(home) / "cdat"

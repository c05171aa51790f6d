"""Settings for the whole registry, read once from the environment (prefix CLEARHOUSE_).

Code inside registry/ receives settings values as arguments; only the doors (api/, bench/,
scripts) call get_settings().
"""

from __future__ import annotations

import functools
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MEBIBYTE = 1024 * 1024


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLEARHOUSE_", env_file=".env", extra="ignore")

    home: Path = Path(".clearhouse")
    database_url: str | None = None  # default: SQLite file under home
    # The licence policy files: CLEARHOUSE_POLICIES_DIR, else `policies/` inside the home (never
    # the working directory: the same registry must see the same policies from any folder).
    policies_dir: Path = Field(default_factory=lambda data: Path(data["home"]) / "policies")
    # Largest accepted upload or imported file. 50 MiB holds any still a studio registers.
    max_upload_bytes: int = Field(default=50 * MEBIBYTE, gt=0)
    # Pixel limit against decompression bombs: 100 MP is above any camera still in use.
    max_image_pixels: int = Field(default=100_000_000, gt=0)
    # Files a caller only asks about (match, verify) are held to a lower limit than catalog
    # imports: decoding one costs about 3 bytes per pixel, whoever sends it.
    max_query_pixels: int = Field(default=40_000_000, gt=0)
    pdq_match_distance: int = Field(default=31, ge=0, le=256)  # PDQ reference threshold
    # Roots under which the API may read server-side dataset paths (clearance).
    allowed_roots: list[Path] = Field(default_factory=list)
    # C2PA signing: a user's own chain and key; by default keys are made under home/keys.
    signing_cert: Path | None = None
    signing_key: Path | None = None
    trust_anchors: Path | None = None
    # The studio named in recovered manifests ("this is <studio>'s generated image"); default:
    # the signing certificate's organisation.
    studio_name: str | None = None
    # The training permissions signed on outputs with no catalog ingredient (the studio's
    # reservation), in the `--training` syntax: ["notAllowed"] reserves every use;
    # ["notAllowed", "ai_inference=allowed"] allows one. A JSON list in the environment.
    default_training_mining: list[str] = Field(default_factory=lambda: ["notAllowed"])
    # Soft Binding Resolution API: requests per minute per API key.
    sbr_requests_per_minute: int = Field(default=120, gt=0)
    # Worker processes one clearance job may use (also capped by the CPU count).
    max_workers: int = Field(default=4, ge=1, le=256)
    # `clearhouse serve` finishes clearance jobs that a killed server left unfinished.
    resume_jobs_on_start: bool = True
    # Who runs the clearance jobs the API accepts. True: the API process itself (one process,
    # the SQLite default); False: the API only enqueues and `clearhouse worker` processes run
    # them (the PostgreSQL default: several workers, several machines). None: by the database.
    embedded_worker: bool | None = None
    # A worker renews its job's lease every third of this; a dead worker's job is taken over
    # by another once the lease has run out.
    worker_lease_s: float = Field(default=30.0, gt=0)
    # Engine "ray": the Ray cluster to join (e.g. "auto" or "ray://head:10001"); None starts a
    # local Ray runtime in the worker.
    ray_address: str | None = None

    @field_validator("database_url")
    @classmethod
    def _known_driver(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("sqlite", "postgresql")):
            raise ValueError("CLEARHOUSE_DATABASE_URL must be a sqlite:// or postgresql:// URL")
        return value

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'clearhouse.db').resolve()}"

    @property
    def runs_jobs_in_api(self) -> bool:
        if self.embedded_worker is not None:
            return self.embedded_worker
        return self.resolved_database_url.startswith("sqlite")

    @property
    def blobs_dir(self) -> Path:
        return self.home / "blobs"

    @property
    def query_pixels(self) -> int:
        return min(self.max_query_pixels, self.max_image_pixels)

    @property
    def thumbnails_dir(self) -> Path:
        return self.home / "thumbnails"

    @property
    def keys_dir(self) -> Path:
        return self.home / "keys"

    @property
    def jobs_dir(self) -> Path:
        return self.home / "jobs"


@functools.lru_cache
def get_settings() -> Settings:
    return Settings()

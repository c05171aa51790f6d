"""Console clearances: the jobs with live progress, a job's page, the review queue, certificates."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()

"""The /moderation router; filled in by the moderation pipeline."""

from fastapi import APIRouter, Depends

from modwatch.api.deps import require_api_key

router = APIRouter(prefix="/moderation", tags=["moderation"], dependencies=[Depends(require_api_key)])

"""Who may do what: API keys with one role each."""

from registry.access.models import ApiKey, Role
from registry.access.service import (
    authenticate,
    create_api_key,
    list_api_keys,
    require_role,
    revoke_api_key,
)

__all__ = [
    "ApiKey",
    "Role",
    "authenticate",
    "create_api_key",
    "list_api_keys",
    "require_role",
    "revoke_api_key",
]

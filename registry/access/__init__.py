"""Who may do what: API keys with one role each."""

from registry.access.models import ApiKey, ConsoleSession, Role
from registry.access.service import (
    authenticate,
    create_api_key,
    list_api_keys,
    require_role,
    revoke_api_key,
)
from registry.access.sessions import end_session, find_session, start_session

__all__ = [
    "ApiKey",
    "ConsoleSession",
    "Role",
    "authenticate",
    "create_api_key",
    "end_session",
    "find_session",
    "list_api_keys",
    "require_role",
    "revoke_api_key",
    "start_session",
]

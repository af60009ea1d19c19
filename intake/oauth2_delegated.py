"""Delegated OAuth2 (``[mailbox] oauth2_flow = "device_code"``), for tenants that refuse app
permissions: a person signs in once with the device-code flow (``story-intake authorize``),
and the worker then gets access tokens with the refresh token kept in the token cache file.
Imports only ``intake``.

MSAL's ``PublicClientApplication`` does the protocol and keeps the tokens in a
``SerializableTokenCache``; this module keeps that cache in the file (``intake.oauth2_cache``)
and writes it back every time MSAL changed it, so a refresh token the provider rotated is
never lost. The file is read again before each token, so a new ``authorize`` takes effect
without restarting the worker. A missing, expired or revoked refresh token is a TokenError
saying to run ``authorize`` again.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msal
import requests

from intake.errors import TokenError
from intake.oauth2 import (
    AccessToken,
    OAuth2Settings,
    TokenProvider,
    _refused,
    _session,
    msal_authority,
    msal_token,
)
from intake.oauth2_cache import CacheFile, read_cache, write_cache

AGAIN = "run `story-intake authorize` again"


class DelegatedTokenProvider(TokenProvider):
    """Access tokens for the person who ran ``authorize``, from the cache file at ``cache``."""

    def __init__(self, settings: OAuth2Settings, cache: Path) -> None:
        super().__init__(settings)
        self.cache_path = cache
        self.refresh_expires_at: datetime | None = None  # when the provider said so
        self._cache = msal.SerializableTokenCache()

    def credential_expiry(self) -> dict[str, datetime]:
        """When the refresh token expires, if the provider said (for status and alerts)."""
        return {"refresh_token": self.refresh_expires_at} if self.refresh_expires_at else {}

    def authorize(self, tell: Callable[[str], None]) -> datetime | None:
        """Run the device-code flow: ``tell`` the person where to go and which code to type,
        wait until they have signed in, and write a fresh cache. Returns when the refresh
        token expires (None: the provider did not say)."""
        s = self.settings
        with self._lock:
            self._cache = msal.SerializableTokenCache()  # a new sign-in replaces the old one
            self._app = None
            try:
                app = self._application()
                flow = app.initiate_device_flow(scopes=self._scopes())
                if "user_code" not in flow:
                    raise TokenError(_refused(s, flow))
                where = flow.get("verification_uri")
                tell(str(flow.get("message") or f"Open {where}, enter {flow['user_code']}"))
                result = app.acquire_token_by_device_flow(flow)
            except requests.RequestException as err:
                raise TokenError(f"oauth2 ({s.provider}): cannot reach the provider: "
                                 f"{type(err).__name__}") from None  # fmt: skip
            if not isinstance(result, dict) or "access_token" not in result:
                raise TokenError(_refused(s, result if isinstance(result, dict) else {}))
            self._persist(result)
            return self.refresh_expires_at

    def _msal(self) -> AccessToken:
        """A token from the cache, refreshed with the refresh token when it is near its end
        (MSAL's rule); the cache written back whenever that changed it. Called under the
        lock by ``token``, which turns transport errors into TokenError."""
        s = self.settings
        stored = read_cache(self.cache_path)
        if stored is None:
            raise TokenError(f"oauth2 ({s.provider}): no token cache at {self.cache_path}: "
                             f"{AGAIN}")  # fmt: skip
        self._cache.deserialize(stored.msal_cache)
        self._cache.has_state_changed = False
        self.refresh_expires_at = stored.refresh_expires_at
        app = self._application()
        accounts = app.get_accounts()
        if not accounts:
            raise TokenError(f"oauth2 ({s.provider}): the token cache holds no sign-in: {AGAIN}")
        result = app.acquire_token_silent_with_error(self._scopes(), account=accounts[0])
        if isinstance(result, dict):
            self._persist(result)
        if not isinstance(result, dict) or "access_token" not in result:
            why = _refused(s, result if isinstance(result, dict) else {"error": "no token"})
            raise TokenError(f"{why}: the refresh token is missing or expired: {AGAIN}")
        return msal_token(result)

    def _application(self) -> Any:
        s = self.settings
        if self._app is None:
            self._app = msal.PublicClientApplication(
                s.client_id, token_cache=self._cache,
                http_client=_session(s.ca_file, s.timeout), **msal_authority(s),
            )  # fmt: skip
        return self._app

    def _scopes(self) -> list[str]:
        return self.settings.scope.split()

    def _persist(self, result: dict[str, Any]) -> None:
        """Write the cache back if MSAL changed it (a new or rotated refresh token), with the
        refresh token's expiry when the provider gave one."""
        if "refresh_token_expires_in" in result:
            seconds = int(result["refresh_token_expires_in"])
            self.refresh_expires_at = datetime.now(UTC) + timedelta(seconds=seconds)
        elif result.get("refresh_token"):  # rotated, and the provider said nothing of its end
            self.refresh_expires_at = None
        if self._cache.has_state_changed:
            write_cache(self.cache_path, CacheFile(self._cache.serialize(),
                                                   self.refresh_expires_at))  # fmt: skip
            self._cache.has_state_changed = False

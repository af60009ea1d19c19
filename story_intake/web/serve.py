"""``story-intake serve``: the review page under uvicorn, bound to loopback by default.

Behind a TLS reverse proxy on the same host, uvicorn takes the client's address from
X-Forwarded-For only when the proxy is on 127.0.0.1 (``forwarded_allow_ips``), so login
throttling per address sees the real client.
"""

from __future__ import annotations

import logging

import uvicorn

from intake.store.engine import Store
from story_intake.app_settings import Settings
from story_intake.web.app import build_app

log = logging.getLogger(__name__)


def serve(settings: Settings, host: str, port: int) -> int:
    """Serve until SIGINT/SIGTERM; returns the exit code."""
    with Store(settings.store) as store:
        app = build_app(settings, store)
        log.info("review page on http://%s:%d", host, port)
        # No access log: paths and query strings name stories (references, searches).
        uvicorn.run(
            app,
            host=host,
            port=port,
            access_log=False,
            server_header=False,
            proxy_headers=True,
            forwarded_allow_ips="127.0.0.1",
            log_level="warning",
        )
    return 0

"""The operators' web console, served by the admin API process under /console/: overview,
mailboxes, runs and servers as server-rendered pages, behind a session opened with the API
token. It calls the operations the CLI and the API call (`sync_service.operator`)."""

from sync_service.console.base import PREFIX, is_console_path
from sync_service.console.site import console_app, mount

__all__ = ["PREFIX", "console_app", "is_console_path", "mount"]

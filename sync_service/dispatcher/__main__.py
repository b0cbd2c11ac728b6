"""`python -m sync_service.dispatcher`: `sync-service run` with the dispatcher role wired in."""

import sys

import uvloop

from sync_service.config import ConfigError, load_settings
from sync_service.dispatcher.service import run_dispatching_service
from sync_service.logs import setup_logging


def main() -> int:
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"sync-service: invalid configuration: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.logging.log_level, settings.logging.log_format)
    uvloop.run(run_dispatching_service(settings))
    return 0


sys.exit(main())

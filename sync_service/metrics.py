"""Every Prometheus metric of the service, in one place, with bounded labels only.

Labels: server (a configured sync target), operation, outcome, kind, entity, direction, state.
Never a mailbox, a user, an item id or an error message.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

# Process and platform metrics (CPU, memory, file descriptors, GC) in the same registry.
from prometheus_client import (  # noqa: E402
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
)

for _collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
    REGISTRY.register(_collector)

PASSES = Counter(
    "sync_passes_total",
    "Passes run, by kind and outcome.",
    ["kind", "outcome"],
    registry=REGISTRY,
)
PASS_DURATION = Histogram(
    "sync_pass_duration_seconds",
    "Duration of one pass.",
    ["kind"],
    registry=REGISTRY,
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 1800),
)
ITEMS_WRITTEN = Counter(
    "sync_items_written_total",
    "Items written, by entity, direction and operation.",
    ["entity", "direction", "operation"],
    registry=REGISTRY,
)
ITEM_ERRORS = Counter(
    "sync_item_errors_total",
    "Items refused by the other side and skipped.",
    ["entity", "direction"],
    registry=REGISTRY,
)
EXCHANGE_REQUESTS = Counter(
    "sync_exchange_requests_total",
    "Requests to Exchange, by server, operation and outcome.",
    ["server", "operation", "outcome"],
    registry=REGISTRY,
)
EXCHANGE_REQUEST_DURATION = Histogram(
    "sync_exchange_request_duration_seconds",
    "Duration of one Exchange request.",
    ["server"],
    registry=REGISTRY,
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
THROTTLED = Counter(
    "sync_throttled_responses_total",
    "Throttling answers from Exchange, by server.",
    ["server"],
    registry=REGISTRY,
)
BACKOFF_SECONDS = Counter(
    "sync_throttle_backoff_seconds_total",
    "Back-off time imposed by Exchange, by server.",
    ["server"],
    registry=REGISTRY,
)
LIMITER_WAIT = Histogram(
    "sync_limiter_wait_seconds",
    "Time a request waited for the per-server limiter.",
    ["server"],
    registry=REGISTRY,
    buckets=(0.001, 0.01, 0.05, 0.1, 0.5, 1, 5, 30),
)
JOBS_QUEUED = Gauge("sync_jobs_queued", "Jobs waiting in the queue.", registry=REGISTRY)
JOBS_RUNNING = Gauge("sync_jobs_running", "Jobs being run by any engine.", registry=REGISTRY)
JOB_AGE = Gauge(
    "sync_job_oldest_queued_seconds", "Age of the oldest queued job.", registry=REGISTRY
)
MAILBOXES = Gauge("sync_mailboxes", "Mailboxes by state.", ["state"], registry=REGISTRY)
ITEM_ERRORS_OPEN = Gauge(
    "sync_item_errors_open",
    "Item errors neither acknowledged nor retried, by entity and kind (refused: a write the "
    "other side refused, skipped until the item changes; ambiguous_match: an initial match "
    "with several candidates, each item created on the other side).",
    ["entity", "kind"],
    registry=REGISTRY,
)
CHANGE_LAG = Histogram(
    "sync_change_lag_seconds",
    "Time from a change on one side to its arrival on the other.",
    ["entity"],
    registry=REGISTRY,
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)
DISPATCHER_LEADER = Gauge(
    "sync_dispatcher_leader", "1 when this replica is the active dispatcher.", registry=REGISTRY
)
ACTIVE_PASSES = Gauge("sync_active_passes", "Passes running in this replica.", registry=REGISTRY)
# The database-backed gauges above (queue, mailboxes) are refreshed on a timer, not per scrape:
# these two say whether that timer still succeeds, so a stale value is visible as such.
METRICS_REFRESHED = Gauge(
    "sync_metrics_refreshed_timestamp_seconds",
    "When the database-backed gauges were last refreshed successfully (Unix time; 0: never).",
    registry=REGISTRY,
)
METRICS_REFRESHES = Counter(
    "sync_metrics_refreshes_total",
    "Refreshes of the database-backed gauges, by outcome (ok, failed).",
    ["outcome"],
    registry=REGISTRY,
)
for _outcome in ("ok", "failed"):  # both series exist from the start, at 0
    METRICS_REFRESHES.labels(outcome=_outcome)

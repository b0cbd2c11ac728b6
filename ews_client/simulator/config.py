"""Simulator configuration: throttling policy, latency and fault probabilities.

Default throttling numbers (per target mailbox, as Exchange Online counts them):
- 27 concurrent requests (`EWSMaxConcurrency`), else a SOAP fault `ErrorExceededConnectionCount`.
- 5 concurrent SyncFolderItems (`ConcurrentSyncCalls`), else a per-message `ErrorServerBusy`.
- A recharging budget of request units: `burst` 200 units, recharging at 40 units/s; each
  request costs 1 unit plus 0.05 per item it returns or writes. A client that spreads its work
  (an express pass is a handful of requests; an initial sync of 1,000 items in 50-item GetItem
  batches costs ~70 units) never runs dry; one that hammers a single mailbox with hundreds of
  requests per second does, and gets `ErrorServerBusy` with the time to recharge
  `backoff_units` (20 units = 0.5 s) as `BackOffMilliseconds`.
- A request that arrives while its mailbox is backing off is refused again and counted as an
  early retry (requests arriving within `early_retry_grace_s` of the back-off being handed out
  are refused but not counted: they were already on the wire).
"""

from __future__ import annotations

from dataclasses import dataclass, field

FAULT_KINDS = ("soap_fault", "http_503", "reset", "slow", "truncated", "invalid_xml")
# What the sync service calls: contacts, calendar, To Do, and its marker (an open extension
# on the user). ews_client/PROTOCOL_NOTES.md, "Graph permissions".
GRAPH_ROLES = ("Contacts.ReadWrite", "Calendars.ReadWrite", "Tasks.ReadWrite.All",
               "User.ReadWrite.All")  # fmt: skip
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
TOKEN_RESOURCES = (
    "https://graph.microsoft.com",
    "https://graph.microsoft.us",
    "https://dod-graph.microsoft.us",
    "https://microsoftgraph.chinacloudapi.cn",
    "https://outlook.office365.com",
    "https://outlook.office365.us",
    "https://partner.outlook.cn",
)


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    enabled: bool = True
    max_concurrency: int = 27
    max_sync_concurrency: int = 5
    burst: float = 200.0
    recharge_per_s: float = 40.0
    item_cost: float = 0.05
    backoff_units: float = 20.0
    sync_busy_backoff_ms: int = 250
    early_retry_grace_s: float = 0.05
    # Front end: more than this many requests in flight server-wide answer 503 + Retry-After.
    frontend_max_inflight: int | None = None
    frontend_retry_after_s: int = 1


@dataclass(frozen=True, slots=True)
class GraphPolicy:
    """Microsoft Graph (Outlook resources): per app per mailbox 4 concurrent requests and
    10,000 requests per 10 minutes, else 429 with Retry-After; delta tokens expire."""

    throttle: bool = True
    max_concurrency: int = 4
    window_requests: int = 10_000
    window_s: float = 600.0
    concurrency_retry_after_s: float = 1.0
    early_retry_grace_s: float = 0.05
    delta_max_age_s: float = 7 * 86400.0
    page_size: int = 100
    tenant: str = "sim-tenant"
    # The directory's id: the `tid` of its tokens; the authority answers to it as to `tenant`.
    tenant_id: str = "5a1d0000-0000-4000-8000-000000007e1d"
    client_id: str = "00000000-0000-4000-8000-00000000c11e"
    client_secret: str = "sim-graph-secret"  # noqa: S105 - a test double's credential
    # PEM certificates registered as the app's credentials besides the secret (their keys
    # sign the client assertion; `graph/credentials.py` makes such a pair).
    client_certificates: tuple[str, ...] = ()
    token_lifetime_s: int = 3600
    # The application permissions (app roles) an admin granted: the `roles` of every token.
    roles: tuple[str, ...] = GRAPH_ROLES
    # Resources the token endpoint issues tokens for (scope "<resource>/.default").
    resources: tuple[str, ...] = TOKEN_RESOURCES
    # The `aud` values the Graph endpoint accepts: its URI or its application id.
    audiences: tuple[str, ...] = ("https://graph.microsoft.com", GRAPH_APP_ID)
    max_subscription_minutes: int = 10080  # Outlook resources: at most 7 days
    validation_timeout_s: float = 10.0


@dataclass(frozen=True, slots=True)
class LatencyConfig:
    base_s: float = 0.0
    per_item_s: float = 0.0


@dataclass(frozen=True, slots=True)
class FaultConfig:
    probabilities: dict[str, float] = field(default_factory=dict)  # kind -> 0..1
    slow_s: float = 120.0  # "slower than the client's timeout"
    seed: int | None = None


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    username: str = "svc-sync@sim.example"
    password: str = "sim-password"  # noqa: S105 - a test double's well-known credential
    # The HTTP authentication schemes the EWS endpoint offers in its 401 answers and accepts,
    # as an Exchange virtual directory with Windows (Negotiate, NTLM) and Basic authentication.
    ews_auth_schemes: tuple[str, ...] = ("Negotiate", "NTLM", "Basic")
    # The service account's Windows logon names for NTLM and Negotiate (down-level
    # DOMAIN\user, and the UPN); its password is `password`, as for Basic.
    ntlm_users: tuple[str, ...] = ("SIM\\svc-sync", "svc-sync@sim.example")
    # TLS only: the PEM of the certificate the endpoint serves. When set, an NTLM logon must
    # carry the connection's channel binding (Exchange's Extended Protection).
    extended_protection_cert: str | None = None
    # None: the service account may impersonate every mailbox.
    impersonable: frozenset[str] | None = None
    # Mailboxes whose impersonation is refused, being moved, moved away (start-up values of
    # the admin API's settings; mailbox_access.py).
    impersonation_refused: frozenset[str] = frozenset()
    moving: frozenset[str] = frozenset()
    moved: frozenset[str] = frozenset()
    throttle: ThrottlePolicy = field(default_factory=ThrottlePolicy)
    latency: LatencyConfig = field(default_factory=LatencyConfig)
    faults: FaultConfig = field(default_factory=FaultConfig)
    validate_requests: bool = True
    # Tests: check every response child against the XSD and count failures.
    validate_responses: bool = False
    # Named-property definitions per mailbox per property-set GUID, and in all.
    named_props_per_guid: int = 3277
    named_props_total: int = 16384
    max_subscriptions_per_mailbox: int = 20
    max_ids_per_stream: int = 200
    heartbeat_s: float = 5.0
    # Length of one "minute" of GetStreamingEvents' ConnectionTimeout (tests shrink it).
    stream_minute_s: float = 60.0
    secret: bytes = b"ews-simulator"
    graph: GraphPolicy = field(default_factory=GraphPolicy)

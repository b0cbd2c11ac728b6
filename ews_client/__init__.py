"""An async client for Microsoft Exchange: EWS (Exchange Server) and Microsoft Graph
(Exchange Online) behind one `ExchangeBackend` interface and one item model.

This module is the public face: other packages (the sync service, the benchmarks, the demo)
import from `ews_client` only the names in `__all__`:

- the item model and the backend interface (`ews_client.models`);
- the errors, one root `ExchangeError`, sorted by what the caller can do
  (`ews_client.errors`);
- the clients `EwsClient` and `GraphClient` with their limits, auth (Basic, NTLM/Negotiate,
  OAuth), scopes and outbound policy (`ews_client.io`);
- the few protocol values the service's streaming dispatcher handles itself
  (`StreamBatch`, `folder_for`).

Inside, `ews/` and `graph/` are sans-I/O (builders, parsers, wire models), `io/` sends
them over aiohttp, and `simulator/` is a separate test double that is not exported here.
Protocol facts the code relies on, with their sources: `ews_client/PROTOCOL_NOTES.md`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ews_client.errors import (
        AuthError,
        ConflictError,
        ExchangeError,
        FolderNotFoundError,
        InvalidSyncStateError,
        ItemNotFoundError,
        ItemRejectedError,
        MailboxError,
        OutboundRefusedError,
        ProtocolError,
        QuotaExceededError,
        ThrottledError,
        TransientError,
    )
    from ews_client.ews.convert import folder_for
    from ews_client.ews.notifications import StreamBatch
    from ews_client.graph.calendar_delta import EventWindow
    from ews_client.io.auth import EWS_SCOPE, Auth, BasicAuth, OAuthClientCredentials
    from ews_client.io.ews import EwsClient
    from ews_client.io.graph import GRAPH_LIMITS, GRAPH_ROOT, GRAPH_SCOPE, GraphClient, Subscription
    from ews_client.io.ntlm import WindowsAuth
    from ews_client.io.outbound import OutboundPolicy
    from ews_client.io.throttle import ThrottleLimits
    from ews_client.io.transport import TransportLimits
    from ews_client.models import (
        Appointment,
        Attendee,
        Change,
        Contact,
        EntityKind,
        ExchangeBackend,
        FolderChoice,
        Importance,
        Item,
        ItemRef,
        KnownKeys,
        LinkedFolder,
        ModifiedOccurrence,
        PostalAddress,
        Recurrence,
        Removal,
        Sensitivity,
        SyncMarker,
        SyncResult,
        Task,
        TaskStatus,
        Upsert,
    )

__all__ = [
    "EWS_SCOPE",
    "GRAPH_LIMITS",
    "GRAPH_ROOT",
    "GRAPH_SCOPE",
    "Appointment",
    "Attendee",
    "Auth",
    "AuthError",
    "BasicAuth",
    "Change",
    "ConflictError",
    "Contact",
    "EntityKind",
    "EventWindow",
    "EwsClient",
    "ExchangeBackend",
    "ExchangeError",
    "FolderChoice",
    "FolderNotFoundError",
    "GraphClient",
    "Importance",
    "InvalidSyncStateError",
    "Item",
    "ItemNotFoundError",
    "ItemRef",
    "ItemRejectedError",
    "KnownKeys",
    "LinkedFolder",
    "MailboxError",
    "ModifiedOccurrence",
    "OAuthClientCredentials",
    "OutboundPolicy",
    "OutboundRefusedError",
    "PostalAddress",
    "ProtocolError",
    "QuotaExceededError",
    "Recurrence",
    "Removal",
    "Sensitivity",
    "StreamBatch",
    "Subscription",
    "SyncMarker",
    "SyncResult",
    "Task",
    "TaskStatus",
    "ThrottleLimits",
    "ThrottledError",
    "TransientError",
    "TransportLimits",
    "Upsert",
    "WindowsAuth",
    "folder_for",
]

# Where the names live, neutral modules first. The names load on first use (PEP 562), so that
# importing `ews_client.models` alone -- the planning core and the simulator do -- does not load
# the clients and their I/O libraries (aiohttp, msal).
_HOMES = (
    "ews_client.models",
    "ews_client.errors",
    "ews_client.ews.convert",
    "ews_client.ews.notifications",
    "ews_client.graph.calendar_delta",
    "ews_client.io.auth",
    "ews_client.io.ntlm",
    "ews_client.io.outbound",
    "ews_client.io.throttle",
    "ews_client.io.transport",
    "ews_client.io.ews",
    "ews_client.io.graph",
)


def __getattr__(name: str) -> object:
    if name in __all__:
        for home in _HOMES:
            found = vars(importlib.import_module(home))
            if name in found:
                globals()[name] = found[name]
                return found[name]
    raise AttributeError(f"module 'ews_client' has no attribute {name!r}")

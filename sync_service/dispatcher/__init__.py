"""The dispatcher: decides which mailbox needs which pass and when (one leader per deployment).

`run_dispatcher(pool, settings, stop)` is the whole role; the pieces are usable alone:
`schedule` (pure rules), `sweeps.Sweeper` (schedule tick), `crm_feed.CrmFeed` (CRM changes),
`push.PushManager` (EWS streaming), `graph_push.GraphPushManager` (Graph notifications).
"""

from sync_service.dispatcher.leader import run_dispatcher

__all__ = ["run_dispatcher"]

"""Running passes (the `engine` role): workers claim jobs, the runner runs one mailbox pass
under its limits, the pass reads both sides, plans with `sync_service.planning` and the
applier writes; `backends` opens an Exchange client per configured server.
"""

"""Run one claimed job: load the mailbox, run its pass, sort failures, record the run."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ews_client import (
    AuthError,
    EntityKind,
    ExchangeError,
    MailboxError,
    OutboundRefusedError,
    QuotaExceededError,
    ThrottledError,
)
from sync_service import metrics
from sync_service.config import ConfigError, Settings
from sync_service.crm.port import CrmPort
from sync_service.db.links import LinkStore, RunEnd
from sync_service.db.queue import Job, JobQueue, PassKind, Priority, entity_scope
from sync_service.db.run_plans import RunPlans
from sync_service.db.store import MailboxState, Store
from sync_service.planning.guards import GuardError, GuardLimits
from sync_service.planning.policy import ConflictPolicy, Policy
from sync_service.planning.render import plan_document, render
from sync_service.runtime.backends import PASS_STATS, Backends, RequestStats, UnsupportedBackend
from sync_service.runtime.moved import mark_moved, moved_away
from sync_service.runtime.passes import MailboxPass, MarkerMismatch, PassOptions, PassReport
from sync_service.runtime.worker import DATABASE_DOWN, Done, JobResult, RetryLater

log = logging.getLogger("sync_service.runtime.runner")
# Failures that no retry can fix: the mailbox is disabled with the reason until an operator acts.
# A refused redirect or address does not heal by retrying: the server's settings must change.
PERMANENT = (
    MailboxError,
    AuthError,
    QuotaExceededError,
    UnsupportedBackend,
    ConfigError,
    OutboundRefusedError,
)


@dataclass(slots=True)
class _Run:
    job: Job
    run_id: int
    kind: PassKind  # what runs (and is recorded): a first express pass runs as initial
    started: float
    stats: RequestStats


class PassRunner:
    """The worker's `run_pass`: one job in, one JobResult out; every outcome recorded."""

    def __init__(
        self,
        store: Store,
        queue: JobQueue,
        backends: Backends,
        crm: CrmPort,
        settings: Settings,
        engine: str,
    ) -> None:
        self.store = store
        self.links = LinkStore(store.pool)
        self.plans = RunPlans(store.pool)
        self.queue = queue
        self.backends = backends
        self.crm = crm
        self.settings = settings
        self.engine = engine
        self.policies = conflict_policies(settings)
        self.limits = GuardLimits(
            settings.limits.delete_guard_share, settings.limits.delete_guard_count
        )

    async def __call__(self, job: Job) -> JobResult:
        begun = await self.links.begin_run(
            job.mailbox_id, job.id, job.kind.value, job.dry_run, self.engine, job.entities
        )
        if begun is None:
            return Done("mailbox removed")
        mailbox = begun.mailbox
        run = _Run(job, begun.run_id, PassKind(begun.kind), time.perf_counter(), RequestStats())
        token = PASS_STATS.set(run.stats)
        try:
            server = await self.store.server(mailbox.server_id)
            assert server is not None
            backend = await self.backends.get(server)
            options = PassOptions(
                run.kind,
                job.dry_run,
                job.forced,
                self.limits,
                self.policies,
                run.run_id,
                self.settings.field_map,
                job.entities,
                owner_delete=self.settings.conflicts.shared_owner_delete,
            )
            report = await MailboxPass(
                mailbox, backend, self.crm, self.store, self.links, options
            ).run()
        except GuardError as exc:
            await self.store.set_mailbox_state(
                mailbox.id, MailboxState.QUARANTINED, exc.summary[:2000]
            )
            return await self._end(run, "guarded", str(exc), failed=True)
        except MarkerMismatch as exc:
            await self.store.set_mailbox_state(mailbox.id, MailboxState.NEEDS_RECOVERY, str(exc))
            if self.settings.schedule.auto_recover:
                await self.queue.enqueue(
                    mailbox.id, PassKind.RECOVER, source="auto-recover", priority=Priority.OPERATOR
                )
            return await self._end(run, "failed", str(exc), failed=True)
        except PERMANENT as exc:
            if moved_away(exc):
                # Not a failure of the mailbox: it lives elsewhere now. Its own state (no
                # schedule picks it) and a run that ends "moved", not "failed"; the reason
                # names the command to run (`mailboxes move`).
                return await self._end(run, "moved", await mark_moved(self.store, mailbox, exc))
            reason = f"{type(exc).__name__}: {exc}"
            log.warning("mailbox disabled", extra={"mailbox": mailbox.email, "error": reason})
            await self.store.set_mailbox_state(mailbox.id, MailboxState.DISABLED, reason[:2000])
            return await self._end(run, "failed", reason, failed=True)
        except (ExchangeError, OSError, TimeoutError) as exc:
            return await self._transient(run, mailbox.id, exc)
        except DATABASE_DOWN:
            # The state database went away under the pass: nothing can be recorded now; the
            # worker records the run as transient once the database answers again.
            raise
        except Exception as exc:
            # Not an expected failure (a bug, a CRM error): counted like a transient one, so the
            # pass is retried and a mailbox that keeps failing ends disabled with the reason.
            log.exception("pass failed unexpectedly", extra={"mailbox": mailbox.email})
            return await self._transient(run, mailbox.id, exc)
        except asyncio.CancelledError:
            # Cut short (a stop, the time budget, a lost lease): the worker ends the run as it
            # hands the job back; its requests so far are kept first, whatever else cancels.
            with contextlib.suppress(Exception):
                await asyncio.shield(
                    self.links.run_requests(run.run_id, run.stats.requests, run.stats.throttled)
                )
            raise
        finally:
            PASS_STATS.reset(token)
        if report.needs_rerun:
            # Again, for the entities a conflict left behind (their states did not move).
            left = entity_scope(e for e, outcome in report.entities.items() if outcome.conflicts)
            await self.queue.enqueue(mailbox.id, PassKind.EXPRESS, source="rerun", entities=left)
        self._observe_lag(job, report)
        plan_text = None
        if job.dry_run:
            # Item by item for `runs show`; the text stays what `plan` always held.
            await self.plans.record(run.run_id, plan_document(report.plans))
            plan_text = "\n".join(render(plan) for plan in report.plans)
        return await self._end(run, "ok", None, plan=plan_text)

    async def _transient(self, run: _Run, mailbox_id: int, exc: BaseException) -> JobResult:
        reason = f"{type(exc).__name__}: {exc}"[:1000]
        state = await self.store.pass_failed(
            mailbox_id, reason, self.settings.limits.max_consecutive_failures
        )
        disabled = state == MailboxState.DISABLED
        await self._end(run, "transient", reason, failed=disabled)
        if disabled:
            return Done("disabled after consecutive failures", failed=True)
        delay = _backoff(run.job.attempts, exc)
        return RetryLater(timedelta(seconds=delay), "transient")

    async def _end(
        self,
        run: _Run,
        outcome: str,
        error: str | None,
        *,
        failed: bool = False,
        plan: str | None = None,
    ) -> Done:
        seconds = time.perf_counter() - run.started
        end = RunEnd(outcome, run.stats.requests, run.stats.throttled, error, plan)
        await self.links.finish_run(run.run_id, end)
        metrics.PASSES.labels(run.kind.value, outcome).inc()
        metrics.PASS_DURATION.labels(run.kind.value).observe(seconds)
        return Done(outcome, failed=failed)

    def _observe_lag(self, job: Job, report: PassReport) -> None:
        if job.oldest_change_at is None or job.dry_run:
            return
        lag = (datetime.now(UTC) - job.oldest_change_at).total_seconds()
        for entity, outcome in report.entities.items():
            if outcome.counts:
                metrics.CHANGE_LAG.labels(entity).observe(max(0.0, lag))


def conflict_policies(settings: Settings) -> dict[EntityKind, ConflictPolicy]:
    conf = settings.conflicts
    fallback = Policy(conf.merge_fallback.value)
    chosen = {
        EntityKind.CONTACT: conf.contacts_policy,
        EntityKind.APPOINTMENT: conf.appointments_policy,
        EntityKind.TASK: conf.tasks_policy,
    }
    return {entity: ConflictPolicy(Policy(name.value), fallback) for entity, name in chosen.items()}


def _backoff(attempts: int, exc: BaseException) -> float:
    """Exponential back-off between pass retries, at least what the server asked for."""
    asked = exc.backoff_s if isinstance(exc, ThrottledError) else 0.0
    return max(asked, min(300.0, 2.0 ** min(attempts, 8)))

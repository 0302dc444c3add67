"""Cron monitoring: the job wrapper and auth for apps, and the schedule math the server shares.

From the app::

    from opswatch import cron_job, execute_cron_job, verify_cron_auth

    @cron_job("check-expired-subscriptions", schedule="0 2 * * *", max_runtime_minutes=5)
    def check_expired_subscriptions(): ...

    result = execute_cron_job(
        "cleanup-pending-donations", cleanup, schedule="0 3 * * 0", max_runtime_minutes=10
    )

Modules: ``schedule`` (parse and validate schedules, expected run times; used by the server's clock),
``config`` (``MonitorConfig``: validation, the wire and Sentry shapes, ``parse_monitor_config`` for
ingest), ``job`` (``cron_job``, ``execute_cron_job``), ``auth`` (``verify_cron_auth``) and the framework
helpers ``opswatch.crons.fastapi``, ``opswatch.crons.flask``, ``opswatch.crons.django``.

The check-in record (the contract with the server's native ingest)
-------------------------------------------------------------------

A check-in is an ordinary record (level ``info``, logger ``opswatch.cron``) sent through the SDK's
pipeline, so it is redacted, batched, spooled and shipped like any other; every sink except the console
gets it (a sink may opt in or out with an ``accepts_check_ins`` attribute; the Sentry sink turns it into
a Sentry check-in). On top of the core fields (``timestamp``, ``event_id``, ``environment``, ``release``,
``service`` ...) it carries::

    operation       "cron.checkin"
    kind            "check_in"               (ingest keeps it as the record's kind)
    monitor_slug    "check-expired-subscriptions"
    check_in_id     32 hex characters; the same id on a run's in_progress and its ok/error
    status          "in_progress" | "ok" | "error"
    duration        seconds as a float, on ok/error only
    monitor_config  only when the job has a schedule:
                    {"schedule": "0 2 * * *" | "@daily" | "every 30 seconds",
                     "timezone": "UTC",
                     "checkin_margin": 5,            minutes, may be fractional (0.5 = 30 s); optional
                     "max_runtime": 5,               minutes, may be fractional; optional
                     "failure_issue_threshold": 1,   optional, 1..720
                     "recovery_threshold": 1}        optional, 1..720

The check-in time is the record's ``timestamp``. ``opswatch.crons.config.parse_monitor_config`` reads
this ``monitor_config`` and Sentry's (``{"schedule": {"type": "crontab", "value": ...}, ...}``) into
the same validated fields, so the server has one reader for both.

Alongside each check-in the job writes the seed's human records: ``cron.<slug_with_underscores>.start``
(``monitorSlug``, ``schedule``, ``checkInId``), ``.complete`` (``durationMs``) and ``.error`` (level
``error``, with the exception).
"""

from .auth import CronAuthError, verify_cron_auth
from .config import MonitorConfig, parse_monitor_config
from .job import CronJob, CronRun, cron_job, execute_cron_job
from .schedule import Schedule, ScheduleError, parse_schedule

__all__ = [
    "CronAuthError",
    "CronJob",
    "CronRun",
    "MonitorConfig",
    "Schedule",
    "ScheduleError",
    "cron_job",
    "execute_cron_job",
    "parse_monitor_config",
    "parse_schedule",
    "verify_cron_auth",
]

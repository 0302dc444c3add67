"""The cast of records the event store and SQL tests use: the donations service and its email campaigns.

Records are in the shape the server hands the store (the SDK's record plus ``project_id``, ``kind`` and
``received_at``), with snake_case fields as Python code logs them (``church_id``), so the seed's
camelCase queries (``churchId``) exercise the name mapping.
"""

from __future__ import annotations

import random
from typing import Any

from opswatch.record import format_timestamp

#: 2025-11-01T00:00:00Z
NOV_1 = 1_761_955_200.0


#: The seed's three example queries, as written (camelCase names, a ``logs`` table).
TOTAL_DONATIONS = """
-- Total donations this month
SELECT SUM(amount) as total_donations
FROM logs
WHERE operation = 'metrics.donation.completed'
AND timestamp > '2025-11-01'
"""

CAMPAIGN_SUCCESS = """
-- Email campaign success rate
SELECT
  campaignId,
  campaignName,
  SUM(successCount) / SUM(recipientCount) * 100 as success_rate
FROM logs
WHERE operation = 'metrics.email.campaign_sent'
GROUP BY campaignId, campaignName
"""

TOP_CHURCHES = """
-- Top churches by donation volume
SELECT
  churchId,
  COUNT(*) as donation_count,
  SUM(amount) as total_amount
FROM logs
WHERE operation = 'metrics.donation.completed'
GROUP BY churchId
ORDER BY total_amount DESC
LIMIT 10
"""


def donation(index: int, *, church: str, amount: float, at: float = NOV_1, **extra: Any) -> dict[str, Any]:
    """A ``metrics.donation.completed`` record."""
    return {
        "timestamp": format_timestamp(at),
        "level": "info",
        "logger": "donations",
        "message": "Donation completed",
        "event_id": f"{index:032x}",
        "service": "donations",
        "environment": "production",
        "release": "1.4.0",
        "host": "web-1",
        "pid": 4242,
        "project_id": 1,
        "kind": "log",
        "received_at": format_timestamp(at + 0.5),
        "operation": "metrics.donation.completed",
        "donation_id": f"don-{index}",
        "amount": amount,
        "currency": "USD",
        "method": "card",
        "recurring": False,
        "campaign_id": "camp-1",
        "church_id": church,
        "donor_id": f"donor-{index % 7}",
        **extra,
    }


def campaign_sent(index: int, *, campaign: str, recipients: int, successes: int, at: float = NOV_1) -> dict[str, Any]:
    """A ``metrics.email.campaign_sent`` record."""
    return {
        "timestamp": format_timestamp(at),
        "level": "info",
        "logger": "email",
        "message": "Campaign sent",
        "event_id": f"c{index:031x}",
        "service": "email",
        "environment": "production",
        "project_id": 1,
        "kind": "log",
        "received_at": format_timestamp(at + 0.5),
        "operation": "metrics.email.campaign_sent",
        "campaign_id": campaign,
        "campaign_name": f"Newsletter {campaign}",
        "recipient_count": recipients,
        "success_count": successes,
        "failure_count": recipients - successes,
        "church_id": "church-1",
    }


def log_line(index: int, *, level: str = "info", message: str = "hello", at: float = NOV_1, **fields: Any) -> dict[str, Any]:
    """A plain log record."""
    return {
        "timestamp": format_timestamp(at),
        "level": level,
        "logger": "app",
        "message": message,
        "event_id": f"a{index:031x}",
        "project_id": 1,
        "kind": "error" if level in ("error", "fatal") else "log",
        "received_at": format_timestamp(at),
        **fields,
    }


def donations_month(count: int, *, seed: int = 7) -> list[dict[str, Any]]:
    """``count`` donations over November 2025 (and a few in October) at 12 churches, plus campaigns."""
    rnd = random.Random(seed)
    out: list[dict[str, Any]] = []
    for i in range(count):
        at = NOV_1 - 5 * 86_400 + i * (35 * 86_400 / count)
        out.append(donation(i, church=f"church-{rnd.randrange(12)}", amount=round(rnd.uniform(5, 500), 2), at=at))
        if i % 10 == 0:
            recipients = rnd.randrange(50, 200)
            out.append(
                campaign_sent(i, campaign=f"camp-{rnd.randrange(4)}", recipients=recipients,
                              successes=recipients - rnd.randrange(0, 5), at=at)
            )
    return out

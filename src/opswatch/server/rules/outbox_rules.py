"""The default rules that the issue and cron notice outboxes deliver: ``issue-new``, ``issue-regressed``
and ``cron-failing`` (``model.OUTBOX_RULES``).

New and regressed issues and failing cron monitors were announced before there were rules, by their
subsystems' durable notice outboxes (``server/outbox.py``), at once and with messages of their own. They
stay so: the rule clock evaluates these rules (their alerts show on the Alerts page and in
``/api/0/alerts``, and can inhibit others) but logs no notifications for them, and the outbox asks
``OutboxGate`` before it sends each message:

* the rule must be there: ``OPSWATCH_NOTIFY_NEW_ISSUES``, ``OPSWATCH_NOTIFY_REGRESSED_ISSUES`` and
  ``OPSWATCH_NOTIFY_CRON_FAILURES`` switch the defaults on and off, and a rule of the same name in the
  rules file replaces one (its ``issues`` filter then narrows what is announced);
* no active silence may match the rule and the labels (an issue: ``issue_id``, ``title``, ``level``,
  ``project``, and ``regression`` for a regression; a monitor: ``monitor``, ``project``, as the rule's
  alerts have), and no firing rule may inhibit them.

A recovery message is sent only when the failure it ends was announced: after a failure that was held
back and never sent, it is logged ``unannounced`` instead (as the dispatcher does with a resolve).

A muted message is not sent and its outbox row is done; when the silence ends (or the inhibiting alert
resolves) while its alert still fires, the rule clock hands the row back to its outbox, which sends it
then, once (``outbox_release``, which says what "still fires" means for each rule). The facts may name
the outbox row (``notice``: ``issue_notices#17``, ``monitor_changes#5``); the log keeps it as the
row's ``reason``.

The rule's ``for`` holds a new issue, a regression or a failure back (logged ``deferred``; the facts'
``since`` is when the change was recorded) until that long after the change; the rule clock then hands
it back to its outbox if its alert still fires (``outbox_release``), so a cron monitor that recovers
within ``for``, or an issue resolved within it, sends nothing. The message goes to the rule's
``channels`` (``OutboxGate.channels``, asked by both outboxes), like a rule's own messages. Its
``keep_firing_for`` and the grouping timers (``group_wait``, ``group_interval``, ``repeat_interval``) do
not apply: each message goes out on its own, once.

Each decision (``sent``, ``silenced``, ``inhibited``, ``deferred``, ``unannounced``) goes into the rule
notification log, so the rule's history shows it (``Dispatcher.log_outbox``: written by the
rule clock's next drain, since the outbox asks inside its claim's transaction, where a write from
another connection would wait for that very transaction on SQLite). Without the rules subsystem (a
bare ``IssueHook`` in a test) every message goes out, as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ...log import get_logger
from ...record import level_name
from . import inhibit
from .issue_signals import LEVELS, TITLE_CHARS
from .model import Rule
from .notify import rule_channels
from .silences import muting

_log = get_logger("opswatch.server.rules")

#: What an outbox asks about -> the rule that decides.
RULE_OF: Final = {
    "issue_new": "issue-new",
    "issue_regressed": "issue-regressed",
    "monitor_failing": "cron-failing",
    "monitor_recovered": "cron-failing",
}


def labels_of(kind: str, facts: Mapping[str, Any]) -> dict[str, str]:
    """The alert labels of an outbox message (the same as the rule's instances have)."""
    if kind.startswith("monitor_"):
        return {"monitor": str(facts.get("slug", "")), "project": str(facts.get("project_id", ""))}
    labels = {
        "issue_id": str(facts.get("issue_id", "")),
        "title": str(facts.get("title", ""))[:TITLE_CHARS],
        "level": level_name(int(facts.get("level", 40))),
        "project": str(facts.get("project_id", "")),
    }
    if kind == "issue_regressed":
        labels["regression"] = str(facts.get("times_regressed", ""))
    return labels


def chosen(rule: Rule, facts: Mapping[str, Any]) -> bool:
    """Whether the rule's ``issues`` filter takes the issue the facts describe."""
    wanted = rule.issues
    if wanted is None:
        return True
    if wanted.level is not None and int(facts.get("level", 40)) < LEVELS[wanted.level]:
        return False
    if wanted.project is not None and facts.get("project_id") != wanted.project:
        return False
    return wanted.environment is None or facts.get("environment") == wanted.environment


class OutboxGate:
    """``gate(kind, facts)``: True when the outbox should send the message (see the module docstring).

    ``ctx`` is the server context; the rules runtime is looked up at each call, since the issue and
    monitor subsystems are installed before the rules are."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx

    def __call__(self, kind: str, facts: Mapping[str, Any]) -> bool:
        runtime = self.ctx.extras.get("rules")
        if runtime is None:
            return True
        try:
            return self._decide(runtime, kind, facts)
        except Exception as err:  # a broken rules runtime must not swallow the message
            _log.error("an outbox message could not be checked against the rules; sending it", None, err)
            return True

    def _decide(self, runtime: Any, kind: str, facts: Mapping[str, Any]) -> bool:
        name = RULE_OF.get(kind)
        if name is None:
            return True  # a message no rule speaks for
        rule = runtime.service.rules.get(name)
        if rule is None or not rule.outbox or not chosen(rule, facts):
            return False
        labels = labels_of(kind, facts)
        target = {"rule": name, **labels}
        notice = facts.get("notice")
        ref = notice if isinstance(notice, str) else None
        note = "resolved" if kind.endswith("_recovered") else "firing"
        now = runtime.service.now()
        dispatcher = runtime.dispatcher
        since = facts.get("since")
        if note == "firing" and rule.for_ > 0 and isinstance(since, (int, float)) and now < since + rule.for_:
            _log.info("an outbox message waits for its rule's for", {"rule": name})
            dispatcher.log_outbox(rule, labels, "deferred", now, reason=ref)
            return False
        mutes = dispatcher.mutes(now)
        silence = muting(mutes.silences, target)
        if silence is not None:
            _log.info("an outbox message was silenced", {"rule": name, "silence": silence.id})
            dispatcher.log_outbox(rule, labels, "silenced", now, silence.id, reason=ref, kind=note)
            return False
        source = inhibit.inhibited(mutes.sources, name, labels)
        if source is not None:
            _log.info("an outbox message was inhibited", {"rule": name, "by": source.rule})
            dispatcher.log_outbox(rule, labels, "inhibited", now, reason=ref, kind=note)
            return False
        if note == "resolved":
            if dispatcher.outbox_announced(name, labels):
                return True
            dispatcher.log_outbox(rule, labels, "unannounced", now, reason=ref, kind=note)
            return False  # its failure was held back and never sent: nothing to call recovered
        dispatcher.log_outbox(rule, labels, "sent", now, reason=ref)
        return True

    def channels(self, kind: str) -> list[str] | None:
        """The notifier channels a message of ``kind`` goes to: its rule's ``channels`` that the server's
        notifier has (None: every channel, as for a rule without ``channels``, or without the rules)."""
        try:
            runtime = self.ctx.extras.get("rules")
            name = RULE_OF.get(kind)
            if runtime is None or name is None:
                return None
            return rule_channels(runtime.service.rules.get(name), getattr(self.ctx, "notifier", None))
        except Exception as err:  # a broken rules runtime must not hold the message back
            _log.error("the channels of an outbox message could not be looked up; sending to all", None, err)
            return None

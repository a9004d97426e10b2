"""The statements every delivery runs, built once with bound parameters.

Building an SQLAlchemy statement and its cache key costs more client CPU than running it on PostgreSQL; the
delivery path runs about ten per message, so a worker process spent most of its CPU there (``make bench``,
"scale-out: drain"). Built once, each execution only binds its values.
"""

from __future__ import annotations

from sqlalchemy import bindparam, delete, insert, or_, select, update

from mail_gateway.store.schema import bodies, events, messages, recipients
from mail_gateway.store.status import PENDING

MESSAGE = bindparam("b_message")

LOCK_CLAIM = (select(messages.c.lease_token, messages.c.due_at, messages.c.owner).where(messages.c.id == MESSAGE)
              .with_for_update())
ADD_EVENTS = insert(events)
RECIPIENT_OUTCOME = (
    update(recipients)
    # Still pending (a cancel may have come first); spelled without IN, which executemany cannot expand.
    .where(recipients.c.message_id == MESSAGE, recipients.c.position == bindparam("b_position"),
           or_(*(recipients.c.status == status for status in PENDING)))
    .values(status=bindparam("b_status"), attempts=recipients.c.attempts + 1, code=bindparam("b_code"),
            reason=bindparam("b_reason"), next_attempt_at=bindparam("b_next"), updated_at=bindparam("b_at")))
# A recipient canceled while the worker holding its message had stalled past its lease, which then delivered it
# after all: what the upstream took is recorded, not what was asked (``recording.record_all``).
DELIVERED_AFTER_CANCEL = (
    update(recipients)
    .where(recipients.c.message_id == MESSAGE, recipients.c.position == bindparam("b_position"),
           recipients.c.status == "canceled")
    .values(status="delivered", attempts=recipients.c.attempts + 1, code=bindparam("b_code"),
            reason=bindparam("b_reason"), next_attempt_at=None, updated_at=bindparam("b_at")))
RECIPIENT_STATES = select(recipients.c.status, recipients.c.next_attempt_at).where(recipients.c.message_id == MESSAGE)
SUMMED_UP = (update(messages).where(messages.c.id == MESSAGE)
             .values(status=bindparam("b_status"), due_at=bindparam("b_due"), lease_token=None,
                     updated_at=bindparam("b_at")))
ATTEMPT_SUMMED_UP = SUMMED_UP.values(attempts=messages.c.attempts + 1, last_code=bindparam("b_code"),
                                     last_reason=bindparam("b_reason"))
DROP_BODY = delete(bodies).where(bodies.c.message_id == MESSAGE)
BODY = select(bodies.c.data).where(bodies.c.message_id == MESSAGE)

IDS = bindparam("b_ids", expanding=True)
DUE = (select(messages.c.id, messages.c.lease_token, messages.c.message_id, messages.c.envelope_from,
              messages.c.created_at, messages.c.expires_at, messages.c.size, messages.c.owner, messages.c.tags,
              messages.c.metadata)
       .where(messages.c.due_at <= bindparam("b_now")).order_by(messages.c.due_at).limit(bindparam("b_limit"))
       .with_for_update(skip_locked=True))
LEASED = (update(messages).where(messages.c.id.in_(IDS))
          .values(due_at=bindparam("b_until"), lease_token=bindparam("b_token")))
PENDING_RECIPIENTS = (select(recipients.c.message_id, recipients.c.position, recipients.c.email, recipients.c.attempts)
                      .where(recipients.c.message_id.in_(IDS), recipients.c.status.in_(PENDING))
                      .order_by(recipients.c.message_id, recipients.c.position))
BODIES = select(bodies.c.message_id, bodies.c.data).where(bodies.c.message_id.in_(IDS))

# Recording outcomes in batches. The claims are locked in one order, so that two workers recording at once
# (one of them with a lapsed lease) wait for each other rather than deadlock.
LOCK_CLAIMS = select(messages.c.id, messages.c.lease_token).where(messages.c.id.in_(IDS)).order_by(messages.c.id) \
    .with_for_update()
RECIPIENTS_OF = (select(recipients.c.message_id, recipients.c.position, recipients.c.status,
                        recipients.c.next_attempt_at).where(recipients.c.message_id.in_(IDS)))
DROP_BODIES = delete(bodies).where(bodies.c.message_id.in_(IDS))

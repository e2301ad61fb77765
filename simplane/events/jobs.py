"""Event Streams background jobs: delivery to sinks, and pruning the outbox."""

from simplane.events.dispatcher import dispatch, dispatch_due
from simplane.events.retention import prune_job

JOBS = [dispatch, prune_job]
NEXT_DUE = [dispatch_due]

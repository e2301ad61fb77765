"""Event Streams background jobs: delivery to sinks."""

from simplane.events.dispatcher import dispatch

JOBS = [dispatch]

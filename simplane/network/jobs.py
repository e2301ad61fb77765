"""The network's background jobs: Disconnect-Requests to packet gateways."""

from __future__ import annotations

from simplane.network.dae import send_disconnects

JOBS = [send_disconnects]

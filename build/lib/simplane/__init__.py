"""simplane: a self-hosted IoT connectivity platform that speaks Twilio's REST APIs."""

from simplane.client import async_client, client

__all__ = ["async_client", "client"]
__version__ = "0.1.0"

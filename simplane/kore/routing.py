"""Where KORE's APIs live: by Host (as KORE serves them) or under /kore/… (for clients that
only change their base URL). `app.HostRouting` rewrites a host-routed request to the path form."""

from __future__ import annotations

# Host → (the path a request must start with, the prefix it gets).
HOSTS = {
    "supersim.api.korewireless.com": ("/v1/", "/kore/supersim"),
    "programmable-wireless.api.korewireless.com": ("/v1/", "/kore/programmable-wireless"),
    "webhook.api.korewireless.com": ("/v1/", "/kore/webhook"),
    "client.api.korewireless.com": ("/v1/", "/kore/client"),
    "api.korewireless.com": ("/api-services/", "/kore"),
}

SUPERSIM = "kore/supersim"
WIRELESS = "kore/programmable-wireless"
WEBHOOK = "kore/webhook"
CLIENT = "kore/client"
TOKEN_PATH = "/kore/api-services/v1/auth/token"

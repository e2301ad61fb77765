"""KORE's APIs as the kernel serves them: one ProductAPI each, with KORE's spec, bearer
authentication (for the product, where there is one) and error shape. `views.py` binds their
operations; the webhook API's handlers (`webhooks.py`) register on `webhook`."""

from __future__ import annotations

from simplane.core.api import ProductAPI
from simplane.kore import errors, routing
from simplane.kore.auth import bearer

SUPERSIM_SPEC = "kore/kore-supersim-v1.json"
WIRELESS_SPEC = "kore/kore-programmable-wireless-v1.json"
WEBHOOK_SPEC = "kore/kore-webhook-v1.json"
CLIENT_SPEC = "kore/kore_client_v1.json"

supersim = ProductAPI(routing.SUPERSIM, spec_name=SUPERSIM_SPEC, flavour="kore",
                      auth=bearer("SuperSIM"))
wireless = ProductAPI(routing.WIRELESS, spec_name=WIRELESS_SPEC, flavour="kore",
                      auth=bearer("ProgrammableWireless"))
webhook = ProductAPI(routing.WEBHOOK, spec_name=WEBHOOK_SPEC, flavour="kore", auth=bearer(None),
                     errors=errors.with_info)
client = ProductAPI(routing.CLIENT, spec_name=CLIENT_SPEC, flavour="kore", auth=bearer(None),
                    errors=errors.with_info)

"""The ceiling of bench/request_path.py: a bare FastAPI app on the same uvicorn, with the same
flags as `simplane serve` (uvloop and httptools where installed, log level warning, no access
log). One route, GET /wireless/v1/Sims/{Sid}: it compares the Authorization header with the
bench account's Basic credentials (401 otherwise) and returns a fixed Sim JSON.

    python bench/_bare.py --port PORT
"""

from __future__ import annotations

import argparse
import base64

import orjson
import uvicorn
from _common import ACCOUNT_SID, AUTH_TOKEN
from fastapi import FastAPI, Request
from fastapi.responses import Response

SID = "DE" + "0" * 32
URL = f"http://127.0.0.1/wireless/v1/Sims/{SID}"
SIM = {
    "sid": SID, "unique_name": None, "account_sid": ACCOUNT_SID,
    "rate_plan_sid": "WP" + "0" * 32, "friendly_name": None, "iccid": "8988307000000000000",
    "e_id": None, "status": "active", "reset_status": None, "commands_callback_url": None,
    "commands_callback_method": "POST", "sms_fallback_method": "POST", "sms_fallback_url": None,
    "sms_method": "POST", "sms_url": None, "voice_fallback_method": "POST",
    "voice_fallback_url": None, "voice_method": "POST", "voice_url": None,
    "date_created": "2026-12-06T07:00:00Z", "date_updated": "2026-12-06T07:00:00Z",
    "url": URL,
    "links": {"data_sessions": f"{URL}/DataSessions",
              "rate_plan": "http://127.0.0.1/wireless/v1/RatePlans/WP" + "0" * 32,
              "usage_records": f"{URL}/UsageRecords"},
    "ip_address": None,
}
BODY = orjson.dumps(SIM)
EXPECTED = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()

app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


@app.get("/wireless/v1/Sims/{Sid}")
async def fetch_sim(Sid: str, request: Request) -> Response:
    if request.headers.get("authorization") != EXPECTED:
        return Response(b'{"code": 20003, "status": 401}', status_code=401,
                        media_type="application/json")
    return Response(BODY, media_type="application/json")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()

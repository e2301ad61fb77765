"""KORE's error shapes. The Super SIM and Programmable Wireless APIs answer Twilio's
`{code, message, more_info, status}`; the client and webhook APIs `{status, code, message, info}`;
the token endpoint `{"error": "invalid_client", "error_description"}` for bad client credentials
and `{code, message}` otherwise."""

from __future__ import annotations

from starlette.responses import Response

from simplane.core.api import json_response
from simplane.core.errors import TwilioError

MORE_INFO = "https://docs.korewireless.com/en-us/api"


def with_info(error: TwilioError) -> Response:
    """The client and webhook APIs' shape."""
    response = json_response({"status": error.status, "code": error.code,
                              "message": error.message, "info": MORE_INFO}, error.status)
    response.headers.update(error.headers)
    return response


def token_error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    response = json_response({"code": status, "message": message}, status)
    response.headers.update(headers or {})
    return response


def invalid_client(description: str = "Invalid client or Invalid client credentials") -> Response:
    return json_response({"error": "invalid_client", "error_description": description}, 401)

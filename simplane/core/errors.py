"""Twilio's error shape: {code, message, more_info, status}."""

from __future__ import annotations


class TwilioError(Exception):
    def __init__(self, status: int, code: int, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict:
        return {
            "code": self.code,
            "message": self.message,
            "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
            "status": self.status,
        }


def bad_request(message: str, code: int = 20001) -> TwilioError:
    return TwilioError(400, code, message)


def not_found(resource: str, key: str) -> TwilioError:
    return TwilioError(404, 20404, f"The requested resource {resource} {key} was not found")


def conflict(message: str, code: int = 20001) -> TwilioError:
    return TwilioError(409, code, message)


def unauthorized() -> TwilioError:
    return TwilioError(401, 20003, "Authenticate")


def too_many_requests(retry_after: int) -> TwilioError:
    return TwilioError(429, 20429, "Too Many Requests: too many failed logins; retry later",
                       {"Retry-After": str(retry_after)})

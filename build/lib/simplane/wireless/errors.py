"""Wireless error codes (https://www.twilio.com/docs/api/errors)."""

INVALID_VALUE = 33101  # a parameter value Wireless does not accept
INCOMPLETE = 33104  # configuration incomplete: no rate plan, or the SIM cannot take commands
BAD_TRANSITION = 33105  # a status change that is not allowed
SIM_NOT_FOUND = 33107
RATE_PLAN_NOT_FOUND = 33108
CONFLICTING = 33121  # parameters that cannot be combined
NOT_PERMITTED = 33201  # disabled by the rate plan, or a transfer not allowed

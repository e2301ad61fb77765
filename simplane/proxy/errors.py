"""Proxy error codes (https://www.twilio.com/docs/api/errors).

Codes marked "chosen" have no documented Twilio equivalent; the others are Twilio's own.
"""

INVALID_VALUE = 80601  # a parameter value Proxy does not accept (chosen)
NUMBER_IN_POOL = INVALID_VALUE  # the number is already in this Service's pool (chosen)
SERVICE_NAME_TAKEN = 80602  # Service UniqueName must be unique
SESSION_NAME_TAKEN = 80603  # Session UniqueName must be unique
DUPLICATE_PARTICIPANT = 80103  # "Participant Already In Session"
PARTICIPANT_LIMIT = 80609  # "Too Many Added Participants": at most two per Session
IDENTIFIER_INVALID = 80404  # "Participant Identifier Invalid": not a number or channel address
IDENTIFIER_PAIR_INVALID = 80402  # "Identifier Proxy Pair Invalid": the pool cannot serve it
PROXY_IDENTIFIER_IN_USE = 80604  # identifier/proxy pair already active in another Session
SESSION_CLOSED = 80607  # updates to a closed Session (other than re-opening it)
BAD_STATUS = 80608  # a status change that is not allowed
OUT_OF_SESSION = 80905  # "Unknown Scenario": no open Session for this sender and proxy number
BLOCKED = 80909  # the intercept callback answered 403
CALL_TO_MESSAGE_ONLY = 80911  # "Call To Message Only Session Rejected"
MESSAGE_TO_VOICE_ONLY = 80912  # a message reached a voice-only Session (chosen: mirrors 80911)
OUT_OF_SESSION_CALLBACK_FAILED = 80913  # the out-of-session callback answered non-2xx

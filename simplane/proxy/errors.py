"""Proxy error codes (https://www.twilio.com/docs/api/errors)."""

INVALID_VALUE = 80601  # a parameter value Proxy does not accept (chosen: no documented code)
UNIQUE_NAME_TAKEN = 80602
PARTICIPANT_LIMIT = 80609  # a Session holds at most two Participants (chosen: no documented code)
DUPLICATE_PARTICIPANT = 80603  # identifier already a Participant of this Session (chosen)
IDENTIFIER_PAIR_INVALID = 80402  # the pool cannot give this identifier a proxy number
PROXY_IDENTIFIER_IN_USE = 80604  # identifier/proxy pair already active in another Session
SESSION_CLOSED = 80607  # updates to a closed Session (other than re-opening it)
BAD_STATUS = 80608  # a status change that is not allowed
NUMBER_IN_POOL = 80103  # the number is already in this Service's pool (chosen)

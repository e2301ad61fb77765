"""Super SIM error codes (twilio.com/docs/api/errors)."""

MISSING_REGISTRATION = 83001  # ICCID or registration code missing
NOT_REGISTRABLE = 83002  # no such SIM in the inventory, wrong code, or another account's SIM
ALREADY_REGISTERED = 83003  # the SIM is already on this account
BAD_STATUS = 83010  # the SIM cannot be updated to the desired status

# Attachment rejections, as published in connection events.
SIM_NOT_ACTIVE = 83705  # only ready and active SIMs may attach
# Twilio documents no code of its own for a network outside the Fleet's Network Access
# Profile; this one sits beside 83705 and is used consistently.
NETWORK_NOT_ALLOWED = 83706
# Published in connection events; Twilio documents no codes of its own for these.
DATA_DISABLED = 83707  # the Fleet has data disabled: no data session
DATA_LIMIT_REACHED = 83708  # the SIM is past its Fleet's data limit
ATTACHMENT_FAILED = 83709  # the network reported a failed attachment
DATA_SESSION_FAILED = 83710  # the network reported a failed data session

"""Kinesis sinks: one record per event through boto3, as Twilio writes them (the CloudEvent as
JSON, its `data` a JSON-encoded string), partitioned by subject (the SIM) so that one SIM's events
stay on one shard, in order. Simplane assumes the sink's role with its external id, using its own
AWS credentials (the usual boto3 chain); SIMPLANE_KINESIS_ENDPOINT_URL points Kinesis and STS
elsewhere (e.g. a local moto server)."""

from __future__ import annotations

import re
import threading
import time
from typing import TYPE_CHECKING, Any

import boto3
import orjson
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from simplane.events.sinks.base import Outgoing, Result, failure, fields, invalid

if TYPE_CHECKING:
    from simplane.config import Settings
    from simplane.core.runtime import Runtime

STREAM_ARN = re.compile(r"^arn:aws[a-z-]*:kinesis:(?P<region>[a-z0-9-]+):[0-9]{1,12}:stream/"
                        r"(?P<name>[A-Za-z0-9_.-]{1,128})$")
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::[0-9]{1,12}:role/[\w+=,.@/-]{1,512}$")
MAX_RECORDS = 500  # PutRecords' limit


def configure(config: dict[str, Any]) -> dict[str, Any]:
    fields(config, {"arn": str, "role_arn": str, "external_id": str}, {})
    if not STREAM_ARN.match(config["arn"]):
        raise invalid("arn", "must be a Kinesis stream ARN (arn:aws:kinesis:REGION:ACCOUNT:"
                      "stream/NAME)")
    if not ROLE_ARN.match(config["role_arn"]):
        raise invalid("role_arn", "must be an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)")
    if not 2 <= len(config["external_id"]) <= 1224:
        raise invalid("external_id", "must be 2 to 1224 characters")
    return {k: config[k] for k in ("arn", "role_arn", "external_id")}


def batch_limit(config: dict[str, Any], settings: Settings) -> int:
    return min(settings.events_batch_size, MAX_RECORDS)


def record(event: Outgoing) -> dict[str, Any]:
    body = dict(event.event, data=orjson.dumps(event.event["data"]).decode())
    return {"Data": orjson.dumps(body), "PartitionKey": event.subject or event.event["id"]}


class _Clients:
    """Kinesis clients on the sink's assumed role, renewed before the credentials expire."""

    def __init__(self) -> None:
        self._cache: dict[tuple, tuple[Any, float]] = {}
        self._lock = threading.Lock()

    def get(self, settings: Settings, config: dict[str, Any]) -> Any:
        region = STREAM_ARN.match(config["arn"])["region"]  # type: ignore[index]
        key = (config["role_arn"], config["external_id"], region, settings.kinesis_endpoint_url)
        with self._lock:
            hit = self._cache.get(key)
            if hit and hit[1] > time.time() + 300:
                return hit[0]
        endpoint = settings.kinesis_endpoint_url
        boto = Config(connect_timeout=settings.callback_timeout,
                      read_timeout=settings.callback_timeout, retries={"max_attempts": 1})
        sts = boto3.client("sts", region_name=region, endpoint_url=endpoint, config=boto)
        creds = sts.assume_role(RoleArn=config["role_arn"], ExternalId=config["external_id"],
                                RoleSessionName="simplane-event-streams")["Credentials"]
        client = boto3.client(
            "kinesis", region_name=region, endpoint_url=endpoint, config=boto,
            aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"])
        with self._lock:
            self._cache[key] = (client, creds["Expiration"].timestamp())
        return client


CLIENTS = _Clients()


def send(runtime: Runtime, config: dict[str, Any], events: list[Outgoing], token: str) -> Result:
    try:
        client = CLIENTS.get(runtime.settings, config)
        reply = client.put_records(StreamARN=config["arn"], Records=[record(e) for e in events])
    except (BotoCoreError, ClientError) as exc:
        return failure(exc)
    if not reply.get("FailedRecordCount"):
        return Result(len(events))
    # Records are accepted independently: keep the prefix that got in, retry from the first
    # refused one, so that a SIM's events are never reordered.
    results = reply["Records"]
    first = next(i for i, r in enumerate(results) if r.get("ErrorCode"))
    return Result(first, f"{results[first]['ErrorCode']}: {results[first].get('ErrorMessage')}")

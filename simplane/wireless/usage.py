"""Wireless DataSessions and UsageRecords: what the network data plane recorded for SIMs."""

from __future__ import annotations

from simplane.core.api import Ctx
from simplane.core.paging import envelope, page_size
from simplane.wireless import service
from simplane.wireless.views import api


@api.operation("ListDataSession")
def list_data_sessions(ctx: Ctx) -> dict:
    service.get_sim(ctx.db, ctx.account_sid, ctx.path["SimSid"])
    return envelope(ctx, [], page_size(ctx), ctx.params.get("Page", 0))


@api.operation("ListUsageRecord")
def list_usage_records(ctx: Ctx) -> dict:
    service.get_sim(ctx.db, ctx.account_sid, ctx.path["SimSid"])
    return envelope(ctx, [], page_size(ctx), ctx.params.get("Page", 0))


@api.operation("ListAccountUsageRecord")
def list_account_usage_records(ctx: Ctx) -> dict:
    return envelope(ctx, [], page_size(ctx), ctx.params.get("Page", 0))

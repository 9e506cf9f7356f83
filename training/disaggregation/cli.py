"""``wattwise disaggregate`` and ``wattwise train disaggregation``: wiring only."""

from __future__ import annotations

import typer

from wattwise.errors import WattwiseError


def disaggregate_cmd(ctx: typer.Context) -> None:
    """Appliance breakdown of a customer-month, or of a REDD file."""
    raise WattwiseError("disaggregation is being built (issue 7)")


def train_disaggregation_cmd(ctx: typer.Context) -> None:
    """Train the disaggregation models (synthetic or REDD)."""
    raise WattwiseError("disaggregation is being built (issue 7)")

"""``wattwise demo``: the main job end to end on the embedded defaults.

Each stage prints what it produced; later stages (features, training, serving, monitoring)
join this list as they are built.
"""

from __future__ import annotations

import typer

from wattwise.cli_state import state

demo_app = typer.Typer(
    help="Run the main job end to end on the embedded defaults.",
    invoke_without_command=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@demo_app.callback()
def demo(
    ctx: typer.Context,
    customers: int = typer.Option(2000, help="Customers in the synthetic utility."),
    days: int = typer.Option(396, help="Days of interval data (13 months by default)."),
) -> None:
    """Generate a synthetic utility and report what each stage produced."""
    from features.synth.config import load_world_config
    from features.synth.generate import generate

    settings = state(ctx).settings
    typer.echo(f"[1/1] synthetic utility: {customers} customers × {days} days")
    cfg = load_world_config(customers=customers, days=days)
    summary = generate(cfg, settings.data_dir / "synthetic", show_progress=True)
    typer.echo(summary.render())

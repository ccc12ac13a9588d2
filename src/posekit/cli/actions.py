"""`posekit actions`: action rules on posekit.track/1 events with Spark Structured Streaming."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from posekit.actions.job import ActionsConfig
from posekit.cli.logs import setup_logging
from posekit.cli.options import force_option, remaining_settings


@click.command()
@click.option(
    "--events",
    required=True,
    help="A folder of event files (`posekit track --events-dir`) or tcp://HOST:PORT "
    "(`posekit track --events-tcp`).",
)
@click.option(
    "--rules",
    "rules_file",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="The rules (YAML), see the README's 'Actions at scale'.",
)
@click.option(
    "--out",
    required=True,
    help="Output folder: actions/, dead_letter/, checkpoints/, summary.json (on a cluster, a "
    "URI of its file system, e.g. hdfs:///pose/actions).",
)
@click.option(
    "--once",
    is_flag=True,
    help="Process the event files there are now, then stop (else run until interrupted).",
)
@click.option("--console", is_flag=True, help="Print the actions instead of writing actions/.")
@remaining_settings(ActionsConfig, exclude=("master",))
@click.option(
    "--master",
    default=None,
    help="Spark master, e.g. local[4] or spark://host:7077 (default: spark-submit's, else "
    "local[*]).",
)
@force_option
def actions(
    events: str,
    rules_file: Path,
    out: str,
    once: bool,
    console: bool,
    master: str | None,
    force: bool,
    **settings: Any,
) -> None:
    """Recognise actions (repetitions, falls, dwell, envelope, speed) in tracked keypoints.

    The same job runs on this machine and on a cluster (spark-submit; see the README). Without
    --once it keeps running and checkpoints in --out, so a restart resumes where it stopped
    without repeating an action.
    """
    from posekit.actions.job import is_uri, run_job, spark_session, start_job
    from posekit.actions.rules import load_rules
    from posekit.utils.outputs import claim_output

    setup_logging()
    rules = load_rules(rules_file)
    config = ActionsConfig(master=master, **settings)
    if not is_uri(out):
        claim_output(Path(out), "actions", source=events, force=force, keep_earlier=True)
    spark = spark_session(config)
    job = start_job(spark, events, rules, out, config, once=once, console=console)
    click.echo(f"posekit actions: {len(rules)} rules on {events} -> {out}", err=True)
    summary = run_job(job, once=once)
    written = (f"{summary['actions']} actions, {summary['dead_letters']} dead letters, "
               if summary["actions"] is not None else "")  # fmt: skip
    click.echo(
        f"{summary['lines']} lines in {summary['batches']} batches: {written}"
        f"{summary['duplicates']} duplicates and {summary['late']} late events dropped; "
        f"results in {out}"
    )

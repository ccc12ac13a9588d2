"""`posekit` entry point: command groups; unusable input as one readable line with exit code 2,
and any other error as what it is, a bug: its traceback and a request to report it."""

from __future__ import annotations

import sys
import traceback

import click

from posekit import __version__
from posekit.utils.errors import BUG_EXIT_CODE, USER_ERROR_EXIT_CODE, UserError, one_line
from posekit.utils.extras import MissingExtraError

#: Errors that mean "your input is unusable": one line on stderr and exit code 2, no traceback.
USER_ERRORS = (
    UserError,  # raised where posekit judges input: datasets, schemas, models, settings
    OSError,  # a missing file, a full disk, a permission: the system's one-line reason
    MissingExtraError,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="posekit")
def cli() -> None:
    """posekit: train, evaluate and run keypoint detectors."""


def _register() -> None:
    from posekit.cli.actions import actions
    from posekit.cli.calibrate import calibrate
    from posekit.cli.data import data
    from posekit.cli.demo import demo
    from posekit.cli.export import export
    from posekit.cli.predict import predict
    from posekit.cli.serve import serve
    from posekit.cli.track import track
    from posekit.cli.train import train
    from posekit.cli.triangulate import triangulate
    from posekit.cli.val import val

    cli.add_command(actions)
    cli.add_command(calibrate)
    cli.add_command(data)
    cli.add_command(demo)
    cli.add_command(export)
    cli.add_command(predict)
    cli.add_command(serve)
    cli.add_command(track)
    cli.add_command(train)
    cli.add_command(triangulate)
    cli.add_command(val)


_register()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 problems found, 2 unusable input)."""
    try:
        rc = cli.main(args=argv, prog_name="posekit", standalone_mode=False)
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.ClickException as e:  # usage errors included: one line, no usage dump
        click.echo(f"posekit: error: {e.format_message()}", err=True)
        return e.exit_code
    except click.exceptions.Abort:
        click.echo("posekit: aborted", err=True)
        return 130
    except USER_ERRORS as e:
        click.echo(f"posekit: error: {one_line(e)}", err=True)
        return USER_ERROR_EXIT_CODE
    except RecursionError:  # a hostile input nested beyond any parser's depth
        click.echo("posekit: error: an input file is nested too deeply to be read", err=True)
        return USER_ERROR_EXIT_CODE
    except SystemExit as e:
        return int(e.code or 0)
    except Exception as e:  # not a judgement of the input: a bug, shown as one
        traceback.print_exc()
        click.echo(f"posekit: internal error ({type(e).__name__}): this is a bug in posekit "
                   f"{__version__}; please report it with the traceback above and the command "
                   "you ran", err=True)  # fmt: skip
        return BUG_EXIT_CODE
    return rc if isinstance(rc, int) else 0


if __name__ == "__main__":
    sys.exit(main())

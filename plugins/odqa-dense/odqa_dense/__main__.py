"""``python -m odqa_dense`` (and ``torchrun --nproc-per-node N -m odqa_dense``): ``odqa train dpr``'s options, one
rank of a DDP training when torchrun sets ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``; a one-line ``Error:`` naming the
rank on bad input, never a traceback.
"""

from __future__ import annotations

import sys

import click

from odqa_core.errors import OdqaError
from odqa_dense import distributed, launch
from odqa_dense.cli import train_dpr


def main() -> int:
    try:
        train_dpr.main(prog_name="python -m odqa_dense", standalone_mode=False)
    except OdqaError as exc:
        launch.report_rank_error(str(exc), type(exc).__name__)
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        return 130
    except Exception as exc:  # a crash or a peer that never came (the process group's timeout): one line, the rank
        launch.report_rank_error(f"{type(exc).__name__}: {exc}")
        return 1
    finally:
        distributed.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())

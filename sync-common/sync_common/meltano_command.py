"""The ``meltano`` commands the plugins print for the operator, in the environment they ran in.

The failure e-mail (replay the dead letters) and the pre-flight fixes (authorise again) tell the
operator what to run. Written without ``--environment`` such a command would pick Meltano's
environment afresh: ``MELTANO_ENVIRONMENT`` of the shell or ``.env``, else the project's
``default_environment`` (``dev``: the sandboxes) — so a prod run's e-mail could send the operator
to dev. Meltano exports ``MELTANO_ENVIRONMENT`` to every plugin it runs (``meltano run`` and
``meltano invoke``): the active environment's name, or an empty value under
``--no-environment`` (Meltano 4.4: ``Project.env`` in ``meltano/core/project.py``, passed on by
``PluginInvoker.env``). The printed command carries exactly that, so it reaches the systems the
plugin just talked to when pasted into the project folder.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping

ENVIRONMENT_VARIABLE = "MELTANO_ENVIRONMENT"


def meltano_command(arguments: str, environ: Mapping[str, str] | None = None) -> str:
    """``meltano <arguments>`` with the environment this process runs in.

    The environment is read from ``environ`` (default ``os.environ``): ``--environment <name>``,
    ``--no-environment`` when Meltano ran it with none, nothing when it was not started by
    Meltano (there is no environment to repeat then).
    """
    name = (os.environ if environ is None else environ).get(ENVIRONMENT_VARIABLE)
    if name is None:
        return f"meltano {arguments}"
    if not name:
        return f"meltano --no-environment {arguments}"
    return f"meltano --environment {shlex.quote(name)} {arguments}"

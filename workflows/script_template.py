"""One way to turn a step function of steps.py into an Argo script template.

The pod runs the function's own source (`steps.script_source`) and passes each argument
through an environment variable: Argo escapes an env value into the pod spec whatever it
holds, where a value spliced into the script's text could change the code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from hera.workflows import Env, Script
from hera.workflows import models as m

from . import container_images as images
from . import steps
from .kubernetes import TMP_MOUNT, resources, restricted


def script_template(
    name: str,
    function: Callable[..., Any],
    arguments: Mapping[str, tuple[str, str]],
    *,
    extra_env: Sequence[Env | m.EnvVar] = (),
    image: str = images.PYTHON,
    cpu: str = "100m",
    memory: str = "128Mi",
    **options: Any,
) -> Script:
    """Return the script template that runs `function` with restricted security and /tmp mounted.

    Args:
        name: the template's name.
        function: a step function of steps.py.
        arguments: `{argument name: (environment variable, value)}`, in the env's order.
        extra_env: variables the function does not take as arguments (it reads them itself,
            or the image's tools do), after the arguments'.
        image: the image the script runs in.
        cpu: the CPU request and limit.
        memory: the memory request and limit.
        **options: other `Script` fields (inputs, outputs, pod_security_context).
    """
    return Script(
        name=name,
        image=image,
        command=["python"],
        source=steps.script_source(function, {arg: variable for arg, (variable, _) in arguments.items()}),
        env=[*(Env(name=variable, value=value) for variable, value in arguments.values()), *extra_env],
        resources=resources(cpu, memory),
        security_context=restricted(),
        volume_mounts=[TMP_MOUNT],
        **options,
    )

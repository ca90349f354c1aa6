"""The built-in plugin: the default experts and the two rewriters.

Registered through the same hooks as any third-party plugin. The rewriter
modules load MLX models, so they are imported only when a factory is called.
"""

from __future__ import annotations

from typing import Any, Callable

from .hookspecs import hookimpl
from .options import FewShotOptions, TrainedCoTOptions


@hookimpl
def register_experts(register: Callable[..., None], clock: Any) -> None:
    from .experts.builtin import default_experts

    for expert in default_experts(clock=clock):
        register(expert)


def build_trained_cot(**options: Any):
    from .rewriter import TrainedCoTRewriter

    return TrainedCoTRewriter(**options)


def build_few_shot(**options: Any):
    from .few_shot import FewShotCoTRewriter

    return FewShotCoTRewriter(**options)


build_trained_cot.options = TrainedCoTOptions
build_few_shot.options = FewShotOptions


@hookimpl
def register_rewriters(register: Callable[..., None]) -> None:
    register("trained-cot", build_trained_cot)
    register("few-shot", build_few_shot)

"""``@require_approval``: a function that takes a Pydantic model runs only
when Gatehouse approves, and only with the approved arguments."""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from .aclient import AsyncGatehouse
from .client import Gatehouse
from .errors import GateInvalidRequest
from .guard import DEFAULT_WAIT_TIMEOUT
from .models import Risk

__all__ = ["require_approval"]

F = TypeVar("F", bound=Callable[..., Any])


def require_approval(
    gate: Gatehouse | AsyncGatehouse | None = None,
    *,
    agent: str,
    action: str | None = None,
    risk: Risk,
    subject: str | Callable[[Any], str],
    wait_timeout: float = DEFAULT_WAIT_TIMEOUT,
    task_id: str | Callable[[Any], str] | None = None,
    idempotency_key: Callable[[Any], str] | None = None,
    executor: str | None = None,
    target_system: str | None = None,
) -> Callable[[F], F]:
    """Guards a function (sync or async) whose one argument is a Pydantic model::

        @require_approval(agent="refund-agent", action="issue_refund", risk="high",
                          subject=lambda req: req.customer_id)
        def issue_refund(req: RefundRequest) -> Refund: ...

    On each call the validated arguments (``model_dump(mode="json")``) are the
    request's payload, so policies see ``context.payload.amount``. The
    function runs only on ``allow`` or ``approved``, after the approval token
    was redeemed, and receives the *approved* arguments validated into the
    model again: a reviewer's amendment if there was one, and never a
    reviewer's comment. Its receipt and outcome are then recorded and its
    result returned (its exception raised again after recording the
    failure). Everything else raises a :class:`~gatehouse.GateError` and the
    function never runs.

    ``gate`` defaults to a client built at each call from ``GATEHOUSE_URL``
    and ``GATEHOUSE_API_KEY``. ``action`` defaults to the function's name;
    ``subject``, ``task_id`` and ``idempotency_key`` may be functions of the
    argument (an idempotency key lets a retried call pick up the same
    decision instead of asking again).
    """

    def decorate(fn: F) -> F:
        model_type = _model_parameter(fn)
        is_async = inspect.iscoroutinefunction(fn)
        if gate is not None and isinstance(gate, AsyncGatehouse) != is_async:
            kind = "an async" if is_async else "a sync"
            raise TypeError(
                f"{fn.__qualname__} is {kind} function: pass {'AsyncGatehouse' if is_async else 'Gatehouse'} as gate"
            )
        name = action or fn.__name__

        def guard_args(arg: Any) -> tuple[BaseModel, dict[str, Any]]:
            model = _validate(model_type, arg)
            kwargs: dict[str, Any] = dict(
                agent=agent,
                action=name,
                risk=risk,
                subject=subject(model) if callable(subject) else subject,
                args=model,
                wait_timeout=wait_timeout,
                task_id=task_id(model) if callable(task_id) else task_id,
                idempotency_key=idempotency_key(model) if idempotency_key is not None else None,
                executor=executor,
                target_system=target_system,
            )
            return model, kwargs

        if is_async:

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                _, guard_kwargs = guard_args(_single_argument(fn, args, kwargs))
                client = gate if isinstance(gate, AsyncGatehouse) else AsyncGatehouse.from_env()
                try:
                    async with client.guard(**guard_kwargs) as run:
                        run.result = await fn(run.model)
                        return run.result
                finally:
                    if gate is None:
                        await client.aclose()

            return typing.cast(F, async_wrapper)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            _, guard_kwargs = guard_args(_single_argument(fn, args, kwargs))
            client = gate if isinstance(gate, Gatehouse) else Gatehouse.from_env()
            try:
                with client.guard(**guard_kwargs) as run:
                    run.result = fn(run.model)
                    return run.result
            finally:
                if gate is None:
                    client.close()

        return typing.cast(F, wrapper)

    return decorate


def _model_parameter(fn: Callable[..., Any]) -> type[BaseModel]:
    """The model class of the function's one parameter."""
    params = list(inspect.signature(fn).parameters.values())
    if len(params) != 1 or params[0].kind not in (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    ):
        raise TypeError(
            f"@require_approval guards functions of exactly one argument, a Pydantic model "
            f"(the whole approved payload); {fn.__qualname__} takes {len(params)}"
        )
    hint = typing.get_type_hints(fn).get(params[0].name)
    if not (isinstance(hint, type) and issubclass(hint, BaseModel)):
        raise TypeError(
            f"the argument of {fn.__qualname__} must be annotated with a Pydantic model class, not {hint!r}"
        )
    return hint


def _single_argument(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
    bound = inspect.signature(fn).bind(*args, **kwargs)
    (value,) = bound.arguments.values()
    return value


def _validate(model_type: type[BaseModel], arg: Any) -> BaseModel:
    """The argument as a valid instance of the model: an instance is
    validated again (it may have been changed since it was made), a mapping
    is validated into it."""
    try:
        if isinstance(arg, model_type):
            return model_type.model_validate(arg.model_dump(by_alias=True))
        return model_type.model_validate(arg)
    except ValidationError as e:
        raise GateInvalidRequest(f"the arguments do not fit {model_type.__name__}: {e}") from None

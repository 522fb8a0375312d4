"""What every workspace page and action shares: templates, the runtime, the signed-in user."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from cdat.assessment import grouped_reasons
from cdat.estimate import OVERRIDABLE
from cdat.taxonomy import CarPart, DamageType, Severity
from mobile_api.runtime import Runtime
from mobile_api.web import present
from mobile_api.web import session as websession
from mobile_api.web.session import SESSION_COOKIE, WebUser

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.filters.update(
    photos_named=present.photos_named,
    words=present.words,
    code=present.code,
    colour=present.colour,
)
templates.env.globals.update(  # one rule for each label's text, size and place
    label_positions=present.label_positions,
    font_size=present.font_size,
    part_label=present.part_label,
    damage_label=present.damage_label,
    seen_again=present.seen_again,
    repeat_counts=present.repeat_counts,
    grouped_reasons=grouped_reasons,
)


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.parent.state.runtime
    return rt


RuntimeDep = Annotated[Runtime, Depends(runtime)]


async def signed_in(request: Request, rt: RuntimeDep) -> WebUser:
    return await run_in_threadpool(websession.current_user, rt, request.cookies.get(SESSION_COOKIE))


UserDep = Annotated[WebUser, Depends(signed_in)]


async def form_user(request: Request, rt: RuntimeDep, user: UserDep) -> WebUser:
    """The signed-in user of a form POST whose CSRF token matches the session."""
    form = await request.form()
    websession.check_csrf(
        websession.csrf_token(rt.settings.secret_key, user.nonce), form.get("csrf_token")
    )
    return user


FormUserDep = Annotated[WebUser, Depends(form_user)]


def page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    rt = runtime(request)
    user = context.get("user")
    csrf = websession.csrf_token(rt.settings.secret_key, user.nonce) if user else ""
    base = {
        "csrf": csrf,
        "damage_types": [d.value for d in DamageType],
        "severities": [s.value for s in Severity],
        "parts": [p.value for p in CarPart],
        "operations": [o.value for o in OVERRIDABLE],
        "errors": {},
    }
    return templates.TemplateResponse(request, name, {**base, **context}, status_code=status)

"""The `cdat` command line: serve, worker, db, adjuster, assess, and the training tools.

cdat serve                  # API + worker on SQLite, local files, SQLite broker
cdat worker -Q assess,checks  # a worker for a production fleet
cdat db upgrade             # apply database migrations
cdat adjuster create a@b.c  # make an adjuster and print its API token
cdat assess car1.jpg car2.jpg [--json]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn

from pydantic import ValidationError

from cdat.claims import BodyType, Vehicle
from cdat.errors import CdatError
from cdat.settings import Settings

Handler = Callable[[argparse.Namespace], int]


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cdat",
        description="CDAT: vehicle-damage claim assessment from photos. "
        "Settings come from CDAT_* environment variables (see README).",
    )
    parser.add_argument(
        "--log-json",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="structured JSON logs for serve/worker (default on)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = sub.add_parser("serve", help="run the API and a worker together (Ctrl-C stops both)")
    serve.add_argument("--host", help="bind address (default: settings api_host)")
    serve.add_argument("--port", type=int, help="port (default: settings api_port)")
    serve.add_argument("--no-worker", action="store_true", help="start the API only")
    serve.set_defaults(handler=_serve)

    worker = sub.add_parser("worker", help="run a Celery worker")
    worker.add_argument("-Q", "--queues", default="assess,checks,events", help="queues to consume")
    worker.add_argument("-c", "--concurrency", type=int, help="worker processes")
    worker.add_argument("-n", "--hostname", help="worker node name (unique per process)")
    worker.set_defaults(handler=_worker)

    db = sub.add_parser("db", help="database migrations")
    db_sub = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    upgrade = db_sub.add_parser("upgrade", help="upgrade the schema to the latest revision")
    upgrade.add_argument("--revision", default="head", help="target revision (default: head)")
    upgrade.set_defaults(handler=_db_upgrade)

    adjuster = sub.add_parser("adjuster", help="manage adjuster accounts")
    adj_sub = adjuster.add_subparsers(dest="adjuster_command", metavar="ACTION", required=True)
    create = adj_sub.add_parser("create", help="create an adjuster; prints its API token once")
    create.add_argument("email", help="the sign-in e-mail address")
    create.add_argument("--name", default="", help="name shown in the workspace")
    create.add_argument(
        "--role", choices=["adjuster", "admin"], default="adjuster", help="default: adjuster"
    )
    create.add_argument(
        "--password", help="password for web sign-in (default: read CDAT_NEW_PASSWORD or none)"
    )
    create.set_defaults(handler=_adjuster_create)
    from mobile_api.cli.accounts import add_commands as add_account_commands

    add_account_commands(adj_sub)  # cdat adjuster revoke-token / deactivate

    assess = sub.add_parser("assess", help="assess photos locally, without the server")
    assess.add_argument(
        "photos", nargs="+", type=Path, metavar="PHOTO", help="JPEG, PNG or WebP files"
    )
    assess.add_argument("--json", action="store_true", help="print JSON instead of a table")
    assess.add_argument("--make", default="unknown", help="vehicle make (for pricing)")
    assess.add_argument("--model", default="unknown", help="vehicle model")
    assess.add_argument("--year", type=int, default=date.today().year - 3, help="model year")
    assess.add_argument(
        "--body-type", default="sedan", choices=[b.value for b in BodyType], help="body type"
    )
    assess.add_argument("--market-value", type=Decimal, help="vehicle value, if known")
    assess.add_argument(
        "--loss-date", type=date.fromisoformat, default=date.today(), help="YYYY-MM-DD"
    )
    assess.set_defaults(handler=_assess)

    from mobile_api.cli.feedback import add_commands as add_feedback_commands

    add_feedback_commands(sub)  # cdat feedback export OUT_DIR
    _add_optional_commands(sub)
    return parser


def _add_optional_commands(sub: argparse._SubParsersAction) -> None:
    try:
        from training.cli import add_commands
    except ImportError:
        return
    add_commands(sub)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from mobile_api.api.app import create_app
    from mobile_api.runtime import Runtime

    settings = Settings()
    settings.check_production_ready()
    _prepare(settings)
    rt = Runtime.build(settings)
    if settings.bootstrap_adjuster_token:
        from mobile_api.claims.service import ensure_staff_token

        ensure_staff_token(rt, "adjuster@localhost", settings.bootstrap_adjuster_token)
    worker = None if args.no_worker else _spawn_worker()
    # uvicorn shuts down on SIGTERM, then raises the signal again; by default that ends the
    # process at once, skipping the `finally` below and leaving the worker running alone.
    signal.signal(signal.SIGTERM, _stopped)
    try:
        uvicorn.run(
            create_app(settings, rt),
            host=args.host or settings.api_host,
            port=args.port or settings.api_port,
            log_config=None,  # keep our JSON handler on the root logger
            **uvicorn_options(settings),
        )
    finally:
        if worker is not None:
            _stop(worker)
        rt.dispose()
    return 0


def _stopped(signum: int, frame: object) -> NoReturn:
    raise SystemExit(0)  # a requested stop is a clean exit


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """How uvicorn treats forwarded headers: believed only from `trusted_proxies`. Uvicorn's
    own default believes them from 127.0.0.1 (and FORWARDED_ALLOW_IPS), which lets any
    local process, or a proxy that passes the header through, choose its client address."""
    if not settings.trusted_proxies:
        return {"proxy_headers": False, "forwarded_allow_ips": ""}
    return {"proxy_headers": True, "forwarded_allow_ips": ",".join(settings.trusted_proxies)}


def _prepare(settings: Settings) -> None:
    from mobile_api.storage.migrate import upgrade

    if settings.resolved_database_url.startswith("sqlite") or settings.storage_backend == "local":
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.resolved_database_url, secret_key=settings.secret_key)


def _spawn_worker() -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "mobile_api.cli", "worker"]
    # Its own process group, so the terminal's Ctrl-C reaches it only through us, in order.
    return subprocess.Popen(command, start_new_session=True)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)  # Celery's warm shutdown: finish the current job
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _worker(args: argparse.Namespace) -> int:
    from mobile_api import runtime
    from mobile_api.worker.celery_app import configure_celery

    settings = Settings()
    settings.check_production_ready()
    if settings.resolved_broker_url.startswith("sqla+sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    runtime.install(runtime.Runtime.build(settings))
    app = configure_celery(settings)
    argv = [
        "worker",
        "--loglevel=INFO",
        f"--queues={args.queues}",
        f"--concurrency={args.concurrency or settings.worker_concurrency}",
        "--pool=prefork",
        "--without-gossip",
        "--without-mingle",
    ]
    if args.hostname:
        argv.append(f"--hostname={args.hostname}")
    app.worker_main(argv)
    return 0


def _db_upgrade(args: argparse.Namespace) -> int:
    from mobile_api.storage.migrate import upgrade

    settings = Settings()
    if settings.resolved_database_url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.resolved_database_url, args.revision, secret_key=settings.secret_key)
    print(f"database at revision {args.revision}")
    return 0


def _adjuster_create(args: argparse.Namespace) -> int:
    from mobile_api.auth import Role, hash_password
    from mobile_api.claims.service import create_staff
    from mobile_api.runtime import Runtime

    settings = Settings()
    _prepare(settings)
    password = args.password or os.environ.get("CDAT_NEW_PASSWORD")
    if password is not None and len(password) < 10:
        raise SystemExit("cdat: error: the password must have at least 10 characters")
    rt = Runtime.build(settings)
    user_id, token = create_staff(
        rt,
        args.email,
        Role(args.role),
        name=args.name,
        password_hash=hash_password(password) if password else None,
    )
    print(f"created {args.role} {args.email} ({user_id})\nAPI token (shown once): {token}")
    return 0


def _assess(args: argparse.Namespace) -> int:
    from mobile_api.cli.local import assess_files

    vehicle = Vehicle(
        make=args.make,
        model=args.model,
        year=args.year,
        body_type=BodyType(args.body_type),
        market_value=args.market_value,
    )
    return assess_files(Settings(), args.photos, vehicle, args.loss_date, as_json=args.json)


def setting_errors(exc: ValidationError) -> list[str]:
    """One line per unreadable setting, named as the operator sets it (CDAT_...)."""
    lines = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        name = f"CDAT_{field.upper()}" if exc.title == "Settings" and field else field
        lines.append(f"{name}: {error['msg']}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = get_args_parser()
    args = parser.parse_args(argv)
    if args.command in ("serve", "worker"):
        from mobile_api.logs import configure_logging

        configure_logging(os.environ.get("CDAT_LOG_LEVEL", "INFO"), as_json=args.log_json)
    handler: Handler = args.handler
    try:
        return handler(args)
    except CdatError as exc:
        print(f"cdat: error: {exc.message}", file=sys.stderr)
        return 2
    except ValidationError as exc:  # a CDAT_* setting the typed Settings cannot read
        for line in setting_errors(exc):
            print(f"cdat: error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

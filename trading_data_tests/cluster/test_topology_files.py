"""docker-compose.yml, the Helm values and the worker manifests stay runnable (no Docker engine or cluster
runs here): every command they give parses with the real command line it names (trading-data's argparse,
dagster / dagster-webserver / dagster-daemon / dagster-celery's click), there is a worker for every Celery
queue, and every TRADING_DATA_* variable they set is a declared setting with a valid value."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from trading_data.cli import build_parser
from trading_data.orchestration.celery_worker import worker_command
from trading_data.orchestration.queues import QUEUES
from trading_data.settings import all_settings

ROOT = Path(__file__).resolve().parents[2]
# Files the image's commands name, by their path inside the image (the Dockerfile's COPY lines).
IMAGE_FILES = {"/opt/dagster/workspace.yaml": ROOT / "deploy/docker/workspace.yaml"}


def _click_cli(program: str) -> click.Command:
    if program == "dagster":
        from dagster._cli import cli
    elif program == "dagster-webserver":
        from dagster_webserver.cli import cli
    elif program == "dagster-daemon":
        from dagster._daemon.cli import cli
    elif program == "dagster-celery":
        from dagster_celery.cli import main as cli
    else:
        raise AssertionError(f"a command of an unknown program: {program}")
    return cli


def _parse_click(command: click.Command, args: list[str], name: str) -> None:
    """Resolve ``args`` down the command's groups and parse them with the leaf command (click's own checks)."""
    context = command.make_context(name, list(args), resilient_parsing=False)
    while isinstance(command, click.Group):
        sub_name, sub, rest = command.resolve_command(context, context.protected_args + context.args)
        assert sub is not None and sub_name is not None, f"{name}: no subcommand in {args}"
        command, name = sub, f"{name} {sub_name}"
        context = command.make_context(sub_name, rest, parent=context)


def check_command(argv: Sequence[str]) -> None:
    """Fail unless ``argv`` parses with the program it names (``trading-data worker`` also checks the
    ``dagster-celery worker start`` line it runs)."""
    argv = [str(IMAGE_FILES.get(arg, arg)) for arg in argv]
    program, args = argv[0], argv[1:]
    if program == "trading-data":
        if args[:1] == ["simulator"]:
            from trading_data.sources.simulator.server import build_parser as simulator_parser

            simulator_parser().parse_args(args[1:])
            return
        parsed = build_parser().parse_args(args)
        if parsed.command == "worker":
            check_command(worker_command(parsed.queues, name=parsed.name, concurrency=parsed.concurrency))
        return
    _parse_click(_click_cli(program), args, program)


def _compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _k8s_workers() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((ROOT / "deploy/k8s/celery-workers.yaml").read_text()) if d]


def _helm(name: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / "deploy/helm" / name).read_text())


def _worker_queues(commands: list[list[str]]) -> set[str]:
    return {
        q
        for argv in commands
        if argv[:2] == ["trading-data", "worker"]
        for q in build_parser().parse_args(argv[1:]).queues
    }


def _declared() -> dict[str, Any]:
    return {setting.env_var: setting for _, setting in all_settings()}


def _check_variables(variables: dict[str, Any], where: str) -> None:
    declared = _declared()
    for name, value in variables.items():
        if not name.startswith("TRADING_DATA_"):
            continue
        assert name in declared, f"{where}: {name} is no declared setting"
        text = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(value))  # compose's ${VAR:-default}
        if text:
            declared[name].get({name: text})


def _compose_commands() -> Iterator[tuple[str, list[str]]]:
    for name, service in _compose()["services"].items():
        if "command" in service:
            yield name, service["command"]


def test_the_real_command_lines_refuse_a_wrong_command() -> None:
    with pytest.raises(SystemExit):
        check_command(["trading-data", "worker", "quotes"])
    with pytest.raises(click.UsageError):
        check_command(["dagster", "code-server", "start", "--no-such-option"])
    with pytest.raises(click.UsageError):
        check_command(
            ["dagster-celery", "worker", "start", "--concurrency=2"]
        )  # celery's option, before "--"


@pytest.mark.parametrize(
    ("service", "argv"), list(_compose_commands()), ids=[n for n, _ in _compose_commands()]
)
def test_every_compose_command_parses_with_its_cli(service: str, argv: list[str]) -> None:
    check_command(argv)


def test_compose_runs_rabbitmq_and_a_worker_per_queue_on_the_celery_executor() -> None:
    compose = _compose()
    services = compose["services"]
    assert "rabbitmq" in services
    assert _worker_queues([argv for _, argv in _compose_commands()]) == set(QUEUES)
    for name, service in services.items():
        _check_variables(service.get("environment") or {}, f"docker-compose.yml {name}")
    for name in ("code-server", "daemon", "worker-polygon", "worker-compute"):
        environment = services[name]["environment"]
        assert environment["TRADING_DATA_EXECUTOR"] == "celery", name
        assert "@rabbitmq:5672/" in environment["TRADING_DATA_CELERY_BROKER_URL"], name
        # The code server runs the runs (the default run launcher): it and the workers wait for the broker.
        assert name == "daemon" or "rabbitmq" in services[name]["depends_on"], name


def test_the_dockerfile_command_parses() -> None:
    line = next(x for x in (ROOT / "Dockerfile").read_text().splitlines() if x.startswith("CMD "))
    check_command(json.loads(line.removeprefix("CMD ")))


def test_helm_values_name_a_run_launcher_and_a_code_server_that_parses() -> None:
    for name in ("values.yaml", "values-celery.yaml"):
        values = _helm(name)
        assert values["runLauncher"]["type"] in {"K8sRunLauncher", "CeleryK8sRunLauncher"}, name
        for deployment in values["dagster-user-deployments"]["deployments"]:
            check_command(
                ["dagster", "api", "grpc", *deployment["dagsterApiGrpcArgs"], "-p", str(deployment["port"])]
            )
            _check_variables(
                {e["name"]: e["value"] for e in deployment.get("env", [])}, f"{name} {deployment['name']}"
            )
        env_vars = values["runLauncher"]["config"]["k8sRunLauncher"].get("envVars", [])
        _check_variables(dict(v.split("=", 1) for v in env_vars), f"{name} runLauncher")
    assert _helm("values-celery.yaml")["runLauncher"]["config"]["k8sRunLauncher"]["envVars"] == [
        "TRADING_DATA_EXECUTOR=celery"
    ]


def test_the_kubernetes_workers_cover_every_queue_and_parse() -> None:
    commands = []
    for manifest in _k8s_workers():
        for container in manifest["spec"]["template"]["spec"]["containers"]:
            check_command(container["command"])
            commands.append(container["command"])
    assert _worker_queues(commands) == set(QUEUES)

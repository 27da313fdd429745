"""`skingen-study deploy nginx` writes a complete, valid deployment folder (no servers started here)."""

from __future__ import annotations

import shutil
import stat
import subprocess

import pytest

from app.study_command import main
from formats.atomic import OutputExistsError
from study.deploy import SECURITY_HEADERS, Deployment, write_deployment
from tests.conftest import require


def _deployment(tmp_path, **changes) -> Deployment:
    options = {"replicas": 3, "port": 18500, "db_url": "postgresql+psycopg://u:secret@db/study"}
    options |= {"protocol": tmp_path / "p.yaml", "out": tmp_path / "site"} | changes
    return Deployment(**options)


def test_the_folder_holds_every_config_and_the_database_url_only_in_a_private_file(tmp_path):
    d = _deployment(tmp_path)
    written = write_deployment(d)
    assert {p.name for p in written} >= {"nginx.conf", "supervisord.conf", "start.sh", "study.env"}
    nginx = (d.out / "nginx.conf").read_text()
    for port in (18501, 18502, 18503):
        assert f"server 127.0.0.1:{port} " in nginx
    assert "listen 127.0.0.1:18500;" in nginx and "hash $skingen_route_key consistent;" in nginx
    assert "location /_stcore/stream" in nginx and "proxy_set_header Upgrade $http_upgrade;" in nginx
    for name, value in SECURITY_HEADERS.items():
        assert f'add_header {name} "{value}" always;' in nginx
    supervisor = (d.out / "supervisord.conf").read_text()
    assert (
        "numprocs=3" in supervisor
        and "numprocs_start=18501" in supervisor
        and "autorestart=true" in supervisor
    )
    assert "supervisor.supervisord -n" in (d.out / "start.sh").read_text()
    assert (d.out / "start.sh").stat().st_mode & stat.S_IXUSR
    assert stat.S_IMODE((d.out / "study.env").stat().st_mode) == 0o600
    assert "secret" in (d.out / "study.env").read_text()
    assert not any("secret" in p.read_text() for p in written if p.name != "study.env")
    assert (d.out / "systemd" / "skingen-study@.service").is_file()
    with pytest.raises(OutputExistsError):
        write_deployment(d)  # nothing half-replaced: a non-empty folder needs overwrite


def test_the_explorer_gets_a_server_of_its_own_behind_its_own_port(tmp_path):
    d = _deployment(tmp_path, explorer_port=18600)
    write_deployment(d)
    assert d.replica_ports == [18501, 18502, 18503] and d.explorer_server_port == 18504
    nginx = (d.out / "nginx.conf").read_text()
    study, explorer = nginx.split("listen 127.0.0.1:18600;")
    assert "upstream skingen_explorer {\n        server 127.0.0.1:18504;" in study
    assert "server 127.0.0.1:18504 max_fails" not in study  # not one of the study's replicas
    assert "proxy_pass http://skingen_study;" in study and "skingen_study" not in explorer
    assert (
        explorer.count("proxy_pass http://skingen_explorer;") == 3 and "client_max_body_size 25m;" in explorer
    )
    for name in SECURITY_HEADERS:
        assert name in explorer
    supervisor = (d.out / "supervisord.conf").read_text()
    replicas, explorer_program = supervisor.split("[program:explorer]")
    assert "--explorer-open" not in replicas  # the study's replicas keep the explorer closed
    assert (
        "--port 18504 --explorer-open --nice 10" in explorer_program
        and "autorestart=true" in explorer_program
    )
    assert "--nice" not in replicas  # the study's replicas keep the normal priority
    unit = (d.out / "systemd" / "skingen-study-explorer.service").read_text()
    assert "--port 18504 --explorer-open --nice 10" in unit
    assert "skingen-study-explorer.service" in (d.out / "systemd" / "skingen-study.target").read_text()
    assert not (_deployment(tmp_path, out=tmp_path / "plain").explorer_server_port)


def test_nginx_accepts_the_generated_config(tmp_path):
    require(shutil.which("nginx") is not None, "nginx is not installed (apt-get install nginx)")
    d = _deployment(tmp_path, explorer_port=18600)
    write_deployment(d)
    (d.run_dir).mkdir()
    (d.log_dir).mkdir()
    check = subprocess.run(
        [
            d.nginx_binary,
            "-t",
            "-p",
            f"{d.out}/",
            "-e",
            str(d.log_dir / "e.log"),
            "-c",
            str(d.out / "nginx.conf"),
        ],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"replicas": 0}, "--replicas"),
        ({"port": 18501, "first_replica_port": 18500}, "also a replica port"),
        ({"explorer_port": 18502}, "--explorer-port 18502 is taken"),
        ({"explorer_port": 70000}, "--explorer-port must be a TCP port"),
    ],
)
def test_impossible_deployments_are_refused_naming_the_option(tmp_path, changes, message):
    with pytest.raises(ValueError, match=message):
        _deployment(tmp_path, **changes)


def test_the_command_validates_the_protocol_first_and_writes_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("study: {}\n")
    assert main(["deploy", "nginx", "--protocol", str(bad), "--out", str(tmp_path / "site")]) == 2
    assert not (tmp_path / "site").exists()

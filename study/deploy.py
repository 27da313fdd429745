"""``skingen-study deploy nginx``: the files that run N app servers behind nginx on one machine.

Nobody hand-writes these configs: :func:`write_deployment` writes, into one folder and all at once
(``formats.atomic``),

- ``nginx.conf``: one upstream ``server 127.0.0.1:PORT`` per replica, sticky sessions, the websocket upgrade
  for Streamlit's ``/_stcore/stream``, the security headers, a cache for the content-addressed images;
- ``supervisord.conf``: supervisor (an existing process manager, PyPI/Debian ``supervisor``) starts nginx and
  the replicas and restarts any that dies;
- ``start.sh``: registers the protocol once, then runs supervisor in the foreground; SIGTERM stops it all;
- ``systemd/``: the same for production, as units (``skingen-study@PORT.service`` per replica, nginx);
- ``study.env``: the database URL (readable by the owner only; no URL on a command line or in ``ps``).

With ``--explorer-port P`` one more server, open to anyone as the explorer (``serve --explorer-open``), runs
behind nginx's port P: explorer users then never share a participant's server (an active explorer costs a
server about what a participant does, docs/workers.md), and the study's replicas keep the explorer closed.
That server runs at a lower CPU priority (``serve --nice``, :data:`EXPLORER_NICE`): when the cores are busy the
study's replicas come first, and the explorer's users wait instead of the paid participants.

Why a sticky cookie and not ``ip_hash``: Streamlit keeps a session's widgets and media in the process that
serves its websocket, so a browser must keep reaching one replica; ``ip_hash`` would put every participant
behind one NAT (a lab, a university) on one replica. Open-source nginx has no ``sticky`` directive, so the
first response sets a cookie holding a random key (``$request_id``) and the upstream is chosen by a
consistent hash of that key. When that replica is down nginx moves the request to the next one
(``proxy_next_upstream``); the participant's state is in the database, so they resume where they were.
See docs/deployment.md.
"""

from __future__ import annotations

import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from db.session import DB_ENV
from formats.atomic import atomic_directory
from study.http_headers import SECURITY_HEADERS

ROUTE_COOKIE = "skingen_route"
REPLICA_PROGRAM = "replica"
EXPLORER_PROGRAM = "explorer"
NGINX_FALLBACK = "/usr/sbin/nginx"
# The explorer's server yields the CPU to the study's replicas (nice 10: ~1/9 of their share when both are busy).
EXPLORER_NICE = 10
# The `serve` options of the explorer's own server (bench/bench_explorer.py starts it the same way).
EXPLORER_SERVER_OPTIONS = ("--explorer-open", "--nice", str(EXPLORER_NICE))


@dataclass(frozen=True)
class Deployment:
    """One machine's deployment: nginx on ``host:port`` in front of ``replicas`` servers on later ports."""

    replicas: int
    port: int
    db_url: str
    protocol: Path
    out: Path
    host: str = "127.0.0.1"
    first_replica_port: int | None = None
    python: str = sys.executable
    nginx: str = ""
    explorer_port: int | None = None

    def __post_init__(self) -> None:
        if self.replicas < 1:
            raise ValueError(f"--replicas must be at least 1, got {self.replicas}")
        for option, port in (("--port", self.port), ("--explorer-port", self.explorer_port)):
            if port is not None and not 1 <= port <= 65535:
                raise ValueError(f"{option} must be a TCP port (1–65535), got {port}")
        if self.server_ports[-1] > 65535:
            raise ValueError(f"--replicas {self.replicas} from port {self.replica_ports[0]} run past 65535")
        if self.port in self.server_ports:
            raise ValueError(f"--port {self.port} is also a replica port ({self.server_ports})")
        if self.explorer_port is not None and self.explorer_port in (self.port, *self.server_ports):
            raise ValueError(
                f"--explorer-port {self.explorer_port} is taken (nginx, replicas {self.server_ports})"
            )

    @property
    def replica_ports(self) -> list[int]:
        first = self.first_replica_port or self.port + 1
        return list(range(first, first + self.replicas))

    @property
    def explorer_server_port(self) -> int | None:
        """The explorer's own server, on the port after the replicas' (with ``explorer_port``)."""
        return None if self.explorer_port is None else self.replica_ports[-1] + 1

    @property
    def server_ports(self) -> list[int]:
        """Every app server's port: the replicas', then the explorer's."""
        return self.replica_ports + ([self.explorer_server_port] if self.explorer_port is not None else [])

    @property
    def nginx_binary(self) -> str:
        return self.nginx or shutil.which("nginx") or NGINX_FALLBACK

    @property
    def run_dir(self) -> Path:
        """Runtime files (pids, sockets, nginx temp and cache folders), created by start.sh."""
        return self.out / "run"

    @property
    def log_dir(self) -> Path:
        return self.out / "logs"

    def replica_command(self, port: str, *, explorer: bool = False) -> str:
        """The command of one replica (or of the explorer's server); the database URL comes from the
        environment (study.env)."""
        args = [self.python, "-m", "app.study_command", "serve", "--protocol", str(self.protocol)]
        args += ["--host", "127.0.0.1", "--port", port]
        return shlex.join([*args, *(EXPLORER_SERVER_OPTIONS if explorer else ())])

    def nginx_command(self) -> str:
        return shlex.join(
            [
                self.nginx_binary,
                "-p",
                f"{self.out}/",
                "-e",
                str(self.log_dir / "nginx-error.log"),
                "-c",
                str(self.out / "nginx.conf"),
                "-g",
                "daemon off;",
            ]
        )


# --- nginx --------------------------------------------------------------------------------------------------
def nginx_conf(d: Deployment) -> str:
    """nginx.conf: runs unprivileged (every path under the deployment folder, ports above 1024 work)."""
    run, logs = d.run_dir, d.log_dir
    servers = "\n".join(f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;" for p in d.replica_ports)
    headers = "\n".join(
        f'        add_header {name} "{value}" always;' for name, value in SECURITY_HEADERS.items()
    )
    explorer_upstream = explorer_server = ""
    if d.explorer_port is not None:
        explorer_upstream = (
            "    # The explorer's own server (--explorer-port): its users never share a participant's server.\n"
            f"    upstream skingen_explorer {{\n        server 127.0.0.1:{d.explorer_server_port};\n    }}\n"
        )
        # Photos from phones are larger than anything a participant sends.
        explorer_server = "\n" + _server_block(
            f"{d.host}:{d.explorer_port}", "skingen_explorer", headers, max_body="25m"
        )
    return f"""# Written by `skingen-study deploy nginx`; regenerate instead of editing (docs/deployment.md).
worker_processes auto;
pid {run}/nginx.pid;
error_log {logs}/nginx-error.log warn;

events {{
    worker_connections 4096;
}}

http {{
    default_type application/octet-stream;
    server_tokens off;
    client_body_temp_path {run}/client_body;
    proxy_temp_path {run}/proxy;
    fastcgi_temp_path {run}/fastcgi;
    uwsgi_temp_path {run}/uwsgi;
    scgi_temp_path {run}/scgi;

    # Which replica served each request, and how long it took: what docs/deployment.md says to monitor.
    log_format skingen '$time_iso8601 $remote_addr "$request" $status $body_bytes_sent '
                       'upstream=$upstream_addr upstream_status=$upstream_status cache=$upstream_cache_status '
                       'request_s=$request_time upstream_s=$upstream_response_time route=${ROUTE_COOKIE}_key';
    access_log {logs}/nginx-access.log skingen;

    # Sticky sessions (see study/deploy.py): a random key in a cookie, hashed onto the replicas.
    map $cookie_{ROUTE_COOKIE} ${ROUTE_COOKIE}_key {{
        "" $request_id;
        default $cookie_{ROUTE_COOKIE};
    }}
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        "" close;
    }}
    # Image URLs are content hashes (/media/<sha>.jpg): the same on every replica, so one cached copy serves all.
    proxy_cache_path {run}/media-cache levels=1:2 keys_zone=skingen_media:10m max_size=1g inactive=7d
                     use_temp_path=off;

    upstream skingen_study {{
        hash ${ROUTE_COOKIE}_key consistent;
{servers}
    }}
{explorer_upstream}
{_server_block(f"{d.host}:{d.port}", "skingen_study", headers)}{explorer_server}}}
"""


def _server_block(listen: str, upstream: str, headers: str, *, max_body: str = "2m") -> str:
    """One nginx ``server``: the sticky cookie, the security headers, the websocket, the cached images."""
    return f"""    server {{
        listen {listen};
        client_max_body_size {max_body};
        add_header Set-Cookie "{ROUTE_COOKIE}=${ROUTE_COOKIE}_key; Path=/; HttpOnly; SameSite=Lax" always;
{headers}

        proxy_http_version 1.1;
        proxy_set_header Host $host;
        proxy_set_header X-Real-IP $remote_addr;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_connect_timeout 2s;
        # A replica that refuses or drops the connection: try the next one (the state is in the database).
        proxy_next_upstream error timeout http_502 http_503;

        location / {{
            proxy_pass http://{upstream};
        }}

        location /_stcore/stream {{
            proxy_pass http://{upstream};
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_buffering off;
            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
        }}

        location /media/ {{
            proxy_pass http://{upstream};
            proxy_cache skingen_media;
            proxy_cache_key $uri;
            proxy_cache_valid 200 7d;
            proxy_ignore_headers Set-Cookie;
            expires 7d;
        }}
    }}
"""


# --- supervisor ---------------------------------------------------------------------------------------------
def supervisord_conf(d: Deployment) -> str:
    """supervisord.conf: nginx and one program per replica port, each restarted when it dies."""
    run, logs = d.run_dir, d.log_dir
    programs = [
        _program("nginx", d.nginx_command(), logs / "nginx.log", stopsignal="QUIT"),
        # One program, ``numprocs`` processes numbered by their port: replica-8502, replica-8503, …
        _program(
            REPLICA_PROGRAM,
            d.replica_command("%(process_num)d"),
            logs / "replica-%(process_num)d.log",
            stopsignal="TERM",
            extra=f"process_name=%(program_name)s-%(process_num)d\nnumprocs={d.replicas}\n"
            f"numprocs_start={d.replica_ports[0]}\n",
        ),
    ]
    if d.explorer_server_port is not None:
        port = str(d.explorer_server_port)
        command = d.replica_command(port, explorer=True)
        programs.append(_program(EXPLORER_PROGRAM, command, logs / f"explorer-{port}.log", stopsignal="TERM"))
    return f"""; Written by `skingen-study deploy nginx`; start.sh runs it (supervisord -n -c this file).
[supervisord]
nodaemon=true
logfile={logs}/supervisord.log
pidfile={run}/supervisord.pid
childlogdir={logs}

[unix_http_server]
file={run}/supervisor.sock
chmod=0700

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{run}/supervisor.sock

{"".join(programs)}"""


def _program(name: str, command: str, log: Path, *, stopsignal: str, extra: str = "") -> str:
    return f"""[program:{name}]
command={command}
{extra}autostart=true
autorestart=true
startsecs=3
startretries=100
stopsignal={stopsignal}
stopwaitsecs=20
stopasgroup=true
killasgroup=true
redirect_stderr=true
stdout_logfile={log}

"""


# --- the foreground script and systemd ----------------------------------------------------------------------
def start_script(d: Deployment) -> str:
    python = shlex.quote(d.python)
    return f"""#!/bin/sh
# Written by `skingen-study deploy nginx`: nginx + {d.replicas} app servers in the foreground until SIGTERM/Ctrl-C.
set -eu
cd {shlex.quote(str(d.out))}
mkdir -p {shlex.quote(str(d.run_dir))} {shlex.quote(str(d.log_dir))}
set -a
. ./study.env
set +a
# Register the protocol once (a no-op when it is), so the replicas don't race to create the schema.
{python} -m app.study_command init --protocol {shlex.quote(str(d.protocol))}
# supervisord replaces this shell: SIGTERM reaches it and it stops nginx and every replica.
exec {python} -m supervisor.supervisord -n -c {shlex.quote(str(d.out / "supervisord.conf"))}
"""


def systemd_units(d: Deployment) -> dict[str, str]:
    """Production units: a template replica (``%i`` = port) and nginx; ``skingen-study.target`` groups them."""
    wants = " ".join(f"skingen-study@{p}.service" for p in d.replica_ports)
    replica = _server_unit(d, "SkinGEN study app server on port %i", d.replica_command("%i"))
    nginx = f"""[Unit]
Description=nginx in front of the SkinGEN study app servers
After=network-online.target
PartOf=skingen-study.target

[Service]
ExecStartPre=/bin/mkdir -p {d.run_dir} {d.log_dir}
ExecStart={d.nginx_command()}
ExecReload=/bin/kill -HUP $MAINPID
KillSignal=SIGQUIT
Restart=always

[Install]
WantedBy=skingen-study.target
"""
    units = {"skingen-study@.service": replica, "skingen-study-nginx.service": nginx}
    if d.explorer_server_port is not None:
        command = d.replica_command(str(d.explorer_server_port), explorer=True)
        units["skingen-study-explorer.service"] = _server_unit(
            d, "SkinGEN explorer server (open to all)", command
        )
        wants += " skingen-study-explorer.service"
    target = f"""[Unit]
Description=SkinGEN study: nginx and {d.replicas} app servers
Wants=skingen-study-nginx.service {wants}

[Install]
WantedBy=multi-user.target
"""
    return units | {"skingen-study.target": target}


def _server_unit(d: Deployment, description: str, command: str) -> str:
    return f"""[Unit]
Description={description}
After=network-online.target postgresql.service
PartOf=skingen-study.target

[Service]
EnvironmentFile={d.out}/study.env
WorkingDirectory={d.out}
ExecStart={command}
Restart=always
RestartSec=2
KillSignal=SIGTERM
NoNewPrivileges=true

[Install]
WantedBy=skingen-study.target
"""


def write_deployment(d: Deployment, *, overwrite: bool = False) -> list[Path]:
    """Write every file of the deployment into ``d.out`` at once; returns the files written."""
    with atomic_directory(d.out, overwrite=overwrite) as staging:
        files = {
            "nginx.conf": nginx_conf(d),
            "supervisord.conf": supervisord_conf(d),
            "start.sh": start_script(d),
            **{f"systemd/{name}": text for name, text in systemd_units(d).items()},
        }
        for name, text in files.items():
            path = staging / name
            path.parent.mkdir(exist_ok=True)
            path.write_text(text, encoding="utf-8")
        (staging / "start.sh").chmod(0o755)
        env = staging / "study.env"
        env.touch(mode=0o600)
        env.write_text(f"{DB_ENV}={shlex.quote(d.db_url)}\n", encoding="utf-8")
    return [d.out / name for name in [*files, "study.env"]]

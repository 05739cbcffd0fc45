"""The local cluster's OCI registry: the CNCF distribution registry (tools/registry) on the node's bridge
address, so that build Jobs in pods push to it and the node's containerd pulls from it, as on a real
cluster.

- Credentials are real: a user and a password made for each run, checked through an htpasswd file (bcrypt,
  the only hash the registry accepts); pods pull with an imagePullSecret, nobody pulls anonymously. The
  password is written only to files readable by root (the htpasswd hash, and `docker-config.json` for
  tools), never to a log.
- Plain HTTP on the project's own bridge (as kind's local registry): containerd is told so per host
  (`hosts.toml`), builders by the operator's setting for plain-HTTP registries.
- Storage is kept across runs beside containerd's image store, so a second push of the same layers only
  checks that they are there.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import bcrypt

USER = "modelops"
REALM = "modelops-local-registry"
PUSH_SCRIPT = Path(__file__).resolve().parents[2] / "image" / "push.sh"


@dataclass(frozen=True)
class LocalRegistry:
    """Where the registry listens and how to log in; `host` is `ip:port`, as image references name it."""

    host: str
    debug_port: int
    workdir: Path
    storage: Path
    username: str = USER
    password: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)

    @property
    def config_file(self) -> Path:
        return self.workdir / "config.yml"

    @property
    def htpasswd_file(self) -> Path:
        return self.workdir / "htpasswd"

    @property
    def docker_config_file(self) -> Path:
        """A Docker config.json with this registry's credentials (for buildah, crane, Secrets)."""
        return self.workdir / "docker-config.json"

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.debug_port}/debug/health"

    def docker_config(self) -> dict[str, object]:
        """The `.dockerconfigjson` of a kubernetes.io/dockerconfigjson Secret for this registry."""
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return {"auths": {self.host: {"auth": token}}}

    def pull_secret(self, name: str) -> dict[str, object]:
        """A kubernetes.io/dockerconfigjson Secret with these credentials (pull, and push for builds)."""
        config = base64.b64encode(json.dumps(self.docker_config()).encode()).decode()
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name},
            "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": config},
        }

    def push_env(self, prefix: str = "modelops") -> dict[str, str]:
        """The environment of `make image-push` (tools/image/push.sh) for this registry, under `prefix`."""
        return {
            "IMAGE_REPOSITORY": f"{self.host}/{prefix}",
            "REGISTRY_USER": self.username,
            "REGISTRY_PASSWORD": self.password,
            "IMAGE_TLS_VERIFY": "false",
        }

    def push(self, *targets: str) -> dict[str, str]:
        """tools/image/push.sh of `make image`'s images here: target -> repository@sha256:... ."""
        done = subprocess.run(
            [str(PUSH_SCRIPT), *targets],
            env={**os.environ, **self.push_env()},
            stdout=subprocess.PIPE,
            text=True,
            timeout=900,
            check=True,
        )
        return pushed_references(done.stdout)

    def write(self) -> None:
        """The registry's configuration, its htpasswd file and the Docker config (root-only files)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.storage.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_hex(16)  # signs upload state between requests; a new one each run is fine
        _private(self.config_file, registry_config(self.host, self.debug_port, self.storage, self, secret))
        _private(self.htpasswd_file, htpasswd_line(self.username, self.password))
        _private(self.docker_config_file, json.dumps(self.docker_config()))

    def env(self) -> dict[str, str]:
        """The registry process's environment additions: no OpenTelemetry exporter to dial."""
        return {"OTEL_TRACES_EXPORTER": "none", "OTEL_SDK_DISABLED": "true"}


def _private(path: Path, text: str) -> None:
    path.write_text(text)
    os.chmod(path, 0o600)


def htpasswd_line(user: str, password: str) -> str:
    """One htpasswd entry with a bcrypt hash (cost 10: about 50 ms per check, once per pull or push)."""
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10)).decode()
    return f"{user}:{hashed}\n"


def registry_config(host: str, debug_port: int, storage: Path, registry: LocalRegistry, secret: str) -> str:
    """The distribution registry's config.yml (JSON is YAML): HTTP on `host`, health on loopback."""
    config = {
        "version": "0.1",
        "log": {"level": "warn", "formatter": "text", "accesslog": {"disabled": True}},
        "storage": {
            "filesystem": {"rootdirectory": str(storage)},
            "delete": {"enabled": True},
            "maintenance": {
                "uploadpurging": {"enabled": True, "age": "24h", "interval": "1h", "dryrun": False}
            },
        },
        "http": {"addr": host, "secret": secret, "debug": {"addr": f"127.0.0.1:{debug_port}"}},
        "auth": {"htpasswd": {"realm": REALM, "path": str(registry.htpasswd_file)}},
        "health": {"storagedriver": {"enabled": True, "interval": "10s", "threshold": 3}},
    }
    return json.dumps(config, indent=2) + "\n"


def hosts_toml(host: str) -> str:
    """containerd's per-host configuration: pull and resolve from `host` over plain HTTP."""
    return f'server = "http://{host}"\n\n[host."http://{host}"]\n  capabilities = ["pull", "resolve"]\n'


def pushed_references(output: str) -> dict[str, str]:
    """push.sh's output (one `.../modelops-<target>@sha256:...` per line) as target -> reference."""
    return {ref.split("/modelops-", 1)[1].split("@")[0]: ref for ref in output.split()}

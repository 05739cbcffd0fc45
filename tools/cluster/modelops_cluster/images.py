"""Images for the real node without a registry: the pause image written as an OCI archive, and images
built by buildah imported into containerd once per image store (a label records which build it was)."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
import tempfile
from pathlib import Path

SOURCE_LABEL = "modelops.dev/source-id"


class ImageError(RuntimeError):
    """An image could not be exported or imported."""


def _blob(data: bytes) -> tuple[str, int]:
    return "sha256:" + hashlib.sha256(data).hexdigest(), len(data)


def _add(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, 0
    tar.addfile(info, io.BytesIO(data))


def pause_archive(binary: bytes, ref: str) -> bytes:
    """An OCI image archive of one layer holding /pause (entrypoint), named `ref` for `ctr images import`."""
    layer_io = io.BytesIO()
    with tarfile.open(fileobj=layer_io, mode="w", format=tarfile.PAX_FORMAT) as layer:
        _add(layer, "pause", binary, 0o755)
    layer_bytes = layer_io.getvalue()
    layer_digest, layer_size = _blob(layer_bytes)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Entrypoint": ["/pause"], "User": "65535:65535"},
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        },
        sort_keys=True,
    ).encode()
    config_digest, config_size = _blob(config)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": config_size,
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer_digest,
                    "size": layer_size,
                }
            ],
        },
        sort_keys=True,
    ).encode()
    manifest_digest, manifest_size = _blob(manifest)
    index = json.dumps(
        {
            "schemaVersion": 2,
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": manifest_digest,
                    "size": manifest_size,
                    "annotations": {
                        "io.containerd.image.name": ref,
                        "org.opencontainers.image.ref.name": ref.rsplit(":", 1)[-1],
                    },
                }
            ],
        }
    ).encode()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
        _add(tar, "index.json", index)
        for data in (layer_bytes, config, manifest):
            _add(tar, f"blobs/sha256/{_blob(data)[0].split(':')[1]}", data)
    return out.getvalue()


def normalized(ref: str) -> str:
    """The name the CRI looks an image up by: docker.io/library/ for bare names, docker.io/ for user/x."""
    first = ref.split("/", 1)[0]
    if "/" in ref and ("." in first or ":" in first or first == "localhost"):
        return ref
    return f"docker.io/{ref}" if "/" in ref else f"docker.io/library/{ref}"


class Containerd:
    """`ctr` against one containerd socket, in the namespace the CRI uses."""

    def __init__(self, socket: Path, scratch: Path) -> None:
        self.socket = socket
        self.scratch = scratch  # where image archives are staged (on disk, not in /run)

    def ctr(self, *args: str, timeout: float = 600, check: bool = True) -> str:
        """Run `ctr` in the CRI's namespace; its stdout, or ImageError when it fails (and `check`)."""
        argv = ["ctr", "--address", str(self.socket), "--namespace", "k8s.io", *args]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        if check and done.returncode != 0:
            raise ImageError(f"{' '.join(argv)}: {done.stderr.strip()}")
        return done.stdout

    def source_id(self, ref: str) -> str | None:
        """The build an image was imported from (its SOURCE_LABEL), None when absent or unlabelled."""
        for line in self.ctr("images", "ls", f"name=={ref}").splitlines()[1:]:
            for label in line.split()[-1].split(","):
                key, _, value = label.partition("=")
                if key == SOURCE_LABEL:
                    return value
        return None

    def import_archive(self, archive: Path, ref: str, source_id: str) -> None:
        self.ctr("images", "import", str(archive))
        self.ctr("images", "label", ref, f"{SOURCE_LABEL}={source_id}")

    def ensure_pause(self, binary: Path, ref: str) -> bool:
        """Import the pause image unless this exact binary is there already; True when imported."""
        data = binary.read_bytes()
        source = hashlib.sha256(data).hexdigest()[:16]
        if self.source_id(ref) == source:
            return False
        with tempfile.TemporaryDirectory() as tmp:
            archive = Path(tmp) / "pause.tar"
            archive.write_bytes(pause_archive(data, ref))
            self.import_archive(archive, ref, source)
        return True

    def ensure_buildah_image(self, buildah_ref: str, ref: str) -> bool:
        """Import a buildah image as `ref` (normalized) unless the same build is there; True when imported."""
        target = normalized(ref)
        inspected = subprocess.run(
            ["buildah", "images", "--no-trunc", "--format", "{{.ID}}", buildah_ref],
            capture_output=True,
            text=True,
            check=False,
        )
        if inspected.returncode != 0 or not inspected.stdout.strip():
            raise ImageError(f"buildah has no image {buildah_ref}: {inspected.stderr.strip()}")
        source = inspected.stdout.split()[0].removeprefix("sha256:")[:16]
        if self.source_id(target) == source:
            return False
        with tempfile.TemporaryDirectory(dir=self.scratch) as tmp:
            archive = Path(tmp) / "image.tar"
            pushed = subprocess.run(
                ["buildah", "push", "--quiet", buildah_ref, f"docker-archive:{archive}:{target}"],
                capture_output=True,
                text=True,
                check=False,
            )
            if pushed.returncode != 0:
                raise ImageError(f"buildah push {buildah_ref}: {pushed.stderr.strip()}")
            self.import_archive(archive, target, source)
        return True

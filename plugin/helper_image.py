"""The helper image: present and current? Else build it from the files this package ships."""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__, logs
from .errors import DaemonError, HelperImageError

if TYPE_CHECKING:
    import docker

REPOSITORY = "docker-spy-helper"
LABEL_ROLE = "io.docker-spy.role"
LABEL_VERSION = "io.docker-spy.version"
LABEL_CONTEXT = "io.docker-spy.context"
ROLE = "helper"
HELPER_FILES = ("*.py", "bpf/spy.bpf.o", "tables/*.h")

log = logs.get_logger(__name__)


def default_tag() -> str:
    return f"{REPOSITORY}:{__version__}"


def context_files() -> dict[str, bytes]:
    """The build context, as archive name -> content: the Dockerfile, helper/*.py, the BPF
    object and the kernel's tables (not the BPF source: the object is what runs)."""
    here = Path(__file__).resolve().parent
    # Installed, the Dockerfile travels inside the package; in a checkout it is ../image.
    for dockerfile in (here / "_image" / "Dockerfile", here.parent / "image" / "Dockerfile"):
        if dockerfile.is_file():
            break
    else:
        raise HelperImageError("the helper's Dockerfile is missing from this installation",
                               "reinstall docker spy")
    files = {"Dockerfile": dockerfile.read_bytes()}
    helper = here / "helper"
    for pattern in HELPER_FILES:
        for source in sorted(helper.glob(pattern)):
            files[f"helper/{source.relative_to(helper).as_posix()}"] = source.read_bytes()
    if "helper/bpf/spy.bpf.o" not in files:
        raise HelperImageError("the helper's BPF object is missing from this installation",
                               "reinstall docker spy")
    return files


def context_digest(files: dict[str, bytes]) -> str:
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return h.hexdigest()[:16]


def _tar(files: dict[str, bytes]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


def _labels(image: docker.models.images.Image) -> dict[str, str]:
    return (image.attrs.get("Config") or {}).get("Labels") or {}


def build(client: docker.DockerClient, progress: Callable[[str], None]) -> str:
    """Build the helper image on the engine; return its id."""
    import docker.errors

    files = context_files()
    tag = default_tag()
    labels = {LABEL_ROLE: ROLE, LABEL_VERSION: __version__, LABEL_CONTEXT: context_digest(files)}
    progress(f"building the helper image {tag} on the engine (once per version)")
    image_id = None
    try:
        for chunk in client.api.build(fileobj=_tar(files), custom_context=True, tag=tag,
                                      labels=labels, rm=True, forcerm=True, decode=True):
            if "error" in chunk:
                raise HelperImageError(
                    f"building the helper image failed: {str(chunk['error']).strip()[:300]}",
                    "on a host without network, build it elsewhere with `docker spy build-helper`"
                    f" and move it: docker save {tag} | docker load",
                )
            text = str(chunk.get("stream", "")).rstrip()
            if text:
                progress(text)
            if "aux" in chunk and isinstance(chunk["aux"], dict):
                image_id = chunk["aux"].get("ID", image_id)
    except docker.errors.APIError as e:
        raise HelperImageError(f"the engine refused to build the helper image: {e.explanation}",
                               "docker spy build-helper --debug shows more") from None
    except docker.errors.DockerException as e:
        raise DaemonError(f"the engine stopped answering during the build: {e}") from None
    return image_id or client.images.get(tag).id


def ensure(client: docker.DockerClient, override: str | None,
           progress: Callable[[str], None]) -> str:
    """The id of the helper image to run: --helper-image as given, or ours, built if needed."""
    import docker.errors

    tag = override or default_tag()
    try:
        image = client.images.get(tag)
    except docker.errors.ImageNotFound:
        image = None
    except docker.errors.DockerException as e:
        raise DaemonError(f"the engine could not look up the helper image: {e}") from None
    if override:
        if image is None:
            raise HelperImageError(f"helper image {override} is not on the engine",
                                   "docker load it, or leave --helper-image out")
        if _labels(image).get(LABEL_ROLE) != ROLE:
            raise HelperImageError(f"{override} is not a docker spy helper image",
                                   "build one with docker spy build-helper")
        return image.id
    if image is not None and _labels(image).get(LABEL_CONTEXT) == context_digest(context_files()):
        return image.id
    if image is not None:
        log.info("helper image is stale, rebuilding", tag=tag)
    return build(client, progress)

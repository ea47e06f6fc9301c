"""The helper image's build on first use, cold: as docker spy builds it (image/Dockerfile, the BPF
object compiled ahead of time and shipped), and the alternative that compiles the BPF program in a
build stage (bench/helper-bpf-stage.Dockerfile).

Both go through the call docker spy makes (the SDK's build, the engine's classic builder, which
runs stages one after the other) with the same context, but under tags of this run and without
cache: removing the engine's docker-spy-helper:VERSION instead would pull it from under other
runs on the same engine."""

from __future__ import annotations

import hashlib
import io
import re
import sys
import tarfile
import time
from dataclasses import dataclass
from types import ModuleType

from common import LABEL, REPO, BenchError, Run, log, sh

ALTERNATIVE = REPO / "bench" / "helper-bpf-stage.Dockerfile"
BPF_SOURCE = REPO / "plugin" / "helper" / "bpf" / "spy.bpf.c"
BPF_OBJECT = REPO / "plugin" / "helper" / "bpf" / "spy.bpf.o"
NEED_TO_GET = re.compile(r"Need to get ([\d.,]+) ([kMG]?B)\b")
STEP_IMAGE = re.compile(r"^ ---> ([0-9a-f]{12})\s*$", re.M)
UNITS = {"B": 1.0, "kB": 1e3, "MB": 1e6, "GB": 1e9}  # apt's units are decimal


@dataclass(frozen=True)
class Build:
    seconds: float
    image: str
    downloads: tuple[float, ...]  # bytes, as each apt-get run said it would get them
    size: int  # the final image's bytes
    fresh: tuple[str, ...]  # images this build made (cold builds only), oldest first


def helper_image_module() -> ModuleType:
    """This checkout's plugin.helper_image (not an installed copy): its context is what is built."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from plugin import helper_image

    if not helper_image.__file__ or not helper_image.__file__.startswith(str(REPO)):
        raise BenchError(f"plugin.helper_image comes from {helper_image.__file__}, not from {REPO}")
    return helper_image


def _tar(files: dict[str, bytes]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


def build(run: Run, files: dict[str, bytes], tag: str, labels: dict[str, str], *, cold: bool,
          buildargs: dict[str, str] | None = None) -> Build:
    import docker

    before = set(sh("docker", "images", "-aq").split())  # a FROM step prints the base's id too
    client = docker.from_env(timeout=1800)
    text: list[str] = []
    image = ""
    t0 = time.monotonic()
    try:
        for chunk in client.api.build(fileobj=_tar(files), custom_context=True, tag=tag, labels=labels,
                                      rm=True, forcerm=True, decode=True, nocache=cold,
                                      buildargs=buildargs or {}):
            if "error" in chunk:
                raise BenchError(f"building {tag} failed: {str(chunk['error']).strip()[:300]}")
            line = str(chunk.get("stream", ""))
            text.append(line)
            if cold:  # recorded as they come, so that an interrupted build is removed too
                run.fresh_images += [i for i in STEP_IMAGE.findall(line) if i not in before]
            if line.startswith("Step "):
                log(f"{tag}: {line.strip()[:100]}")
            if isinstance(chunk.get("aux"), dict):
                image = chunk["aux"].get("ID", image)
        seconds = time.monotonic() - t0
        image = image or client.images.get(tag).id
        size = int(client.images.get(image).attrs["Size"])
    finally:
        client.close()
    downloads = tuple(float(n.replace(",", "")) * UNITS[u] for n, u in NEED_TO_GET.findall("".join(text)))
    fresh = tuple(i for i in STEP_IMAGE.findall("".join(text)) if i not in before) if cold else ()
    return Build(seconds, image, downloads, size, fresh)


def helper(run: Run, *, cold: bool) -> Build:
    """docker spy's helper image of this checkout, labelled as docker spy labels it (so that
    --helper-image accepts it) and as this run's."""
    module = helper_image_module()
    files = module.context_files()
    labels = {module.LABEL_ROLE: module.ROLE, module.LABEL_VERSION: module.__version__,
              module.LABEL_CONTEXT: module.context_digest(files), LABEL: run.id}
    log(f"building the helper image{' without cache' if cold else ''}")
    return build(run, files, f"docker-spy-bench-helper:{run.id}", labels, cold=cold)


def alternative(run: Run) -> tuple[Build, bool]:
    """The build-stage design, cold; and whether its BPF object is the committed spy.bpf.o."""
    files = helper_image_module().context_files()
    del files["helper/bpf/spy.bpf.o"]
    files["helper/bpf/spy.bpf.c"] = BPF_SOURCE.read_bytes()
    files["Dockerfile"] = ALTERNATIVE.read_bytes()
    log("building the alternative helper image (a build stage compiles spy.bpf.c) without cache")
    result = build(run, files, f"docker-spy-bench-alt:{run.id}", {LABEL: run.id}, cold=True,
                   buildargs={"BENCH_RUN": run.id})
    try:
        digest = sh("docker", "run", "--rm", *run.label(), "--network", "none", "--entrypoint", "sha256sum",
                    result.image, "/opt/docker-spy/helper/bpf/spy.bpf.o").split()[0]
    finally:
        for image in (result.image, *reversed(result.fresh)):
            sh("docker", "rmi", image, check=False)  # the helper of this run stays: it is in use
    return result, digest == hashlib.sha256(BPF_OBJECT.read_bytes()).hexdigest()


def final_stage_drift() -> bool:
    """Whether the alternative's final stage is no longer image/Dockerfile plus its COPY --from."""
    def instructions(text: str) -> list[str]:
        return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]

    alt = instructions(ALTERNATIVE.read_text())
    last_from = max(i for i, line in enumerate(alt) if line.startswith("FROM "))
    final = [line for line in alt[last_from:] if not line.startswith("COPY --from")]
    return final != instructions((REPO / "image" / "Dockerfile").read_text())

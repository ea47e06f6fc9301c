# The design bench/builds.py times against image/Dockerfile: the helper image compiles its BPF
# program in a build stage, instead of shipping helper/bpf/spy.bpf.o compiled ahead of time.
# Built from docker spy's own build context, with helper/bpf/spy.bpf.c in place of the object.
# Its final stage is image/Dockerfile plus the COPY --from (the bench says when they drift).
FROM debian:trixie-slim AS bpf
# The classic builder keeps this stage's image, untagged: the label lets the bench remove it,
# and being unique to each run it also keeps any cache from standing in for the apt-get layer.
ARG BENCH_RUN=none
LABEL io.docker-spy.bench=${BENCH_RUN}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends clang llvm libbpf-dev linux-libc-dev \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
COPY helper/bpf/spy.bpf.c /src/spy.bpf.c
# As plugin/helper/bpf/build.sh compiles it.
RUN clang -O2 -g -Wall -Werror -target bpf -I/usr/include/$(uname -m)-linux-gnu -c /src/spy.bpf.c -o /src/spy.bpf.o \
 && llvm-strip -g /src/spy.bpf.o

FROM debian:trixie-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends linux-perf libbpf1 python3-minimal \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
COPY helper/ /opt/docker-spy/helper/
COPY --from=bpf /src/spy.bpf.o /opt/docker-spy/helper/bpf/spy.bpf.o
RUN python3 -m compileall -q /opt/docker-spy/helper
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /opt/docker-spy
ENTRYPOINT ["python3", "-s", "-m", "helper.main"]

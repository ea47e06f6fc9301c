"""libbpf (Debian's libbpf1) through ctypes: open a BPF object, lay out its .rodata, size its
maps, load, attach, read maps, and read the programs' run statistics. Nothing else.

libbpf 1.x reports failure as NULL with errno set (pointer-returning calls) or as a negative
errno (int-returning calls); its messages (the verifier's log among them) arrive through the
print callback and are kept here, so that a refusal can be explained in one line.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
from collections.abc import Iterator

c_void_p, c_char_p, c_int, c_uint, c_size_t = (ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int,
                                              ctypes.c_uint, ctypes.c_size_t)
BPF_ANY, BPF_NOEXIST = 0, 1
BPF_STATS_RUN_TIME = 0
LIBBPF_WARN, LIBBPF_INFO, LIBBPF_DEBUG = 0, 1, 2
MAX_MESSAGES = 400

_PRINT = ctypes.CFUNCTYPE(c_int, c_int, c_char_p, c_void_p)


class BpfError(Exception):
    """libbpf or the kernel refused; the message is one line."""


_SIGNATURES: dict[str, tuple[object, list[object]]] = {
    "bpf_object__open_mem": (c_void_p, [c_void_p, c_size_t, c_void_p]),
    "bpf_object__load": (c_int, [c_void_p]),
    "bpf_object__close": (None, [c_void_p]),
    "bpf_object__find_map_by_name": (c_void_p, [c_void_p, c_char_p]),
    "bpf_object__find_program_by_name": (c_void_p, [c_void_p, c_char_p]),
    "bpf_map__set_max_entries": (c_int, [c_void_p, ctypes.c_uint32]),
    "bpf_map__initial_value": (c_void_p, [c_void_p, ctypes.POINTER(c_size_t)]),
    "bpf_map__fd": (c_int, [c_void_p]),
    "bpf_map__value_size": (ctypes.c_uint32, [c_void_p]),
    "bpf_map__max_entries": (ctypes.c_uint32, [c_void_p]),
    "bpf_program__set_autoload": (c_int, [c_void_p, ctypes.c_bool]),
    "bpf_program__fd": (c_int, [c_void_p]),
    "bpf_program__attach_raw_tracepoint": (c_void_p, [c_void_p, c_char_p]),
    "bpf_program__attach_tracepoint": (c_void_p, [c_void_p, c_char_p, c_char_p]),
    "bpf_link__destroy": (c_int, [c_void_p]),
    "bpf_map_lookup_elem": (c_int, [c_int, c_void_p, c_void_p]),
    "bpf_map_update_elem": (c_int, [c_int, c_void_p, c_void_p, ctypes.c_uint64]),
    "bpf_map_delete_elem": (c_int, [c_int, c_void_p]),
    "bpf_map_get_next_key": (c_int, [c_int, c_void_p, c_void_p]),
    "bpf_enable_stats": (c_int, [c_int]),
    "libbpf_num_possible_cpus": (c_int, []),
    "libbpf_set_print": (c_void_p, [_PRINT]),
    "libbpf_major_version": (ctypes.c_uint32, []),
    "libbpf_minor_version": (ctypes.c_uint32, []),
}


@functools.cache
def library() -> ctypes.CDLL:
    """libbpf.so.1, its functions typed; BpfError if it is not installed."""
    try:
        lib = ctypes.CDLL("libbpf.so.1", use_errno=True)
    except OSError as e:
        raise BpfError(f"libbpf is not installed ({e})") from None
    for name, (restype, argtypes) in _SIGNATURES.items():
        func = getattr(lib, name)
        func.restype = restype
        func.argtypes = argtypes
    return lib


class Messages:
    """What libbpf printed (warnings and the verifier's log), last MAX_MESSAGES lines."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        libc = ctypes.CDLL(None)
        self._vsnprintf = libc.vsnprintf
        self._vsnprintf.argtypes = [c_char_p, c_size_t, c_char_p, c_void_p]
        self._vsnprintf.restype = c_int
        # va_list is passed by reference at the ABI level on x86_64 and arm64 alike.
        self.callback = _PRINT(self._print)

    def _print(self, level: int, fmt: bytes, args: int) -> int:
        if level == LIBBPF_DEBUG:
            return 0
        buf = ctypes.create_string_buffer(1 << 16)  # the verifier's log comes as one message
        self._vsnprintf(buf, len(buf), fmt, args)
        for line in buf.value.decode(errors="replace").splitlines():
            if line.strip():
                self.lines.append(line.strip())
        del self.lines[:-MAX_MESSAGES]
        return 0

    def reason(self) -> str:
        """The line that says why the kernel refused: the verifier log's last line, else
        libbpf's last word."""
        ends = [i for i, line in enumerate(self.lines) if "END PROG LOAD LOG" in line]
        if ends:
            for line in reversed(self.lines[:ends[-1]]):
                if "PROG LOAD LOG" not in line and not line.startswith("processed "):
                    return line[:160]
        return self.lines[-1][:160] if self.lines else "no reason given"


def version() -> str:
    lib = library()
    return f"libbpf {lib.libbpf_major_version()}.{lib.libbpf_minor_version()}"


def _error(what: str, code: int | None = None) -> BpfError:
    code = ctypes.get_errno() if code is None else code
    return BpfError(f"{what}: {os.strerror(abs(code))}" if code else what)


class Object:
    """One BPF object file, opened from bytes; load() hands it to the kernel."""

    def __init__(self, data: bytes, messages: Messages) -> None:
        self.lib = library()
        self.messages = messages
        self.lib.libbpf_set_print(messages.callback)
        self._data = ctypes.create_string_buffer(data, len(data))  # libbpf keeps pointers in
        self.obj = self.lib.bpf_object__open_mem(self._data, len(data), None)
        if not self.obj:
            raise _error("libbpf cannot open the BPF object")
        self.links: list[int] = []

    def _map(self, name: str) -> int:
        found = self.lib.bpf_object__find_map_by_name(self.obj, name.encode())
        if not found:
            raise BpfError(f"the BPF object has no map {name}")
        return found

    def _program(self, name: str) -> int:
        found = self.lib.bpf_object__find_program_by_name(self.obj, name.encode())
        if not found:
            raise BpfError(f"the BPF object has no program {name}")
        return found

    def set_rodata(self, data: bytes) -> None:
        """The whole .rodata section, before load (it is one struct, laid out by the caller)."""
        size = c_size_t()
        where = self.lib.bpf_map__initial_value(self._map(".rodata"), ctypes.byref(size))
        if not where or size.value != len(data):
            raise BpfError(f".rodata is {size.value} bytes, the configuration {len(data)}")
        ctypes.memmove(where, data, len(data))

    def set_max_entries(self, name: str, entries: int) -> None:
        if self.lib.bpf_map__set_max_entries(self._map(name), entries) < 0:
            raise BpfError(f"cannot size the map {name}")

    def set_autoload(self, program: str, load: bool) -> None:
        self.lib.bpf_program__set_autoload(self._program(program), load)

    def load(self) -> None:
        code = self.lib.bpf_object__load(self.obj)
        if code < 0:
            raise BpfError(f"the kernel refused the BPF program ({os.strerror(-code)}): "
                           f"{self.messages.reason()}")

    def attach_raw_tracepoint(self, program: str, tracepoint: str) -> None:
        link = self.lib.bpf_program__attach_raw_tracepoint(self._program(program), tracepoint.encode())
        if not link:
            raise _error(f"cannot attach to the raw tracepoint {tracepoint}")
        self.links.append(link)

    def attach_tracepoint(self, program: str, category: str, name: str) -> None:
        link = self.lib.bpf_program__attach_tracepoint(self._program(program), category.encode(),
                                                       name.encode())
        if not link:
            raise _error(f"cannot attach to the tracepoint {category}:{name}")
        self.links.append(link)

    def map_fd(self, name: str) -> int:
        return self.lib.bpf_map__fd(self._map(name))

    def program_fd(self, name: str) -> int:
        return self.lib.bpf_program__fd(self._program(name))

    def close(self) -> None:
        """Detach every program and free the object: the kernel stops counting."""
        for link in self.links:
            self.lib.bpf_link__destroy(link)
        self.links = []
        if self.obj:
            self.lib.bpf_object__close(self.obj)
            self.obj = None


def lookup(fd: int, key: bytes, value_size: int) -> bytes | None:
    """The value of key (value_size bytes; for a per-CPU map, every CPU's), or None."""
    value = ctypes.create_string_buffer(value_size)
    if library().bpf_map_lookup_elem(fd, key, value) < 0:
        return None
    return value.raw


def update(fd: int, key: bytes, value: bytes, flags: int = BPF_ANY) -> None:
    code = library().bpf_map_update_elem(fd, key, value, flags)
    if code < 0:
        raise _error("cannot update a BPF map", code)


def delete(fd: int, key: bytes) -> None:
    library().bpf_map_delete_elem(fd, key)


def keys(fd: int, key_size: int) -> Iterator[bytes]:
    """Every key of a hash map, as it stands while read."""
    previous: bytes | None = None
    following = ctypes.create_string_buffer(key_size)
    while library().bpf_map_get_next_key(fd, previous, following) == 0:
        previous = following.raw
        yield previous


def possible_cpus() -> int:
    n = library().libbpf_num_possible_cpus()
    if n <= 0:
        raise BpfError("cannot tell how many CPUs this host may have")
    return n


def enable_stats() -> int:
    """A file descriptor that keeps the kernel measuring every BPF program's run time while
    it is open (BPF_ENABLE_STATS, kernel 5.8); -1 where the kernel cannot."""
    fd = library().bpf_enable_stats(BPF_STATS_RUN_TIME)
    return fd if fd >= 0 else -1


def program_stats(fd: int) -> tuple[int, int]:
    """(run_cnt, run_time_ns) of a loaded program, from its /proc fdinfo."""
    fields = {}
    with open(f"/proc/self/fdinfo/{fd}") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
    return int(fields.get("run_cnt", 0)), int(fields.get("run_time_ns", 0))

# Shared by tests/vm/up and tests/vm/down: where a guest lives, how it is built and booted.
#
#   cache   ${SPY_VM_CACHE:-/var/cache/docker-spy-vm}/ARCH   its disk, kernel, initrd, key,
#           host keys and recipe hash: kept between runs, outside the clone
#   state   ${SPY_VM_RUN:-/run/docker-spy-vm}/ARCH           qemu's pid, the ssh port, the
#           serial console's log: gone with the guest
set -euo pipefail

VM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=guest-recipe.sh
. "$VM_DIR/guest-recipe.sh"

say() { printf 'vm: %s\n' "$*" >&2; }
die() { printf 'vm: %s\n' "$*" >&2; exit 1; }

vm_arch() {
    case ${1:-x86_64} in
    x86_64 | amd64) echo x86_64 ;;
    arm64 | aarch64) echo arm64 ;;
    *) die "the guest's architecture is x86_64 or arm64, not ${1}" ;;
    esac
}

vm_init() {
    ARCH=$(vm_arch "${1:-}")
    CACHE_ROOT=${SPY_VM_CACHE:-/var/cache/docker-spy-vm}
    CACHE=$CACHE_ROOT/$ARCH
    STATE=${SPY_VM_RUN:-/run/docker-spy-vm}/$ARCH
    CONTEXT=spy-vm-$ARCH
    KEY=$CACHE_ROOT/id_ed25519
    SSH_CONFIG=$CACHE_ROOT/ssh_config
    case $ARCH in
    x86_64) QEMU=qemu-system-x86_64 QEMU_PKG=qemu-system-x86 CONSOLE=ttyS0 DEFAULT_PORT=60022 ;;
    arm64) QEMU=qemu-system-aarch64 QEMU_PKG=qemu-system-arm CONSOLE=ttyAMA0 DEFAULT_PORT=60023 ;;
    esac
}

recipe_hash() {
    # A change to the recipe makes a new guest.
    sha256sum < "$VM_DIR/guest-recipe.sh" | cut -c1-16
}

apt_install() {
    [ "$(id -u)" = 0 ] || die "need root to install $* (or install them yourself)"
    command -v apt-get >/dev/null || die "no apt-get here: install $* by hand"
    say "installing $*"
    NEEDRESTART_SUSPEND=1 DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2 \
        || { apt-get update -qq >&2 && NEEDRESTART_SUSPEND=1 DEBIAN_FRONTEND=noninteractive \
             apt-get install -y -qq "$@" >&2; } || die "apt-get install $* failed"
}

host_tools() {
    local want=()
    command -v "$QEMU" >/dev/null || want+=("$QEMU_PKG")
    command -v debootstrap >/dev/null || want+=(debootstrap)
    command -v mke2fs >/dev/null || want+=(e2fsprogs)
    command -v ssh >/dev/null || want+=(openssh-client)
    if [ "$ARCH" = arm64 ] && [ "$(uname -m)" != aarch64 ]; then
        [ -e /usr/libexec/qemu-binfmt/aarch64-binfmt-P ] || want+=(qemu-user-static)
    fi
    [ ${#want[@]} -eq 0 ] || apt_install "${want[@]}"
}

# debootstrap of a foreign architecture runs its second stage through qemu-user: the kernel
# must know to hand arm64 binaries to it (binfmt_misc, with F: the interpreter is opened now,
# so it works inside the chroot).
foreign_binaries() {
    [ "$ARCH" = arm64 ] && [ "$(uname -m)" != aarch64 ] || return 0
    [ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc \
        || die "cannot mount binfmt_misc to run arm64 binaries through qemu-user"
    [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] && return 0
    grep -v '^#' /usr/lib/binfmt.d/qemu-aarch64.conf > /proc/sys/fs/binfmt_misc/register \
        || die "cannot register qemu-aarch64 with binfmt_misc"
}

# The key is every guest's: made once, under the cache's own lock (fd 8; each up already
# holds its architecture's on fd 9).
ensure_key() {
    mkdir -p "$CACHE_ROOT"
    (
        flock 8
        [ -f "$KEY" ] || ssh-keygen -q -t ed25519 -N '' -C "docker-spy test VM" -f "$KEY"
    ) 8>"$CACHE_ROOT/lock"
}

guest_current() {
    [ -f "$CACHE/recipe" ] && [ "$(cat "$CACHE/recipe")" = "$1" ] && [ -f "$CACHE/disk.img" ]
}

# ---------------------------------------------------------------------------------------
# Boot

running() {
    [ -f "$STATE/qemu.pid" ] && kill -0 "$(cat "$STATE/qemu.pid")" 2>/dev/null \
        && grep -q "$CACHE/disk.img" "/proc/$(cat "$STATE/qemu.pid")/cmdline" 2>/dev/null
}

port_free() { ! ss -Htln "sport = :$1" | grep -q .; }

pick_port() {
    local port=${SPY_VM_PORT:-$DEFAULT_PORT}
    for _ in $(seq 1 50); do
        port_free "$port" && { echo "$port"; return 0; }
        port=$((port + 2))
    done
    die "no free loopback port for the guest's ssh from ${SPY_VM_PORT:-$DEFAULT_PORT} on"
}

# qemu's arguments for this guest, with accelerator $1 and the ssh port $2.
qemu_args() {
    local accel=$1 port=$2
    local args=(-name "spy-vm-$ARCH" -m "$GUEST_MEMORY" -smp "$GUEST_CPUS" -no-reboot
        -kernel "$CACHE/vmlinuz" -initrd "$CACHE/initrd.img"
        -append "root=/dev/vda rw console=$CONSOLE panic=10"
        -drive "file=$CACHE/disk.img,format=raw,if=none,id=disk0,cache=unsafe" -device virtio-blk-pci,drive=disk0
        # user-mode networking: the guest reaches out through the host; only ssh comes in, on
        # the host's loopback alone.
        -netdev "user,id=net0,hostfwd=tcp:127.0.0.1:$port-:22" -device virtio-net-pci,netdev=net0
        -device virtio-rng-pci)
    case $ARCH in
    # pauth-impdef: pointer authentication with qemu's own cheap hash, many times faster
    # to emulate than the architected one.
    arm64) args+=(-M virt -cpu max,pauth-impdef=on) ;;
    # Emulated, a CPU of the Nehalem class: no AVX nor XSAVE, which qemu 7.2's TCG had just
    # learnt. With `-cpu max` the guest's kernel died twice in 40 minutes of tests, once with a
    # double fault and EFLAGS garbled in SLUB's cmpxchg16b fast path (below, the other time).
    x86_64) args+=(-M q35 -cpu "$([ "$accel" = kvm ] && echo host || echo Nehalem)") ;;
    esac
    if [ "$accel" = kvm ]; then
        args+=(-accel kvm)
    elif [ "$ARCH" = x86_64 ]; then
        # One host thread runs both vCPUs in turn. With one thread per vCPU (thread=multi),
        # the x86_64 guest's kernel died (Oops: int3 in syscall_exit_to_user_mode_prepare)
        # twice in 15 minutes of tests: a vCPU ran the int3 of a static branch the other had
        # finished patching (a tracepoint switched on or off), which real CPUs never see
        # after the patcher's serializing IPIs. The emulator's flaw, not the kernel's.
        args+=(-accel tcg,thread=single,tb-size=512)
    else
        # arm64 patches a static branch by swapping one NOP for one branch, which a vCPU may
        # run either way while it changes (no trap in between): a thread per vCPU is safe.
        args+=(-accel tcg,thread=multi,tb-size=512)
    fi
    printf '%s\n' "${args[@]}"
}

# KVM is used only once it is shown to boot this kernel: on some hosts /dev/kvm opens but a
# Linux kernel hangs right after its decompressor (nested virtualization that is incomplete).
# The kernel alone is started, with no disk: it must print its first line within 10 s and
# reach its init within 30 s. The verdict is kept for this host boot.
choose_accel() {
    local verdict=$STATE/../kvm-$ARCH-$(cat "$CACHE/kernel-release")
    if [ -n "${SPY_VM_ACCEL:-}" ]; then echo "$SPY_VM_ACCEL"; return; fi
    if [ "$ARCH" != x86_64 ] || [ "$(uname -m)" != x86_64 ] || [ ! -w /dev/kvm ]; then echo tcg; return; fi
    if [ -f "$verdict" ]; then cat "$verdict"; return; fi
    say "trying KVM: does this kernel boot under it? (10 to 30 s)"
    local log=$STATE/kvm-probe.log pid
    : > "$log"
    timeout 35 qemu-system-x86_64 -accel kvm -cpu host -m 512 -display none -no-reboot \
        -kernel "$CACHE/vmlinuz" -initrd "$CACHE/initrd.img" -append "console=ttyS0 panic=-1 rdinit=/bin/true" \
        -serial "file:$log" -monitor none > "$STATE/kvm-probe.out" 2>&1 &
    pid=$!
    local result=tcg
    for i in $(seq 1 60); do
        if grep -q "Run /bin/true as init process\|Kernel panic" "$log" 2>/dev/null; then result=kvm; break; fi
        kill -0 "$pid" 2>/dev/null || break
        [ "$i" -lt 20 ] || [ -s "$log" ] || break  # not a word in 10 s: it hangs
        sleep 0.5
    done
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    if [ "$result" = kvm ]; then
        say "KVM boots this kernel: using it"
    else
        say "KVM does not boot this kernel here ($(grep -c . "$log") lines on its console, last: $(tail -c 200 "$log" | tr -d '\r' | tail -1)); using TCG emulation"
    fi
    echo "$result" > "$verdict"
    echo "$result"
}

boot() {
    local port accel
    mkdir -p "$STATE"
    port=$(pick_port)
    accel=$(choose_accel)
    mapfile -t args < <(qemu_args "$accel" "$port")
    say "booting the $ARCH guest ($QEMU, $accel, ssh on 127.0.0.1:$port; console: $STATE/console.log)"
    rm -f "$STATE/qemu.pid"
    # Written first: an up cut short once qemu runs still finds its port, and the next one goes on.
    echo "$port" > "$STATE/port"
    echo "$accel" > "$STATE/accel"
    "$QEMU" "${args[@]}" -serial "file:$STATE/console.log" -monitor none -display none \
        -daemonize -pidfile "$STATE/qemu.pid" > "$STATE/qemu.out" 2>&1 8>&- 9>&- \
        || { cat "$STATE/qemu.out" >&2; die "$QEMU did not start"; }
    date +%s > "$STATE/booted"
    BOOTED=1
}

# ---------------------------------------------------------------------------------------
# Reaching it

# The ssh settings of this cache, for the host's ssh (and so for the docker CLI and the
# plugin, which run ssh): the guest's key, and its host key known by its loopback port.
ssh_setup() {
    local port=$1
    printf '[127.0.0.1]:%s %s\n' "$port" "$(cut -d' ' -f1,2 "$CACHE/host_key.pub")" > "$CACHE/known_hosts"
    # Shared by the guests of every architecture: one up at a time writes it (fd 8, the
    # cache's own lock; each up already holds its architecture's on fd 9).
    exec 8>"$CACHE_ROOT/lock"
    flock 8
    local tmp
    tmp=$(mktemp "$SSH_CONFIG.XXXXXX")
    {
        echo "# written by docker spy's tests/vm/up: its test guests, on the host's loopback"
        for f in "$CACHE_ROOT"/*/known_hosts; do
            [ -f "$f" ] || continue
            local p
            p=$(sed -n 's/^\[127\.0\.0\.1\]:\([0-9]*\) .*/\1/p' "$f")
            printf 'Match host 127.0.0.1 user root exec "test %%p = %s"\n' "$p"
            printf '    IdentityFile %s\n    IdentitiesOnly yes\n    UserKnownHostsFile %s\n' "$KEY" "$f"
            printf '    StrictHostKeyChecking yes\n'
        done
    } > "$tmp"
    chmod 644 "$tmp"
    mv "$tmp" "$SSH_CONFIG"
    # `Include` must come before any Host block of the user's config to apply: first line.
    # Written in place (a symlink stays one, the file keeps its owner); what is made new
    # belongs to the owner of the home it is in (sudo -E keeps HOME).
    local user_config=$HOME/.ssh/config line="Include $SSH_CONFIG" owner
    owner=$(stat -c %u:%g "$HOME")
    if [ ! -d "$HOME/.ssh" ]; then
        mkdir -m 700 "$HOME/.ssh"
        chown "$owner" "$HOME/.ssh"
    fi
    if [ ! -e "$user_config" ]; then
        install -m 600 /dev/null "$user_config"
        chown "$owner" "$user_config"
    fi
    if ! grep -qxF "$line" "$user_config"; then
        say "adding '$line' to the top of $user_config"
        local before
        before=$(cat "$user_config")
        printf '%s\n%s\n' "$line" "$before" > "$user_config"
    fi
    flock -u 8
}

vm_ssh() {
    ssh -F "$SSH_CONFIG" -o BatchMode=yes -o ConnectTimeout=10 -p "$(cat "$STATE/port")" root@127.0.0.1 "$@"
}

wait_engine() {
    local limit=$1 since=$SECONDS
    say "waiting for the guest's sshd and dockerd (at most $limit s)"
    until vm_ssh docker info >/dev/null 2>&1; do
        if ! running; then
            tail -30 "$STATE/console.log" >&2 || true
            die "the guest stopped during its boot (console above: $STATE/console.log)"
        fi
        if [ $((SECONDS - since)) -ge "$limit" ]; then
            tail -30 "$STATE/console.log" >&2 || true
            die "the guest's engine did not answer within $limit s (console above: $STATE/console.log)"
        fi
        sleep 2
    done
    if [ "${BOOTED:-}" = 1 ]; then
        say "the guest's engine answers, $(( $(date +%s) - $(cat "$STATE/booted") )) s after power-on"
    fi
}

stop_guest() {
    running || { rm -f "$STATE/qemu.pid"; return 0; }
    local pid
    pid=$(cat "$STATE/qemu.pid")
    say "stopping the $ARCH guest (poweroff, at most 90 s, then qemu is killed)"
    timeout 20 ssh -F "$SSH_CONFIG" -o BatchMode=yes -o ConnectTimeout=5 -p "$(cat "$STATE/port")" \
        root@127.0.0.1 systemctl poweroff >/dev/null 2>&1 || true
    for _ in $(seq 1 180); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$pid" 2>/dev/null; then
        say "the guest did not power off: killing qemu"
        kill "$pid" 2>/dev/null || true
        sleep 1
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$STATE/qemu.pid"
}

# The test guest's recipe: what tests/vm/up builds, from Debian's packages only. Sourced by
# tests/vm/lib.sh; the disk is rebuilt whenever this file changes (its hash is the cache key).
#
# A Debian trixie as a cloud VM or a Lima/colima guest runs it: Debian's kernel, systemd, and
# Debian's docker.io started by systemd (the systemd cgroup driver on cgroup v2 only, AppArmor
# on, as Debian ships them), reached over ssh. Nothing docker spy needs is preinstalled: the
# helper image is built in the guest by the plugin itself, as a user's first run does.

GUEST_SUITE=trixie
GUEST_MIRROR=${SPY_VM_MIRROR:-http://deb.debian.org/debian}
GUEST_DISK_SIZE=8G
GUEST_MEMORY=2048
GUEST_CPUS=2

# arch -> Debian architecture, kernel package, console, qemu binary and machine
guest_debian_arch() { case $1 in x86_64) echo amd64 ;; arm64) echo arm64 ;; esac; }
guest_packages() {
    local kernel
    case $1 in x86_64) kernel=linux-image-amd64 ;; arm64) kernel=linux-image-arm64 ;; esac
    # docker-cli: `docker system dial-stdio` is what an ssh context runs on the far side.
    # dbus: the systemd cgroup driver talks to systemd through it. apparmor: Debian's kernel
    # has it on, and dockerd then confines every container with docker-default. bpftool: the
    # tests count the BPF programs left loaded.
    echo "$kernel,systemd-sysv,dbus,udev,kmod,docker.io,docker-cli,openssh-server,apparmor,iproute2,systemd-resolved,bpftool,ca-certificates"
}

# Configure the debootstrapped tree in $1 for arch $2, with root's key $3 (a .pub file).
guest_configure() {
    local root=$1 arch=$2 pubkey=$3
    local name
    name=spy-vm-$(guest_debian_arch "$arch")  # a host name has no underscore
    echo "$name" > "$root/etc/hostname"
    printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n' "$name" > "$root/etc/hosts"
    echo '/dev/vda / ext4 rw,errors=remount-ro 0 1' > "$root/etc/fstab"
    mkdir -p "$root/etc/systemd/network"
    printf '[Match]\nName=en* eth*\n\n[Network]\nDHCP=yes\n' > "$root/etc/systemd/network/20-wired.network"
    chroot "$root" systemctl enable -q systemd-networkd systemd-resolved
    # Nothing that would wake up and compete with the tests for the emulated CPUs.
    chroot "$root" systemctl mask -q apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer \
        fstrim.timer e2scrub_all.timer man-db.timer 2>/dev/null || true
    install -d -m 700 "$root/root/.ssh"
    install -m 600 "$pubkey" "$root/root/.ssh/authorized_keys"
    # ssh only with the key; no DNS lookups of the client (slirp's 10.0.2.2) at each login.
    # Every connection of the host comes from that one address, and OpenSSH 9.8+ penalizes an
    # address whose connections close during authentication (authfail: 5 s each, from 15 s):
    # the docker CLI drops ssh connections it no longer needs, which under emulation are often
    # still authenticating; four at once locked the host out for 20 s in a CI run
    # ("kex_exchange_identification: Connection closed by remote host"). The host is exempt.
    printf 'PasswordAuthentication no\nUseDNS no\nPerSourcePenaltyExemptList 10.0.2.2\n' \
        > "$root/etc/ssh/sshd_config.d/spy-vm.conf"
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
}

# The guest engine's first image: debian:trixie-slim of the guest's own architecture, as a
# user's first `docker run` would pull it (no registry is reachable here: a minbase tree made
# the way .ci/provision makes the host's, imported by the guest's engine on its first boot).
guest_base_image_tar() {
    local arch=$1 out=$2 dir
    dir=$(mktemp -d /var/tmp/spy-vm-base.XXXXXX)
    debootstrap --variant=minbase --arch "$(guest_debian_arch "$arch")" "$GUEST_SUITE" "$dir" "$GUEST_MIRROR" \
        > "$out.log" 2>&1 || { tail -20 "$out.log" >&2; rm -rf "$dir"; return 1; }
    rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
    tar -C "$dir" -cf "$out" . && rm -rf "$dir"
}

# Build the guest into $CACHE (tests/vm/lib.sh's variables): the disk, the kernel and initrd
# beside it (booted directly, no boot loader), its ssh host key, and the recipe's hash.
build_guest() {
    local hash=$1 tmp root packages
    mkdir -p "$CACHE"
    [ -f "$KEY" ] || ssh-keygen -q -t ed25519 -N '' -C "docker-spy test VM" -f "$KEY"
    tmp=$(mktemp -d /var/tmp/spy-vm-build.XXXXXX)
    # shellcheck disable=SC2064
    trap "rm -rf '$tmp'" EXIT
    root=$tmp/root
    packages=$(guest_packages "$ARCH")
    say "building the $ARCH guest: debootstrap $GUEST_SUITE with $packages (log: $CACHE/build.log)"
    foreign_binaries
    local started=$SECONDS
    debootstrap --variant=minbase --arch "$(guest_debian_arch "$ARCH")" --include="$packages" \
        "$GUEST_SUITE" "$root" "$GUEST_MIRROR" > "$CACHE/build.log" 2>&1 \
        || { tail -30 "$CACHE/build.log" >&2; die "debootstrap of the guest failed"; }
    guest_configure "$root" "$ARCH" "$KEY.pub"
    say "making the guest's debian:trixie-slim ($ARCH)"
    mkdir -p "$root/var/lib/spy-vm"
    guest_base_image_tar "$ARCH" "$root/var/lib/spy-vm/trixie-slim.tar" || die "debootstrap of the base image failed"
    rm -f "$root/var/lib/spy-vm/trixie-slim.tar.log"
    # The kernel boots directly (no boot loader): its image and initrd sit beside the disk.
    cp "$(ls "$root"/boot/vmlinuz-* | head -1)" "$tmp/vmlinuz"
    cp "$(ls "$root"/boot/initrd.img-* | head -1)" "$tmp/initrd.img"
    basename "$(ls "$root"/boot/vmlinuz-* | head -1)" | sed 's/^vmlinuz-//' > "$tmp/kernel-release"
    cat "$root"/etc/ssh/ssh_host_ed25519_key.pub > "$tmp/host_key.pub"
    # ext4 from the tree without a loop mount (mke2fs -d), sparse.
    mke2fs -q -t ext4 -L spy-vm -d "$root" "$tmp/disk.img" "$GUEST_DISK_SIZE" >&2 \
        || die "mke2fs -d of the guest disk failed"
    rm -rf "$root"
    for f in vmlinuz initrd.img kernel-release host_key.pub disk.img; do mv "$tmp/$f" "$CACHE/$f"; done
    echo "$hash" > "$CACHE/recipe"
    rm -rf "$tmp"
    trap - EXIT
    say "built the $ARCH guest in $((SECONDS - started)) s ($(du -sh --apparent-size "$CACHE/disk.img" | cut -f1) disk, $(du -sh "$CACHE/disk.img" | cut -f1) used)"
}

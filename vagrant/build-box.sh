#!/usr/bin/env bash
# Builds the lab's Debian 12 box for vagrant-libvirt from the Debian mirror alone (no
# Vagrant Cloud), and adds it to vagrant under the name the Vagrantfile uses.
#   sudo vagrant/build-box.sh [--out FILE.box] [--name NAME] [--no-add]
#
#   --out FILE.box  where the box goes (default target/vagrant/bookworm64-libvirt.box)
#   --name NAME     the name to add it under (default $VNET_BOX, else debian/bookworm64,
#                   the Vagrantfile's default: `vagrant up` then needs no download)
#   --no-add        build the file only
# Environment: VNET_DEBIAN_MIRROR (default http://deb.debian.org/debian; a local mirror
# or an apt proxy's address works), VAGRANT_HOME as vagrant reads it.
#
# What the box is: `debootstrap --variant=minbase` with systemd, openssh-server,
# ifupdown + isc-dhcp-client (vagrant's Debian guest code configures eth1 with them),
# sudo, rsync (the synced folder), iproute2, nftables, python3 and ping (the lab's
# needs, so provisioning installs nothing), and the cloud kernel; a `vagrant` user with
# vagrant's public insecure key (vagrant swaps in a key of its own on first boot) and
# passwordless sudo. The disk has no partition table: the ext4 filesystem starts at
# sector 0 (`mkfs.ext4 -d` fills it from the directory, no mount needed), and its first
# sector, which ext4 leaves unused, holds extlinux's boot sector, which the BIOS loads
# as it would an MBR. `extlinux --install` needs the filesystem mounted: one loop mount
# of the whole image (no partition devices needed). Kernel command line
# `root=/dev/vda net.ifnames=0` (virtio disk, eth0 as vagrant expects), serial console.
# The raw image becomes a compressed qcow2 (vagrant-libvirt's box format v1:
# box.img + metadata.json + Vagrantfile in a tar), added with Debian's point release as
# its version. The box's kernel is kept beside it (FILE.vmlinuz): vagrant/kvm-probe.sh
# boots it to see whether KVM works.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
out=$repo/target/vagrant/bookworm64-libvirt.box
name=${VNET_BOX:-debian/bookworm64}
add=1
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --name) name=$2; shift 2 ;;
    --no-add) add=0; shift ;;
    *) echo "usage: build-box.sh [--out FILE.box] [--name NAME] [--no-add]" >&2; exit 2 ;;
  esac
done
mirror=${VNET_DEBIAN_MIRROR:-http://deb.debian.org/debian}
packages=systemd,systemd-sysv,udev,openssh-server,sudo,ifupdown,isc-dhcp-client,iproute2,nftables,python3,iputils-ping,rsync,linux-image-cloud-amd64

die() { echo "build-box: $*" >&2; exit 1; }
# box_catalog NAME VERSION FILE.box: the metadata `vagrant box add` takes for a box
# with a version.
box_catalog() {
  printf '{"name": "%s", "versions": [{"version": "%s", "providers": [{"name": "libvirt", "url": "file://%s"}]}]}\n' \
    "$1" "$2" "$(realpath "$3")"
}
[ "$(id -u)" = 0 ] || die "run as root (debootstrap and the loop mount need it)"
[ "$(uname -m)" = x86_64 ] || die "builds an amd64 box; this machine is $(uname -m)"
for tool in debootstrap mkfs.ext4 extlinux qemu-img tar; do
  command -v "$tool" >/dev/null ||
    die "no $tool (apt-get install debootstrap e2fsprogs extlinux qemu-utils tar)"
done
if [ "$add" = 1 ]; then command -v vagrant >/dev/null || die "no vagrant (or use --no-add)"; fi
key=$(compgen -G "/usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant.pub" ||
  compgen -G "/opt/vagrant/embedded/gems/gems/vagrant-*/keys/vagrant.pub" || true)
key=${key%%$'\n'*}
[ -n "$key" ] || die "vagrant's insecure public key (keys/vagrant.pub of the vagrant gem) not found"

mkdir -p "$(dirname "$out")"
work=$(mktemp -d "$(dirname "$out")/.build-box.XXXXXX")
mnt=$work/mnt
cleanup() {
  if mountpoint -q "$mnt" 2>/dev/null; then umount "$mnt"; fi
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT

t0=$SECONDS
echo "build-box: debootstrap bookworm from $mirror" >&2
root=$work/root
if ! debootstrap --variant=minbase --include="$packages" bookworm "$root" "$mirror" \
  >"$work/debootstrap.log" 2>&1; then
  tail -20 "$work/debootstrap.log" >&2
  die "debootstrap failed (log above)"
fi

kernel=$(cd "$root/boot" && compgen -G "vmlinuz-*" | sort -V | tail -1)
initrd=initrd.img-${kernel#vmlinuz-}
[ -f "$root/boot/$initrd" ] || die "no /boot/$initrd in the box"

# The guest's configuration.
echo bookworm >"$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tbookworm\n::1\tlocalhost ip6-localhost ip6-loopback\n' \
  >"$root/etc/hosts"
echo "/dev/vda / ext4 errors=remount-ro 0 1" >"$root/etc/fstab"
printf 'auto lo\niface lo inet loopback\n\nauto eth0\niface eth0 inet dhcp\n' \
  >"$root/etc/network/interfaces"
printf 'deb %s bookworm main\n' "$mirror" >"$root/etc/apt/sources.list"
chroot "$root" useradd --create-home --shell /bin/bash vagrant
install -d -m 0700 -o 1000 -g 1000 "$root/home/vagrant/.ssh"
install -m 0600 -o 1000 -g 1000 "$key" "$root/home/vagrant/.ssh/authorized_keys"
echo "vagrant ALL=(ALL) NOPASSWD:ALL" >"$root/etc/sudoers.d/vagrant"
chmod 0440 "$root/etc/sudoers.d/vagrant"
# Every VM gets host keys and a machine id of its own on first boot.
rm -f "$root"/etc/ssh/ssh_host_*
install -d "$root/etc/systemd/system/ssh.service.d"
printf '[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n' \
  >"$root/etc/systemd/system/ssh.service.d/host-keys.conf"
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
# No apt runs of its own at boot: they would hold the lock provisioning may need.
for unit in apt-daily.timer apt-daily-upgrade.timer; do
  ln -sf /dev/null "$root/etc/systemd/system/$unit"
done
chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/log/*.log "$root"/var/cache/debconf/*-old

install -d "$root/boot/extlinux"
cat >"$root/boot/extlinux/extlinux.conf" <<EOF
DEFAULT debian
TIMEOUT 0
LABEL debian
  LINUX /boot/$kernel
  INITRD /boot/$initrd
  APPEND root=/dev/vda rw net.ifnames=0 console=tty0 console=ttyS0,115200n8
EOF

echo "build-box: ext4 image, extlinux" >&2
raw=$work/disk.raw
mkfs.ext4 -q -L root -d "$root" "$raw" 8G >/dev/null
mkdir "$mnt"
mount -o loop "$raw" "$mnt"
extlinux --install "$mnt/boot/extlinux" >/dev/null 2>&1 || die "extlinux --install failed"
umount "$mnt"

echo "build-box: qcow2 and box" >&2
qemu-img convert -c -O qcow2 "$raw" "$work/box.img"
rm -f "$raw"
printf '{"provider": "libvirt", "format": "qcow2", "virtual_size": 8}\n' >"$work/metadata.json"
cat >"$work/Vagrantfile" <<'EOF'
# Debian 12 built by vnet's vagrant/build-box.sh from the Debian mirror.
Vagrant.configure("2") do |config|
  config.vm.synced_folder ".", "/vagrant", disabled: true
end
EOF
tar -C "$work" -cf "$out.tmp" metadata.json Vagrantfile box.img
mv -f "$out.tmp" "$out"
# The box's kernel beside it: vagrant/kvm-probe.sh boots it to see whether KVM works.
cp "$root/boot/$kernel" "${out%.box}.vmlinuz"
version=$(cat "$root/etc/debian_version")
echo "build-box: $out ($(du -m "$out" | cut -f1) MiB, Debian $version, kernel $kernel) in $((SECONDS - t0)) s" >&2

if [ "$add" = 1 ]; then
  # Added through a catalog, so that the box has a version (Debian's point release):
  # vagrant warns about boxes without one, and a later build replaces this one.
  catalog=${out%.box}.json
  box_catalog "$name" "$version" "$out" >"$catalog"
  vagrant box add --force "$catalog" >&2
  echo "build-box: added as $name $version (provider libvirt)" >&2
fi

#!/usr/bin/env bash
# Prints the libvirt domain type the lab's VMs should use: "kvm" when KVM really runs a
# Linux kernel here, "qemu" (software emulation) when it does not.
#   vagrant/kvm-probe.sh            (the Vagrantfile runs it, once per host boot)
#
# /dev/kvm being there is not enough: on a machine that is itself a paravirtualized
# guest, /dev/kvm can open and run a BIOS while a stock Debian kernel hangs under it
# before printing a line. So the probe boots a kernel with no root filesystem and
# `panic=-1`: where KVM works it panics and qemu exits within a second or two; where
# it does not, nothing comes out before the timeout. The kernel: $VNET_PROBE_KERNEL, else
# the box's own kernel that vagrant/build-box.sh keeps beside the box, else the host's.
# With none readable, or no qemu-system-x86_64, /dev/kvm being usable decides.
# VNET_LIBVIRT_DRIVER=kvm|qemu overrides all of this.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

case "${VNET_LIBVIRT_DRIVER:-}" in
  kvm | qemu) echo "$VNET_LIBVIRT_DRIVER"; exit 0 ;;
  "") ;;
  *) echo "kvm-probe: VNET_LIBVIRT_DRIVER must be kvm or qemu" >&2; exit 2 ;;
esac
if ! [ -r /dev/kvm ] || ! [ -w /dev/kvm ]; then
  echo "kvm-probe: /dev/kvm not usable by $(id -un): software emulation" >&2
  echo qemu
  exit 0
fi
kernel=
for k in "${VNET_PROBE_KERNEL:-}" "$(dirname "$here")/target/vagrant/bookworm64-libvirt.vmlinuz" \
  "/boot/vmlinuz-$(uname -r)" /boot/vmlinuz /vmlinuz; do
  if [ -n "$k" ] && [ -r "$k" ]; then kernel=$k; break; fi
done
qemu=$(command -v qemu-system-x86_64 || true)
if [ -z "$kernel" ] || [ -z "$qemu" ]; then
  echo "kvm-probe: no kernel or qemu to try KVM with; /dev/kvm is there: kvm" >&2
  echo kvm
  exit 0
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
timeout 15 "$qemu" -accel kvm -cpu host -m 128 -nodefaults -display none -no-reboot \
  -serial "file:$log" -kernel "$kernel" -append "console=ttyS0 panic=-1" \
  >/dev/null 2>&1 || true
if grep -q "Kernel panic" "$log"; then
  echo kvm
else
  echo "kvm-probe: $kernel did not boot under KVM within 15 s: software emulation" >&2
  echo qemu
fi

#!/usr/bin/env bash
# Installs what the Vagrant lab test (scripts/test-vagrant.sh) needs on a Debian host and
# is missing: qemu and libvirt, vagrant with vagrant-libvirt, and what
# vagrant/build-box.sh takes (debootstrap, mkfs.ext4, extlinux, qemu-img).
#   scripts/vagrant-deps.sh        (as root; .ci/run and test-vagrant.sh call it)
#
# qemu-system-x86 must be the version of the installed qemu-utils: both come from one
# source package. A machine whose qemu-utils came from <codename>-backports (while its
# apt sources no longer list backports) gets qemu, libvirt (whose releases follow qemu's)
# and seabios from backports too, through a temporary apt configuration: the machine's
# sources, lists and preferences are left as they were.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

pkgs=(qemu-system-x86 qemu-utils libvirt-daemon-system libvirt-clients vagrant vagrant-libvirt
  debootstrap e2fsprogs extlinux rsync openssh-client util-linux iproute2 tar python3)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
[ ${#missing[@]} -eq 0 ] && exit 0

utils=$(dpkg-query -W -f='${Status} ${Version}' qemu-utils 2>/dev/null || true)
if [[ "$utils" != "install ok installed "*"~bpo"* ]]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  exit 0
fi

# qemu-utils from backports: add backports for this run only.
# shellcheck source=/dev/null
. /etc/os-release
codename=${VERSION_CODENAME:?no VERSION_CODENAME in /etc/os-release}
apt_dir=$(mktemp -d /tmp/vnet-apt.XXXXXX)
trap 'rm -rf --one-file-system "$apt_dir"' EXIT
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/sources"
# The mirror the machine already uses for Debian itself.
# shellcheck disable=SC2016 # apt's own $(FIELD) syntax
mirror=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 'Created-By: Packages' |
  awk -v r="$codename" '$2 == r {print $1; exit}')
mirror=${mirror:-http://deb.debian.org/debian/}
cp /etc/apt/sources.list "$apt_dir/sources/00-sources.list" 2>/dev/null || true
for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
  [ -e "$f" ] && cp "$f" "$apt_dir/sources/"
done
cat >"$apt_dir/sources/zz-backports.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $codename-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
cat >"$apt_dir/preferences" <<EOF
Package: qemu-* libvirt-* libvirt0 seabios
Pin: release n=$codename-backports
Pin-Priority: 990
EOF
apt_opts=(-o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$apt_dir/sources"
  -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache"
  -o "Dir::Etc::Preferences=$apt_dir/preferences" -o "Dir::Etc::PreferencesParts=$apt_dir/none")
echo "vagrant-deps: qemu-utils ${utils##* } is from $codename-backports: qemu and libvirt from there too" >&2
apt-get "${apt_opts[@]}" update -qq
apt-get "${apt_opts[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

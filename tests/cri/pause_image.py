#!/usr/bin/python3
"""Write a pause image as an OCI image-layout tar: /bin/busybox (busybox-static) and a few
applet links, entrypoint `busybox sleep 1000000`. No registry is reachable from the test
machines, so the sandbox image is built here and loaded with `ctr images import`, which
names the image after the `io.containerd.image.name` annotation of index.json.

Usage: pause_image.py OUT.tar IMAGE-NAME
"""
import hashlib
import io
import json
import sys
import tarfile

# busybox-static: the image has no libc for a dynamic build to load.
BUSYBOX = "/bin/busybox"
APPLETS = ["sh", "sleep"]


def add_bytes(tar, name, data, mode=0o644):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    tar.addfile(info, io.BytesIO(data))


def layer():
    """The root filesystem as an uncompressed tar (mtime 0: the same bytes every time)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("bin")
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
        with open(BUSYBOX, "rb") as f:
            add_bytes(tar, "bin/busybox", f.read(), 0o755)
        for applet in APPLETS:
            info = tarfile.TarInfo("bin/" + applet)
            info.type, info.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(info)
    return buf.getvalue()


def blob(tar, data, media_type):
    """Stores `data` under blobs/sha256/ and returns its OCI descriptor."""
    digest = hashlib.sha256(data).hexdigest()
    add_bytes(tar, "blobs/sha256/" + digest, data)
    return {"mediaType": media_type, "digest": "sha256:" + digest, "size": len(data)}


def main(out, name):
    rootfs = layer()
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Entrypoint": ["/bin/busybox", "sleep", "1000000"]},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(rootfs).hexdigest()]},
    }
    with tarfile.open(out, "w") as tar:
        add_bytes(tar, "oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": blob(tar, json.dumps(config).encode(), "application/vnd.oci.image.config.v1+json"),
            "layers": [blob(tar, rootfs, "application/vnd.oci.image.layer.v1.tar")],
        }
        desc = blob(tar, json.dumps(manifest).encode(), manifest["mediaType"])
        desc["annotations"] = {"io.containerd.image.name": name}
        desc["platform"] = {"architecture": "amd64", "os": "linux"}
        index = {"schemaVersion": 2, "manifests": [desc]}
        add_bytes(tar, "index.json", json.dumps(index).encode())


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])

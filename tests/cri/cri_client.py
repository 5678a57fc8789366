#!/usr/bin/python3
"""A minimal CRI client for containerd's CRI plugin: the pod sandbox calls a kubelet
makes (runtime.v1.RuntimeService) and ImageStatus, nothing else.

As a program (tests/cri.rs):
    cri_client.py --socket SOCK [--gen DIR] [--timeout S] COMMAND
      version                      prints the runtime's name and versions as JSON
      image NAME                   prints {"id", "repo_tags"}; id "" while the CRI does not know it
      run NAME NAMESPACE UID [--port HOST:CONTAINER]... [--cgroup-parent PATH]
                                   prints the new pod's id
      status POD_ID                prints {"id", "state", "ip", "netns", "pid"}
      stop POD_ID | remove POD_ID
    A failed call prints the command, the gRPC status code and its message on stderr
    and exits 1.

As a module (scripts/): `rt = Runtime(socket)`, then `rt.run_pod(...)`, `rt.status(id)`,
`rt.stop(id)`, `rt.remove(id)`: one method per call, each one RPC.

cri.proto is compiled with Debian's python3-grpc-tools into --gen DIR (once: later runs
reuse the generated modules) or into a temporary directory removed at exit. Run it with
Debian's /usr/bin/python3, which sees Debian's python3-grpcio.
"""
import argparse
import atexit
import json
import os
import shutil
import sys
import tempfile

import grpc

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO = os.path.join(HERE, "cri.proto")


def load_stubs(gen_dir=None):
    """Returns (cri_pb2, cri_pb2_grpc), compiling cri.proto into gen_dir if needed."""
    if gen_dir is None:
        gen_dir = tempfile.mkdtemp(prefix="cri-proto-")
        atexit.register(shutil.rmtree, gen_dir, True)
    if not os.path.exists(os.path.join(gen_dir, "cri_pb2_grpc.py")):
        from grpc_tools import protoc

        # Generated beside, then renamed into place (cri_pb2_grpc.py last, the file
        # checked above): a client started meanwhile never imports a half-written module.
        os.makedirs(gen_dir, exist_ok=True)
        work = tempfile.mkdtemp(dir=gen_dir)
        args = ["protoc", "-I" + HERE, "--python_out=" + work,
                "--grpc_python_out=" + work, PROTO]
        if protoc.main(args) != 0:
            raise RuntimeError("protoc failed on " + PROTO)
        for name in ("cri_pb2.py", "cri_pb2_grpc.py"):
            os.replace(os.path.join(work, name), os.path.join(gen_dir, name))
        shutil.rmtree(work, True)
    sys.path.insert(0, gen_dir)
    import cri_pb2
    import cri_pb2_grpc

    return cri_pb2, cri_pb2_grpc


class Runtime:
    """One connection to a CRI runtime on a unix socket."""

    def __init__(self, socket, gen_dir=None, timeout=120.0):
        self.pb, stubs = load_stubs(gen_dir)
        self.channel = grpc.insecure_channel("unix://" + socket)
        self.runtime = stubs.RuntimeServiceStub(self.channel)
        self.images = stubs.ImageServiceStub(self.channel)
        self.timeout = timeout

    def version(self):
        r = self.runtime.Version(self.pb.VersionRequest(version="v1"), timeout=self.timeout)
        return {"version": r.version, "runtime_name": r.runtime_name,
                "runtime_version": r.runtime_version,
                "runtime_api_version": r.runtime_api_version}

    def image(self, name):
        r = self.images.ImageStatus(
            self.pb.ImageStatusRequest(image=self.pb.ImageSpec(image=name)),
            timeout=self.timeout)
        return {"id": r.image.id, "repo_tags": list(r.image.repo_tags)}

    def run_pod(self, name, namespace, uid, ports=(), cgroup_parent=""):
        """Runs a pod sandbox on the pod network; `ports` are (host, container) TCP pairs.
        Returns the pod's id."""
        pb = self.pb
        config = pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name=name, namespace=namespace, uid=uid),
            hostname=name,
            port_mappings=[pb.PortMapping(protocol=pb.TCP, host_port=h, container_port=c)
                           for h, c in ports],
            linux=pb.LinuxPodSandboxConfig(
                cgroup_parent=cgroup_parent,
                # POD, not NODE: the pod gets its own network namespace, set up by CNI.
                security_context=pb.LinuxSandboxSecurityContext(
                    namespace_options=pb.NamespaceOption(
                        network=pb.POD, pid=pb.POD, ipc=pb.POD))),
        )
        r = self.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=config),
                                       timeout=self.timeout)
        return r.pod_sandbox_id

    def status(self, pod_id):
        """The pod's state and IP; from containerd's verbose info (JSON under "info"),
        its network namespace path and the pid of its sandbox process."""
        r = self.runtime.PodSandboxStatus(
            self.pb.PodSandboxStatusRequest(pod_sandbox_id=pod_id, verbose=True),
            timeout=self.timeout)
        info = json.loads(r.info.get("info", "{}"))
        spec = info.get("runtimeSpec") or {}
        namespaces = (spec.get("linux") or {}).get("namespaces") or []
        netns = next((n.get("path", "") for n in namespaces if n.get("type") == "network"), "")
        return {"id": r.status.id,
                "state": self.pb.PodSandboxState.Name(r.status.state),
                "ip": r.status.network.ip,
                "netns": netns,
                "pid": info.get("pid", 0)}

    def stop(self, pod_id):
        self.runtime.StopPodSandbox(self.pb.StopPodSandboxRequest(pod_sandbox_id=pod_id),
                                    timeout=self.timeout)

    def remove(self, pod_id):
        self.runtime.RemovePodSandbox(
            self.pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id), timeout=self.timeout)


def port_pair(text):
    host, container = text.split(":")
    return int(host), int(container)


def main(argv=None):
    p = argparse.ArgumentParser(description="minimal CRI client")
    p.add_argument("--socket", required=True)
    p.add_argument("--gen", help="directory for (and cache of) the generated modules")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per call")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("version")
    sub.add_parser("image").add_argument("name")
    run = sub.add_parser("run")
    run.add_argument("name")
    run.add_argument("namespace")
    run.add_argument("uid")
    run.add_argument("--port", type=port_pair, action="append", default=[])
    run.add_argument("--cgroup-parent", default="")
    for cmd in ("status", "stop", "remove"):
        sub.add_parser(cmd).add_argument("pod_id")
    a = p.parse_args(argv)

    rt = Runtime(a.socket, a.gen, a.timeout)
    try:
        if a.cmd == "version":
            print(json.dumps(rt.version()))
        elif a.cmd == "image":
            print(json.dumps(rt.image(a.name)))
        elif a.cmd == "run":
            print(rt.run_pod(a.name, a.namespace, a.uid, a.port, a.cgroup_parent))
        elif a.cmd == "status":
            print(json.dumps(rt.status(a.pod_id)))
        elif a.cmd == "stop":
            rt.stop(a.pod_id)
        else:
            rt.remove(a.pod_id)
    except grpc.RpcError as e:
        print(f"{a.cmd}: {e.code().name}: {e.details()}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

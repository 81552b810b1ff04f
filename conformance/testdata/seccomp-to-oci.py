#!/usr/bin/env python3
"""Turn a containers/docker seccomp profile (archMap, includes/excludes) into
the OCI config.json form a runtime takes, the way podman resolves it for one
container: x86_64, the given capabilities, this kernel.

Usage: seccomp-to-oci.py PROFILE [CAP ...] > oci.json
(seccomp-default.oci.json is /usr/share/containers/seccomp.json from Debian's
golang-github-containers-common, for runc's default capabilities.)"""
import json
import platform
import sys

profile = json.load(open(sys.argv[1]))
caps = set(sys.argv[2:])
arch, goarch = "SCMP_ARCH_X86_64", "amd64"
kernel = tuple(int(p) for p in platform.release().split("-")[0].split(".")[:2])


def kernel_ok(minimum):
    return not minimum or kernel >= tuple(int(p) for p in minimum.split(".")[:2])


out = {"defaultAction": profile["defaultAction"]}
if "defaultErrnoRet" in profile:
    out["defaultErrnoRet"] = profile["defaultErrnoRet"]
for entry in profile.get("archMap", []):
    if entry["architecture"] == arch:
        out["architectures"] = [arch] + entry.get("subArchitectures", [])
syscalls = []
for rule in profile.get("syscalls", []):
    inc, exc = rule.get("includes", {}), rule.get("excludes", {})
    if inc.get("caps") and not set(inc["caps"]) <= caps:
        continue
    if inc.get("arches") and goarch not in inc["arches"]:
        continue
    if not kernel_ok(inc.get("minKernel")):
        continue
    if exc.get("caps") and set(exc["caps"]) & caps:
        continue
    if exc.get("arches") and goarch in exc["arches"]:
        continue
    names = rule.get("names") or ([rule["name"]] if rule.get("name") else [])
    item = {"names": names, "action": rule["action"]}
    if rule.get("args"):
        item["args"] = rule["args"]
    if "errnoRet" in rule:
        item["errnoRet"] = rule["errnoRet"]
    syscalls.append(item)
out["syscalls"] = syscalls
json.dump(out, sys.stdout, indent=1)
print()

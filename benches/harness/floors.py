"""The floors the runtimes are measured against, and the check that the bundle asks for
exactly the work the true floor does."""

import copy
import json
import os
import subprocess
import sys
import tempfile

from runtimes import Floor, TrueFloor

# What the true floor takes from its command line (args, hostname) or what changes no
# kernel work (the version string; terminal is off in every benchmark bundle).
FREE = [("ociVersion",), ("process", "args"), ("process", "terminal"), ("hostname",)]


def make(name: str, binary: str, bundle: str, berth: str, work: str, log: str) -> Floor | None:
    """`floor` (the simple floor) or `floor-true`; None, with a note, where the true floor
    would not do what the bundle asks (its config is not runc's default)."""
    rootfs = os.path.join(bundle, "rootfs")
    if name == "floor":
        return Floor(name, binary, "", log, rootfs=rootfs)
    config = load(os.path.join(bundle, "config.json"))
    differences = differences_from_default(config, berth, work)
    if differences:
        print(f"skipping {name}: the bundle's config is not runc's default, which the true "
              f"floor does (differs at {', '.join(differences)})", file=sys.stderr)
        return None
    return TrueFloor(name, binary, "", log, rootfs=rootfs, hostname=config.get("hostname", ""),
                     program=config["process"]["args"])


def differences_from_default(config: dict, berth: str, work: str) -> list[str]:
    """The paths at which `config` differs from `berth spec` (runc's default config)."""
    spec_dir = tempfile.mkdtemp(prefix="default-spec.", dir=work)  # spec will not overwrite
    subprocess.run([berth, "spec", "--bundle", spec_dir], check=True, capture_output=True)
    default = load(os.path.join(spec_dir, "config.json"))
    config = copy.deepcopy(config)
    for document in (config, default):
        for path in FREE:
            _drop(document, path)
    return _differences(default, config, "")


def load(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def _drop(document: dict, path: tuple[str, ...]) -> None:
    for key in path[:-1]:
        document = document.get(key, {})
    document.pop(path[-1], None)


def _differences(a, b, where: str) -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            out += _differences(a.get(key), b.get(key), f"{where}.{key}")
        return out
    return [] if a == b else [where or "."]

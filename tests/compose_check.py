"""Checks that docker-compose.yml runs cloudpf the way this build understands it.

Every service on the cloudpf image names a subcommand and flags; each invocation (the
init service chains several with &&) is run as `cloudpf <args> --help`, which fails on
an unknown subcommand or flag and exits 0 otherwise. The compose file's own syntax is
checked by docker-compose in tests/run.

usage: python tests/compose_check.py docker-compose.yml target/debug/cloudpf
"""

import shlex
import subprocess
import sys

import yaml


def invocations(service):
    command = service.get("command")
    entrypoint = service.get("entrypoint")
    if entrypoint and entrypoint[:2] == ["/bin/sh", "-c"]:
        script = command[0] if isinstance(command, list) else command
        for part in script.split("&&"):
            words = shlex.split(part)
            if words[0] != "cloudpf":
                raise SystemExit(f"init runs {words[0]!r}, not cloudpf")
            yield words[1:]
    else:
        yield command if isinstance(command, list) else shlex.split(command)


def main(compose_path, binary):
    with open(compose_path) as f:
        compose = yaml.safe_load(f)
    checked = 0
    for name, service in compose["services"].items():
        if service.get("image") != "cloudpf:local":
            continue
        for args in invocations(service):
            run = subprocess.run([binary, *args, "--help"], capture_output=True, text=True)
            if run.returncode != 0:
                raise SystemExit(f"service {name}: cloudpf {' '.join(args)}: {run.stderr.strip()}")
            checked += 1
    if checked < 4:
        raise SystemExit(f"only {checked} cloudpf invocations found in {compose_path}")
    print(f"docker-compose.yml: {checked} cloudpf invocations accepted")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

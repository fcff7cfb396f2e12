"""a/b deploys with Fabric 2, the buedafab way.

Each host has /var/webapps/<unit>/releases/{a,b}, two clones of the
repository with a virtualenv each, and a `current` symlink to the live one.
A deploy updates the directory `current` does not point to, installs the
requirements into its virtualenv, points `current` at it and restarts the
app. A rollback points `current` back at the other directory.

    fab deploy --rev v0.3.0
    fab rollback
"""

import paramiko
from fabric import Config, ThreadingGroup, task
from invoke.exceptions import Exit

UNIT = "{{.Unit}}"
HOSTS = [{{range $i, $h := .Hosts}}{{if $i}}, {{end}}"{{$h}}"{{end}}]
SSH_CONFIG = "{{.SSHConfig}}"
KEY = "{{.Key}}"
KNOWN_HOSTS = "{{.KnownHosts}}"
REPO = "{{.Remote}}"
WHEELS = "{{.Wheels}}"

ROOT = f"/var/webapps/{UNIT}"
RELEASES = f"{ROOT}/releases"
CURRENT = f"{RELEASES}/current"


def hosts():
    """All hosts, worked on in parallel, host keys checked strictly."""
    config = Config(runtime_ssh_path=SSH_CONFIG)
    group = ThreadingGroup(
        *HOSTS, config=config, connect_kwargs={"key_filename": [KEY]}
    )
    for cxn in group:
        cxn.client.load_host_keys(KNOWN_HOSTS)
        cxn.client.set_missing_host_key_policy(paramiko.RejectPolicy())
    return group


def live_dir(group):
    """The release dir `current` points to ("" before the first deploy)."""
    results = group.run(f"readlink {CURRENT} || true", hide=True)
    live = {r.stdout.strip().rsplit("/", 1)[-1] for r in results.values()}
    if len(live) != 1:
        raise Exit(f"the hosts disagree on the live release: {sorted(live)}")
    return live.pop()


def switch(group, path):
    group.run(f"ln -sfn {path} {CURRENT}.tmp && mv -T {CURRENT}.tmp {CURRENT}")
    group.sudo(f"/etc/init.d/{UNIT} restart")


@task
def deploy(c, rev):
    """Deploy a tag or commit into the other release dir and switch to it."""
    group = hosts()
    group.run(f"test -d {RELEASES} || (sudo mkdir -p {RELEASES} && sudo chown -R deploy:deploy {ROOT})")
    for d in ("a", "b"):
        group.run(f"test -d {RELEASES}/{d}/.git || git clone -q {REPO} {RELEASES}/{d}")
    nxt = "b" if live_dir(group) == "a" else "a"
    path = f"{RELEASES}/{nxt}"
    group.run(f"cd {path} && git fetch -q --tags origin && git reset -q --hard {rev}")
    group.run(f"cd {path} && (test -x env/bin/python || /usr/bin/python3 -m venv env)")
    group.run(f"cd {path} && env/bin/pip install -q --no-index --find-links {WHEELS} -r requirements.txt")
    switch(group, path)
    print(f"{rev} is live in {nxt} on {len(HOSTS)} host(s)")


@task
def rollback(c):
    """Point current back at the other release dir and restart."""
    group = hosts()
    live = live_dir(group)
    if not live:
        raise Exit("nothing deployed yet")
    prev = "b" if live == "a" else "a"
    switch(group, f"{RELEASES}/{prev}")
    print(f"rolled back to {prev} on {len(HOSTS)} host(s)")

"""kubectls: the stock kubectl binaries the tests drive, when the machine has them.

kubectl 1.32 (WebSocket exec) from the Google Cloud SDK's bundle; kubectl
1.20 (SPDY exec only) from Debian's kubernetes-client, which
contrib/install-deps extracts to /var/cache/coracle/kubectl-1.20 (never
installed: its /usr/bin/kubectl conflicts with other packages). Missing
there, it is fetched the same way into the cache (apt's configuration
decides from where); None if it cannot be had.
"""
import glob
import os
import shutil
import subprocess
import tempfile

KUBECTL_132 = "/usr/lib/google-cloud-sdk/bin/kubectl.1.32"
KUBECTL_120 = "/var/cache/coracle/kubectl-1.20/kubectl"


def kubectl_132():
    return KUBECTL_132 if os.access(KUBECTL_132, os.X_OK) else None


def kubectl_120():
    if os.access(KUBECTL_120, os.X_OK):
        return KUBECTL_120
    tmp = tempfile.mkdtemp()
    try:
        r = subprocess.run(["apt-get", "download", "-qq", "kubernetes-client"], cwd=tmp,
                           capture_output=True, timeout=300)
        debs = glob.glob(os.path.join(tmp, "kubernetes-client_*.deb"))
        if r.returncode != 0 or not debs:
            return None
        if subprocess.run(["dpkg", "-x", debs[0], os.path.join(tmp, "x")], capture_output=True).returncode:
            return None
        os.makedirs(os.path.dirname(KUBECTL_120), exist_ok=True)
        shutil.copy(os.path.join(tmp, "x", "usr", "bin", "kubectl"), KUBECTL_120 + ".new")
        os.rename(KUBECTL_120 + ".new", KUBECTL_120)
        return KUBECTL_120
    except (OSError, subprocess.SubprocessError):
        return None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

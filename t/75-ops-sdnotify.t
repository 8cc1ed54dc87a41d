#!/usr/bin/python3
# sd_notify(3) as systemd sees it: each daemon, run with NOTIFY_SOCKET (a
# datagram socket of ours) and WATCHDOG_USEC, sends READY=1 with STATUS= once
# serving, WATCHDOG=1 pings from its event loop at half the interval,
# RELOADING=1 then READY=1 on SIGHUP (re-reading the config file's log-level),
# STOPPING=1 on SIGTERM and exits 0. Also: journald-style "<N>" prefixes when
# JOURNAL_STREAM is set, plain timestamped lines otherwise.
import os
import re
import shutil
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import ctest
import opsutil

t = ctest.Tap()
c = ctest.Cluster(t)
WD_USEC = 400000  # pings expected every 0.2 s


def check_daemon(name, start, conf, addr=None):
    """start(env) -> Daemon. conf: the config file the daemon reads."""
    ns = opsutil.NotifySocket(os.path.join(c.dir, name + ".notify"))
    c.on_teardown(ns.close)
    # JOURNAL_STREAM names stderr's device:inode (systemd.exec(5)): our log file
    log = os.path.join(c.dir, name + "-notify.log")
    open(log, "ab").close()
    st = os.stat(log)
    d = start(ns.env(WD_USEC, JOURNAL_STREAM="%d:%d" % (st.st_dev, st.st_ino)))
    t.ok(ns.wait("READY", "1", timeout=ctest.DEADLINE) is not None, "%s: READY=1" % name)
    st = ns.values("STATUS")
    t.ok(len(st) > 0 and all(s for s in st), "%s: STATUS= line (%s)" % (name, st[:1]))
    mp = ns.values("MAINPID")
    t.ok(not mp or mp[0] == str(d.proc.pid), "%s: MAINPID is the daemon's pid" % name)
    mark = ns.mark()
    ns.collect(1.0)
    pings = ns.count("WATCHDOG", "1", after=mark)
    t.ok(3 <= pings <= 8, "%s: WATCHDOG=1 every half interval (%d in 1 s)" % (name, pings))

    # SIGHUP: RELOADING=1, READY=1 again, and the new log-level applies
    with open(conf, "a") as f:
        f.write("log-level = debug\n")
    mark = ns.mark()
    d.proc.send_signal(signal.SIGHUP)
    i = ns.wait("RELOADING", "1", timeout=ctest.DEADLINE, after=mark)
    t.ok(i is not None, "%s: RELOADING=1 on SIGHUP" % name)
    t.ok(i is not None and ns.wait("READY", "1", timeout=ctest.DEADLINE, after=i) is not None,
         "%s: READY=1 after the reload" % name)
    t.ok(c.wait_for(lambda: "log-level debug" in d.tail(200), timeout=ctest.DEADLINE),
         "%s: SIGHUP re-read log-level from %s" % (name, os.path.basename(conf)))
    t.ok(d.alive(), "%s: still running after SIGHUP" % name)
    lines = [l for l in d.tail(200).splitlines() if l.strip()]
    t.ok(lines and all(re.match(r"^<[3-7]>", l) for l in lines),
         "%s: journald <N> prefixes with JOURNAL_STREAM set (%r)" % (name, lines[:1]))

    # a notify socket nobody reads (queue full) must not block the daemon's loop
    if addr:
        ns.paused = True
        time.sleep(WD_USEC / 1e6 * 15)  # ~30 pings, more than the socket queue holds
        # a loop blocked on the socket stays blocked until the reader
        # resumes, after this: no answer at all (the time bound is loose)
        t0 = time.time()
        st, _ = ctest.http_get(addr(), "/healthz", timeout=10)
        t.ok(st == 200 and time.time() - t0 < 5,
             "%s: loop not blocked by an unread notify socket (%.2f s)" % (name, time.time() - t0))
        ns.paused = False
        time.sleep(0.5)  # let the reader empty the queue
    else:
        t.skip("%s has no health endpoint" % name)
    mark = ns.mark()
    rc = d.stop(signal.SIGTERM)
    t.ok(ns.wait("STOPPING", "1", timeout=10, after=mark) is not None, "%s: STOPPING=1 on SIGTERM" % name)
    t.is_(rc, 0, "%s: exit status 0 after SIGTERM" % name)


# ---- apiserver ----
api_conf = os.path.join(c.dir, "apiserver.conf")
with open(api_conf, "w") as f:
    f.write("log-level = info\n")
api_port = ctest.free_port()


def start_api(env):
    return c.start("apiserver-notify", [c.bin("coracle-apiserver"), "--config", api_conf,
                                        "--listen", "127.0.0.1:%d" % api_port,
                                        "--data-dir", os.path.join(c.dir, "data-notify")], env=env)


check_daemon("apiserver", start_api, api_conf, lambda: "127.0.0.1:%d" % api_port)

# ---- scheduler (against a plain apiserver) ----
api = c.start_apiserver()
sched_conf = os.path.join(c.dir, "scheduler.conf")
sched_hz = ctest.free_port()
with open(sched_conf, "w") as f:
    f.write("server = %s\nhealthz-listen = 127.0.0.1:%d\n" % (c.api_addr, sched_hz))


def start_sched(env):
    return c.start("scheduler-notify", [c.bin("coracle-scheduler"), "--config", sched_conf], env=env)


check_daemon("scheduler", start_sched, sched_conf, lambda: "127.0.0.1:%d" % sched_hz)

# ---- kubelet: needs root and runc ----
runc = shutil.which("runc") or "/usr/sbin/runc"
if os.geteuid() != 0 or not os.access(runc, os.X_OK):
    t.skip("kubelet needs root and runc", 12)
else:
    kconf = os.path.join(c.dir, "kubelet.conf")
    with open(kconf, "w") as f:
        f.write("server = %s\nnode-name = notify-node\nroot-dir = %s\nruntime = %s\n"
                % (c.api_addr, os.path.join(c.dir, "kubelet"), runc))
    out = os.popen("%s --help" % c.bin("coracle-kubelet")).read()
    kaddr = None
    if "healthz-listen" in out:
        kport = ctest.free_port()
        kaddr = lambda: "127.0.0.1:%d" % kport
        with open(kconf, "a") as f:
            f.write("healthz-listen = 127.0.0.1:%d\n" % kport)

    def start_klet(env):
        return c.start("kubelet-notify", [c.bin("coracle-kubelet"), "--config", kconf], env=env)

    check_daemon("kubelet", start_klet, kconf, kaddr)

# ---- plain log lines without JOURNAL_STREAM, or when it names another file
# (a child whose stderr was redirected); no notify socket: no crash ----
for n, (what, js) in enumerate((("no JOURNAL_STREAM", None), ("JOURNAL_STREAM of another file", "1:2"))):
    env = dict(os.environ)
    env.pop("NOTIFY_SOCKET", None)
    env.pop("JOURNAL_STREAM", None)
    if js:
        env["JOURNAL_STREAM"] = js
    d = c.start("scheduler-plain%d" % n, [c.bin("coracle-scheduler"), "--server", c.api_addr,
                                    "--healthz-listen", ""], env=env)
    t.ok(c.wait_for(lambda: "server" in d.tail(), timeout=ctest.DEADLINE), "plain: scheduler logs")
    line = d.tail().splitlines()[-1] if d.tail() else ""
    t.ok(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z coracle-scheduler \w+: ", line),
         "plain: timestamped lines with %s (%r)" % (what, line))
    t.is_(d.stop(), 0, "plain: exit 0 without NOTIFY_SOCKET")
t.done()

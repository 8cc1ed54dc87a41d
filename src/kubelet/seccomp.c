/*
 * seccomp: the linux.seccomp object of a container's config.json.
 * RuntimeDefault is coracle's own default profile, in the spirit of the
 * one Docker and containerd apply: an allowlist built from the syscall
 * table with everything else failing with EPERM; syscalls that only a
 * capability makes useful (mount, unshare, ptrace, reboot, ...) are
 * allowed when the container holds that capability, and clone may not
 * create namespaces without CAP_SYS_ADMIN (clone3, whose flags seccomp
 * cannot read, answers ENOSYS so that libcs fall back to clone).
 * Localhost profiles are files in Docker's profile format (what
 * Kubernetes' seccomp tutorials and the security-profiles-operator
 * write) read from <root-dir>/seccomp/<localhostProfile> and turned into
 * the OCI form runc reads. runc applies it through libseccomp.
 */
#include "config.h"
#include "json.h"
#include "klet.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Allowed to every container. */
/* clang-format off */
static const char *const allow_all[] = {
    "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "cachestat",
    "capget", "capset", "chdir", "chmod", "chown", "chown32", "clock_adjtime",
    "clock_adjtime64", "clock_getres", "clock_getres_time64", "clock_gettime",
    "clock_gettime64", "clock_nanosleep", "clock_nanosleep_time64", "close", "close_range",
    "connect", "copy_file_range", "creat", "dup", "dup2", "dup3", "epoll_create",
    "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait", "epoll_pwait2",
    "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "execve", "execveat", "exit",
    "exit_group", "faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate",
    "fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchmodat2", "fchown", "fchown32",
    "fchownat", "fcntl", "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock", "fork",
    "fremovexattr", "fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64",
    "fsync", "ftruncate", "ftruncate64", "futex", "futex_requeue", "futex_time64",
    "futex_wait", "futex_waitv", "futex_wake", "futimesat", "getcpu", "getcwd", "getdents",
    "getdents64", "getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32",
    "getgroups", "getgroups32", "getitimer", "getpeername", "getpgid", "getpgrp", "getpid",
    "getppid", "getpriority", "getrandom", "getresgid", "getresgid32", "getresuid",
    "getresuid32", "getrlimit", "get_robust_list", "getrusage", "getsid", "getsockname",
    "getsockopt", "get_thread_area", "gettid", "gettimeofday", "getuid", "getuid32",
    "getxattr", "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch",
    "io_cancel", "ioctl", "io_destroy", "io_getevents", "io_pgetevents",
    "io_pgetevents_time64", "ioprio_get", "ioprio_set", "io_setup", "io_submit",
    "io_uring_enter", "io_uring_register", "io_uring_setup", "ipc", "kill", "landlock_add_rule",
    "landlock_create_ruleset", "landlock_restrict_self", "lchown", "lchown32", "lgetxattr",
    "link", "linkat", "listen", "listxattr", "llistxattr", "_llseek", "lremovexattr", "lseek",
    "lsetxattr", "lstat", "lstat64", "madvise", "membarrier", "memfd_create", "memfd_secret",
    "mincore", "mkdir", "mkdirat", "mknod", "mknodat", "mlock", "mlock2", "mlockall", "mmap",
    "mmap2", "mprotect", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive",
    "mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64", "mq_unlink", "mremap",
    "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock", "munlockall", "munmap",
    "name_to_handle_at", "nanosleep", "newfstatat", "_newselect", "open", "openat", "openat2",
    "pause", "pidfd_open", "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc", "pkey_free",
    "pkey_mprotect", "poll", "ppoll", "ppoll_time64", "prctl", "pread64", "preadv", "preadv2",
    "prlimit64", "process_mrelease", "pselect6", "pselect6_time64", "pwrite64", "pwritev",
    "pwritev2", "read", "readahead", "readlink", "readlinkat", "readv", "recv", "recvfrom",
    "recvmmsg", "recvmmsg_time64", "recvmsg", "remap_file_pages", "removexattr", "rename",
    "renameat", "renameat2", "restart_syscall", "rmdir", "rseq", "rt_sigaction",
    "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend",
    "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sched_getaffinity",
    "sched_getattr", "sched_getparam", "sched_get_priority_max", "sched_get_priority_min",
    "sched_getscheduler", "sched_rr_get_interval", "sched_rr_get_interval_time64",
    "sched_setaffinity", "sched_setattr", "sched_setparam", "sched_setscheduler",
    "sched_yield", "seccomp", "select", "semctl", "semget", "semop", "semtimedop",
    "semtimedop_time64", "send", "sendfile", "sendfile64", "sendmmsg", "sendmsg", "sendto",
    "setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups",
    "setgroups32", "setitimer", "setpgid", "setpriority", "setregid", "setregid32",
    "setresgid", "setresgid32", "setresuid", "setresuid32", "setreuid", "setreuid32",
    "setrlimit", "set_robust_list", "setsid", "setsockopt", "set_thread_area",
    "set_tid_address", "setuid", "setuid32", "setxattr", "shmat", "shmctl", "shmdt", "shmget",
    "shutdown", "sigaltstack", "signalfd", "signalfd4", "sigprocmask", "sigreturn", "socket",
    "socketcall", "socketpair", "splice", "stat", "stat64", "statfs", "statfs64", "statx",
    "symlink", "symlinkat", "sync", "sync_file_range", "syncfs", "sysinfo", "tee", "tgkill",
    "time", "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime",
    "timer_gettime64", "timer_settime", "timer_settime64", "timerfd_create",
    "timerfd_gettime", "timerfd_gettime64", "timerfd_settime", "timerfd_settime64", "times",
    "tkill", "truncate", "truncate64", "ugetrlimit", "umask", "uname", "unlink", "unlinkat",
    "utime", "utimensat", "utimensat_time64", "utimes", "vfork", "vmsplice", "wait4",
    "waitid", "waitpid", "write", "writev", "arch_prctl", "modify_ldt", "chroot"};
/* clang-format on */

/* Allowed when the container holds the capability (names without CAP_). */
static const struct {
    const char *cap;
    const char *names[24];
} allow_cap[] = {
    {"SYS_ADMIN", {"bpf",           "clone",         "clone3",      "fanotify_init",   "fsconfig",
                   "fsmount",       "fsopen",        "fspick",      "lookup_dcookie",  "mount",
                   "mount_setattr", "move_mount",    "open_tree",   "perf_event_open", "quotactl",
                   "quotactl_fd",   "setdomainname", "sethostname", "setns",           "syslog",
                   "umount",        "umount2",       "unshare"}},
    {"SYS_BOOT", {"reboot"}},
    {"SYS_MODULE", {"delete_module", "init_module", "finit_module"}},
    {"SYS_PACCT", {"acct"}},
    {"SYS_PTRACE",
     {"kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace"}},
    {"SYS_RAWIO", {"iopl", "ioperm"}},
    {"SYS_TIME", {"settimeofday", "stime", "clock_settime", "clock_settime64"}},
    {"SYS_TTY_CONFIG", {"vhangup"}},
    {"SYS_NICE", {"get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"}},
    {"SYSLOG", {"syslog"}},
    {"BPF", {"bpf"}},
    {"PERFMON", {"perf_event_open"}},
    {"DAC_READ_SEARCH", {"open_by_handle_at"}},
};

/* The clone flags that create namespaces: CLONE_NEWNS..CLONE_NEWNET and CLONE_NEWCGROUP. */
#define CLONE_NS_FLAGS 0x7E020000ULL

#if defined(__aarch64__)
#define ARCHES "\"SCMP_ARCH_AARCH64\",\"SCMP_ARCH_ARM\""
#else
#define ARCHES "\"SCMP_ARCH_X86_64\",\"SCMP_ARCH_X86\",\"SCMP_ARCH_X32\""
#endif

static bool has_cap(char *const *caps, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strncmp(caps[i], "CAP_", 4) && !strcmp(caps[i] + 4, name))
            return true;
    return false;
}

static void names(FILE *f, const char *const *v, size_t n)
{
    fputs("{\"names\":[", f);
    for (size_t i = 0; i < n && v[i]; i++)
        fprintf(f, "%s\"%s\"", i ? "," : "", v[i]);
    fputs("],\"action\":\"SCMP_ACT_ALLOW\"}", f);
}

char *klet_seccomp_default(char *const *caps, size_t ncaps)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        fatal("open_memstream failed");
    fputs("{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"defaultErrnoRet\":1,"
          "\"architectures\":[" ARCHES "],\"syscalls\":[",
          f);
    names(f, allow_all, ARRAY_SIZE(allow_all));
    bool sys_admin = has_cap(caps, ncaps, "SYS_ADMIN");
    for (size_t i = 0; i < ARRAY_SIZE(allow_cap); i++) {
        if (!has_cap(caps, ncaps, allow_cap[i].cap))
            continue;
        fputc(',', f);
        names(f, allow_cap[i].names, ARRAY_SIZE(allow_cap[i].names));
    }
    /* Personalities a program may ask for: Linux, and its 32-bit and uname26 variants. */
    static const unsigned long pers[] = {0x0, 0x8, 0x20000, 0x20008, 0xffffffff};
    for (size_t i = 0; i < ARRAY_SIZE(pers); i++)
        fprintf(f,
                ",{\"names\":[\"personality\"],\"action\":\"SCMP_ACT_ALLOW\",\"args\":"
                "[{\"index\":0,\"value\":%lu,\"op\":\"SCMP_CMP_EQ\"}]}",
                pers[i]);
    if (!sys_admin)
        fprintf(f,
                ",{\"names\":[\"clone\"],\"action\":\"SCMP_ACT_ALLOW\",\"args\":"
                "[{\"index\":%d,\"value\":%llu,\"valueTwo\":0,\"op\":\"SCMP_CMP_MASKED_EQ\"}]}"
                ",{\"names\":[\"clone3\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":38}",
#if defined(__s390x__)
                1,
#else
                0,
#endif
                CLONE_NS_FLAGS);
    fputs("]}", f);
    fclose(f);
    return buf;
}

/* ------------------------------------------------------------ Localhost profiles */

/* Docker's names for the architectures its archMap lists. */
static bool arch_here(const char *a)
{
#if defined(__aarch64__)
    return !strcmp(a, "SCMP_ARCH_AARCH64") || !strcmp(a, "arm64");
#else
    return !strcmp(a, "SCMP_ARCH_X86_64") || !strcmp(a, "amd64");
#endif
}

/* An includes/excludes filter: caps (all held), arches (one is this machine's). */
static bool filter_match(const json_t *flt, char *const *caps, size_t ncaps, bool empty)
{
    const json_t *fc = json_get(flt, "caps"), *fa = json_get(flt, "arches");
    if (!fc && !fa)
        return empty;
    bool ok = true;
    for (size_t i = 0; fc && i < fc->n; i++) {
        const char *c = json_str(fc->kids[i]);
        if (!c || !has_cap(caps, ncaps, !strncmp(c, "CAP_", 4) ? c + 4 : c))
            ok = false;
    }
    if (fa && fa->n) {
        bool any = false;
        for (size_t i = 0; i < fa->n; i++)
            if (json_str(fa->kids[i]) && arch_here(json_str(fa->kids[i])))
                any = true;
        ok = ok && any;
    }
    return ok;
}

/* A syscall rule applies: its includes all hold, its excludes do not. Docker's semantics
 * for excludes: any listed cap held, or this arch listed, rules it out. */
static bool rule_applies(const json_t *r, char *const *caps, size_t ncaps)
{
    const json_t *inc = json_get(r, "includes"), *exc = json_get(r, "excludes");
    if (inc && !filter_match(inc, caps, ncaps, true))
        return false;
    if (!exc)
        return true;
    const json_t *ec = json_get(exc, "caps"), *ea = json_get(exc, "arches");
    for (size_t i = 0; ec && i < ec->n; i++) {
        const char *c = json_str(ec->kids[i]);
        if (c && has_cap(caps, ncaps, !strncmp(c, "CAP_", 4) ? c + 4 : c))
            return false;
    }
    for (size_t i = 0; ea && i < ea->n; i++)
        if (json_str(ea->kids[i]) && arch_here(json_str(ea->kids[i])))
            return false;
    return true;
}

static void write_strs(FILE *f, const json_t *arr)
{
    fputc('[', f);
    for (size_t i = 0, k = 0; arr && i < arr->n; i++) {
        if (!json_str(arr->kids[i]))
            continue;
        if (k++)
            fputc(',', f);
        json_write_str(f, json_str(arr->kids[i]));
    }
    fputc(']', f);
}

/* The architectures: "architectures", or archMap's architecture and subArchitectures. */
static void write_arches(FILE *f, const json_t *prof)
{
    const json_t *am = json_get(prof, "archMap");
    if (!am) {
        write_strs(f, json_get(prof, "architectures"));
        return;
    }
    fputc('[', f);
    int k = 0;
    for (size_t i = 0; i < am->n; i++) {
        const char *a = json_str(json_get(am->kids[i], "architecture"));
        if (!a || !arch_here(a))
            continue;
        fprintf(f, "%s", k++ ? "," : "");
        json_write_str(f, a);
        const json_t *sub = json_get(am->kids[i], "subArchitectures");
        for (size_t j = 0; sub && j < sub->n; j++)
            if (json_str(sub->kids[j])) {
                fputc(',', f);
                json_write_str(f, json_str(sub->kids[j]));
            }
    }
    fputc(']', f);
}

static int write_rule(FILE *f, const json_t *r, size_t i, char **err)
{
    const char *action = json_str(json_get(r, "action"));
    const json_t *nm = json_get(r, "names");
    const char *one = json_str(json_get(r, "name"));
    if (!action || (!nm && !one)) {
        *err = xasprintf("syscalls[%zu]: needs an action and names", i);
        return -1;
    }
    fputs("{\"names\":", f);
    if (nm) {
        write_strs(f, nm);
    } else {
        fputc('[', f);
        json_write_str(f, one);
        fputc(']', f);
    }
    fputs(",\"action\":", f);
    json_write_str(f, action);
    int64_t n;
    if (json_int64(json_get(r, "errnoRet"), &n) == 0)
        fprintf(f, ",\"errnoRet\":%lld", (long long)n);
    const json_t *args = json_get(r, "args");
    if (args && args->n) {
        fputs(",\"args\":[", f);
        for (size_t a = 0; a < args->n; a++) {
            int64_t idx = 0, v = 0, v2 = 0;
            const char *op = json_str(json_get(args->kids[a], "op"));
            json_int64(json_get(args->kids[a], "index"), &idx);
            json_int64(json_get(args->kids[a], "value"), &v);
            json_int64(json_get(args->kids[a], "valueTwo"), &v2);
            fprintf(f, "%s{\"index\":%lld,\"value\":%llu,\"valueTwo\":%llu,\"op\":", a ? "," : "",
                    (long long)idx, (unsigned long long)v, (unsigned long long)v2);
            json_write_str(f, op ? op : "SCMP_CMP_EQ");
            fputc('}', f);
        }
        fputc(']', f);
    }
    fputc('}', f);
    return 0;
}

int klet_seccomp_localhost(const char *path, char *const *caps, size_t ncaps, char **out,
                           char **err)
{
    json_t *prof = NULL;
    struct json_limits lim = {.max_bytes = 1 << 20};
    if (json_parse_file(path, &lim, &prof, err) < 0)
        return -1;
    int rc = -1;
    char *buf = NULL;
    size_t blen = 0;
    FILE *f = NULL;
    const char *def = json_str(json_get(prof, "defaultAction"));
    if (!def) {
        *err = xasprintf("no defaultAction");
        goto out;
    }
    f = open_memstream(&buf, &blen);
    if (!f)
        fatal("open_memstream failed");
    fputs("{\"defaultAction\":", f);
    json_write_str(f, def);
    int64_t n;
    if (json_int64(json_get(prof, "defaultErrnoRet"), &n) == 0)
        fprintf(f, ",\"defaultErrnoRet\":%lld", (long long)n);
    fputs(",\"architectures\":", f);
    write_arches(f, prof);
    fputs(",\"syscalls\":[", f);
    const json_t *sc = json_get(prof, "syscalls");
    for (size_t i = 0, k = 0; sc && i < sc->n; i++) {
        if (!rule_applies(sc->kids[i], caps, ncaps))
            continue;
        if (k++)
            fputc(',', f);
        if (write_rule(f, sc->kids[i], i, err) < 0)
            goto out;
    }
    fputs("]}", f);
    fclose(f);
    f = NULL;
    *out = buf;
    buf = NULL;
    rc = 0;
out:
    if (f)
        fclose(f);
    free(buf);
    json_free(prof);
    return rc;
}

#!/bin/bash
# packaging/e2e/run.sh: the packages' end-to-end test under a real systemd
# (`make e2e`). Needs root, the packages in dist/ (`make package`) and nfpm
# (NFPM=…; it builds the newer releases the upgrades install).
#
# A Debian 12 root (debootstrap minbase + systemd, redis-server, rpm) is
# built once and cached in $PAPYRA_E2E_CACHE (default
# /var/cache/papyra-compact-e2e/pkg-rootfs); it is rebuilt when the package
# list below changes. Every boot is systemd-nspawn --volatile=overlay (the
# cached root stays pristine; writes go to a tmpfs and vanish) with a
# private network, so the Redis on the container's loopback is its own.
#
# deb, a persistent copy of the root (so that it can reboot): apt install
# ./papyra-compact_*.deb on a host without node_exporter; checks the user,
# directories (the textfile one included), units (systemd-analyze verify)
# and the enabled timer; edits the conffile to compact a Papyra
# JSON-lines store and a Redis stream; starts a pass, which blocks until
# it ends (Type=oneshot); checks the store is byte-identical to Papyra's
# own compaction, the stream is trimmed, the journal's PAPYRA_* values,
# the textfile (promtool), status as an unprivileged user (the timer's
# next elapse as NEXT RUN) and the STATUS= line. A failing pass makes
# systemctl start fail; a store outside the sandbox is added by following
# check's advice (--write-dropin). Upgrades (the conffile edit survives,
# the timer stays enabled); switches to the daemon: started but not
# enabled, status warns and fails; enabled, then a reboot: the daemon
# runs. systemctl reload of a bad file fails, status too; a second store
# outside the sandbox makes the running daemon say "restart needed" until
# check --write-dropin and a restart. Upgrades again (the running daemon
# is release 3); installs node_exporter, which exports the metrics with
# no further step; removes (units stopped, textfile gone, config kept);
# purges (config, state, user and enablement links gone, the quarantine
# kept and reported, the stores untouched).
# TestSystemd (cmd/papyra-compact/systemd_test.go: READY, watchdog,
# reload) runs in a fresh container of the same root.
# rpm, second boot: the same install/upgrade/upgrade/erase cycle with
# rpm -ivh/-Uvh/-e --nodeps (RPM has no purge; see packaging/rpm/postun.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."

CACHE=${PAPYRA_E2E_CACHE:-/var/cache/papyra-compact-e2e}
ROOTFS=$CACHE/pkg-rootfs
SUITE=bookworm
INCLUDE=systemd,systemd-sysv,dbus,procps,redis-server,rpm,adduser
MIRROR=${MIRROR:-$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
NFPM=${NFPM:?NFPM must name the nfpm binary}
ARCH=$(dpkg --print-architecture)
RPMARCH=$(case $ARCH in amd64) echo x86_64 ;; arm64) echo aarch64 ;; *) echo "$ARCH" ;; esac)
T0=$(date +%s)

say() { printf '>> [%3ds] %s\n' $(($(date +%s) - T0)) "$*"; }
die() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (debootstrap, systemd-nspawn)"
for tool in systemd-nspawn:systemd-container debootstrap:debootstrap; do
    command -v "${tool%%:*}" >/dev/null && continue
    say "apt-get install ${tool#*:}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${tool#*:}" >/dev/null
done

shopt -s nullglob
debs=(dist/papyra-compact_*_"$ARCH".deb)
rpms=(dist/papyra-compact-*."$RPMARCH".rpm)
[ ${#debs[@]} = 1 ] && [ ${#rpms[@]} = 1 ] || die "want one $ARCH .deb and one $RPMARCH .rpm in dist/ (make package)"
shopt -u nullglob

mkdir -p "$CACHE"
exec 9>"$CACHE/pkg-rootfs.lock"
flock 9 # one run at a time on this cache

# ---------------------------------------------------------------- rootfs
key="$SUITE $INCLUDE $MIRROR"
if [ "$(cat "$ROOTFS/.papyra-e2e-key" 2>/dev/null)" != "$key" ]; then
    say "debootstrap $SUITE minbase + $INCLUDE into $ROOTFS (cached for later runs)"
    rm -rf "$ROOTFS" "$ROOTFS.tmp"
    mkdir -p "$CACHE/pkg-debs"
    debootstrap --variant=minbase --cache-dir="$CACHE/pkg-debs" --include="$INCLUDE" \
        "$SUITE" "$ROOTFS.tmp" "$MIRROR" >"$CACHE/pkg-debootstrap.log" 2>&1 ||
        { tail -20 "$CACHE/pkg-debootstrap.log"; die "debootstrap"; }
    chroot "$ROOTFS.tmp" apt-get clean
    echo papyra-e2e >"$ROOTFS.tmp/etc/hostname"
    printf '%s\n' "$key" >"$ROOTFS.tmp/.papyra-e2e-key"
    mv "$ROOTFS.tmp" "$ROOTFS"
else
    say "cached root $ROOTFS"
fi

# prometheus-node-exporter for the "installed later" step: its .deb (its
# dependencies are in the root), fetched once. promtool checks the
# textfile: the e2e never skips it.
EXTRA=$CACHE/extra-debs
if ! ls "$EXTRA"/prometheus-node-exporter_*.deb >/dev/null 2>&1; then
    say "apt-get download prometheus-node-exporter into $EXTRA"
    mkdir -p "$EXTRA"
    (cd "$EXTRA" && { apt-get download prometheus-node-exporter >/dev/null 2>&1 ||
        { apt-get update -qq && apt-get download prometheus-node-exporter >/dev/null; }; }) || die "apt-get download prometheus-node-exporter"
fi
if ! command -v promtool >/dev/null; then
    say "apt-get install prometheus (for promtool)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

# ---------------------------------------------------------------- inputs
WORK=$(mktemp -d /tmp/papyra-pkg-e2e.XXXXXX)
CG=papyra-pkg-e2e-$$
NS=
LEADER=

# shutdown powers the container off (SIGRTMIN+4 to its systemd), waits
# for nspawn, and removes the cgroups it ran in (no host systemd does).
shutdown() {
    if [ -n "$NS" ] && kill -0 "$NS" 2>/dev/null; then
        [ -n "$LEADER" ] && kill -RTMIN+4 "$LEADER" 2>/dev/null || true
        for _ in $(seq 150); do kill -0 "$NS" 2>/dev/null || break; sleep 0.2; done
        if kill -0 "$NS" 2>/dev/null; then
            echo "container did not power off; killing nspawn $NS" >&2
            kill -KILL "$NS" 2>/dev/null || true
        fi
        wait "$NS" 2>/dev/null || true
    fi
    NS= LEADER=
    local h
    for h in "${CGROUPS[@]}"; do
        [ -d "$h/$CG" ] && find "$h/$CG" -depth -type d -exec rmdir {} \; 2>/dev/null
    done
    return 0
}
# The cgroup hierarchies nspawn uses: hybrid (this VM: cgroup2 at
# unified/, name=systemd at systemd/) or pure cgroup2.
CGROUPS=()
for h in /sys/fs/cgroup/unified /sys/fs/cgroup/systemd; do [ -e "$h/cgroup.procs" ] && CGROUPS+=("$h"); done
[ ${#CGROUPS[@]} = 0 ] && [ -e /sys/fs/cgroup/cgroup.procs ] && CGROUPS=(/sys/fs/cgroup)
cleanup() {
    rc=$?
    if [ $rc != 0 ] && [ -n "$LEADER" ]; then
        echo "--- journal (last 60 lines)" >&2
        E journalctl --no-pager -n 60 >&2 || true
    fi
    shutdown
    [ $rc != 0 ] && [ -s "$WORK/console.log" ] && { echo "--- console" >&2; tail -20 "$WORK/console.log" >&2; }
    rm -rf "$WORK"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "packages under test: ${debs[0]} ${rpms[0]}"
PKGS=$WORK/pkgs
mkdir -p "$PKGS/r1"
cp "${debs[0]}" "${rpms[0]}" "$PKGS/r1/"
# The newer builds the upgrades install: same source, higher release, a
# binary that reports another version. Release 2 ships a changed default
# configuration, so that its upgrade meets a conffile both the package
# and the admin changed (dpkg keeps the admin's, with --force-confold, and
# leaves the new one as .dpkg-dist; rpm leaves it as .rpmnew).
base_version=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
{ cat config/testdata/example.yaml; echo "# e2e: the default configuration of release 2"; } >"$WORK/example-r2.yaml"
for r in 2 3; do
    say "building release $r for the upgrades"
    conf=./config/testdata/example.yaml
    [ $r = 2 ] && conf=$WORK/example-r2.yaml
    NFPM=$NFPM DIST=$PKGS/r$r ARCHES=$ARCH PKG_RELEASE=$r PKG_CONFIG=$conf VERSION="$base_version+e2e.r$r" \
        packaging/build.sh >"$WORK/build-r$r.log" 2>&1 || { cat "$WORK/build-r$r.log"; die "build release $r"; }
done
rm -rf dist/build # left behind for the host arch only; make package rebuilds it
cp testdata/fixtures/jsonl/store.jsonl testdata/fixtures/jsonl/expected.max_records-500.jsonl "$PKGS/"
cp "$EXTRA"/prometheus-node-exporter_*.deb "$PKGS/"
# 2,020 Papyra-format entries (the fixture's lines, corrupt ones too) as
# redis-cli --pipe input: XADD papyra:e2e:events * data <line>.
LC_ALL=C awk -v k=papyra:e2e:events '{
    printf "*5\r\n$4\r\nXADD\r\n$%d\r\n%s\r\n$1\r\n*\r\n$4\r\ndata\r\n$%d\r\n%s\r\n", length(k), k, length($0), $0
}' testdata/fixtures/jsonl/store.jsonl >"$PKGS/seed.resp"
cat >"$PKGS/targets.yaml" <<'EOF'

# Added by the e2e test, as an admin would: this makes the conffile modified.
targets:
  - name: orders
    kind: jsonl
    path: /var/lib/papyra/orders.jsonl
    retention:
      max_records: 500
  - name: events
    kind: redis
    url: redis://127.0.0.1:6379/0
    system_id: e2e
    approximate: false
    retention:
      max_records: 500
EOF

# ---------------------------------------------------------------- helpers
# boot [DIR]: boots DIR (a persistent root, which keeps what the test
# did across a reboot) or, without one, the cached root with
# --volatile=overlay (a fresh machine whose writes vanish).
boot() {
    local root=${1:-$ROOTFS} volatile=--volatile=overlay
    [ -n "${1:-}" ] && volatile=
    (
        # nspawn puts the container under the cgroup it starts in; give it
        # one of its own, so that cleaning up touches nobody else's.
        for h in "${CGROUPS[@]}"; do
            mkdir -p "$h/$CG" && echo $BASHPID >"$h/$CG/cgroup.procs"
        done
        exec setsid systemd-nspawn -D "$root" $volatile --boot --register=no --keep-unit \
            --console=read-only --private-network --machine="papyra-e2e-$$" \
            --bind-ro="$PKGS:/opt/pkgs" </dev/null >"$WORK/console.log" 2>&1
    ) &
    NS=$!
    local i
    for i in $(seq 300); do
        LEADER=$(pgrep -P "$NS" -x systemd || true)
        [ -n "$LEADER" ] && break
        kill -0 "$NS" 2>/dev/null || die "systemd-nspawn exited: $(cat "$WORK/console.log")"
        sleep 0.1
    done
    [ -n "$LEADER" ] || die "no container systemd after 30 s"
    local state=
    for i in $(seq 300); do
        state=$(E systemctl is-system-running 2>/dev/null || true)
        case $state in running | degraded) break ;; esac
        sleep 0.1
    done
    case $state in running | degraded) ;; *) die "container not up: '$state'" ;; esac
    [ "$state" = running ] || E systemctl --failed --no-pager >&2
}

E() { nsenter --target "$LEADER" --all "$@"; }
S() { E /bin/sh -ec "$1"; }
B() { E /bin/bash -ec "$1"; } # bash, for /dev/tcp
ok() { say "ok: $*"; }
# expect DESCRIPTION COMMAND…: the command must succeed.
expect() {
    local what=$1
    shift
    "$@" || die "$what"
    ok "$what"
}
# expect_eq DESCRIPTION WANT COMMAND…: the command's output must be WANT.
expect_eq() {
    local what=$1 want=$2 got
    shift 2
    got=$("$@" 2>&1) || true
    [ "$got" = "$want" ] || die "$what: want '$want', got '$got'"
    ok "$what ($got)"
}
prop() { E systemctl show -P "$2" "$1"; }
# pass starts papyra-compact.service, which returns when the pass is over
# (Type=oneshot), and fails when it failed.
pass() {
    E systemctl start papyra-compact.service || die "systemctl start papyra-compact.service failed: $(E journalctl --no-pager -n 20 -u papyra-compact.service)"
    expect_eq "the pass is over when systemctl start returns" "inactive" prop papyra-compact.service ActiveState
    expect_eq "the pass succeeded" "success 0" \
        S 'echo "$(systemctl show -P Result papyra-compact.service) $(systemctl show -P ExecMainStatus papyra-compact.service)"'
}
wait_active() {
    local i
    for i in $(seq 300); do
        [ "$(prop "$1" ActiveState)" = active ] && return 0
        sleep 0.1
    done
    die "$1 not active: $(prop "$1" ActiveState)"
}
lay_store() {
    S 'id app >/dev/null 2>&1 || useradd --system --no-create-home app
       mkdir -p /var/lib/papyra
       chown app:app /var/lib/papyra && chmod 0750 /var/lib/papyra
       install -o app -g app -m 0640 /opt/pkgs/store.jsonl /var/lib/papyra/orders.jsonl'
}
verify_units() {
    expect_eq "systemd-analyze verify: no warning" "" \
        E systemd-analyze verify --man=no papyra-compact.service papyra-compact.timer papyra-compact-daemon.service
}

# ================================================================ deb
say "deb: copying the root (persistent, for the reboot) and booting it"
cp -a "$ROOTFS" "$WORK/deb-root"
boot "$WORK/deb-root"
say "booted; apt install ./$(basename "${debs[0]}")"
S "cd /opt/pkgs/r1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q ./$(basename "${debs[0]}")" >"$WORK/apt-install.log" 2>&1 ||
    { cat "$WORK/apt-install.log"; die "apt install"; }
ok "apt install"
expect_eq "user papyra-compact (sysusers)" "/var/lib/papyra-compact:/usr/sbin/nologin" \
    S 'getent passwd papyra-compact | cut -d: -f6,7'
expect_eq "group papyra-compact" "papyra-compact" S 'getent group papyra-compact | cut -d: -f1'
expect_eq "state dir (tmpfiles), readable for status" "papyra-compact papyra-compact 755" E stat -c '%U %G %a' /var/lib/papyra-compact
expect_eq "quarantine private" "papyra-compact 750" E stat -c '%U %a' /var/lib/papyra-compact/quarantine
expect_eq "lock dir (tmpfiles)" "papyra-compact 755" E stat -c '%U %a' /run/papyra-compact
expect_eq "no node_exporter yet; its textfile directory made by tmpfiles" "missing root 755" \
    S 'echo "$(command -v prometheus-node-exporter || echo missing) $(stat -c "%U %a" /var/lib/prometheus/node-exporter)"' 
expect_eq "timer enabled on first install" "enabled" E systemctl is-enabled papyra-compact.timer
expect_eq "timer started" "active" E systemctl is-active papyra-compact.timer
expect_eq "daemon not started" "inactive" prop papyra-compact-daemon.service ActiveState
expect_eq "conffiles" "/etc/papyra/compact.yaml" S "dpkg-query -W -f='\${Conffiles}\n' papyra-compact | awk 'NF {print \$1}'"
expect "units are not conffiles; man page, completion, rules, dashboard, copyright, changelog, journal catalog shipped" S '
    for f in /usr/lib/systemd/system/papyra-compact.service /usr/lib/systemd/system/papyra-compact.timer \
        /usr/lib/systemd/system/papyra-compact-daemon.service /usr/share/man/man1/papyra-compact.1.gz \
        /usr/share/bash-completion/completions/papyra-compact /usr/share/papyra-compact/prometheus/papyra-compact.rules.yml \
        /usr/share/papyra-compact/grafana/papyra-compact.json /usr/share/doc/papyra-compact/copyright \
        /usr/share/doc/papyra-compact/changelog.Debian.gz /usr/lib/systemd/catalog/papyra-compact.catalog; do
        test -s "$f" || { echo "missing $f"; exit 1; }; done'
expect "bash completion loads" E bash -c '. /usr/share/bash-completion/completions/papyra-compact && complete -p papyra-compact >/dev/null'
verify_units
expect "papyra-compact check accepts the shipped configuration" S 'papyra-compact check >/dev/null'

say "editing the conffile: a JSON-lines store and a Redis stream"
lay_store
S 'cat /opt/pkgs/targets.yaml >>/etc/papyra/compact.yaml'
expect "papyra-compact check accepts the edited configuration" S 'papyra-compact check >/dev/null'
for i in $(seq 100); do E redis-cli ping >/dev/null 2>&1 && break; sleep 0.1; done
expect_eq "redis on the container's loopback" "PONG" E redis-cli -h 127.0.0.1 ping
S 'redis-cli --pipe </opt/pkgs/seed.resp >/dev/null'
expect_eq "stream seeded" "2020" E redis-cli XLEN papyra:e2e:events

say "systemctl start papyra-compact.timer; start a pass"
E systemctl start papyra-compact.timer
pass
expect "store compacted, byte-identical to Papyra's own compaction (max_records 500)" \
    cmp "/proc/$LEADER/root/var/lib/papyra/orders.jsonl" "$PKGS/expected.max_records-500.jsonl"
expect_eq "store keeps its owner and mode" "app app 640" E stat -c '%U %G %a' /var/lib/papyra/orders.jsonl
expect_eq "20 corrupt lines quarantined" "20" S 'cat /var/lib/papyra-compact/quarantine/orders/* | wc -l'
expect_eq "stream trimmed to 500" "500" E redis-cli XLEN papyra:e2e:events
# The journal's values, not only its fields: one run-finished entry per
# target from this pass, with what status reports.
jfield() { # jfield TARGET FIELD: FIELD of TARGET's run-finished entries, one a line
    E journalctl --no-pager -u papyra-compact.service -o export PAPYRA_TARGET="$1" \
        MESSAGE_ID=5fdeba466a02400189832fd0d9994704 | sed -n "s/^$2=//p"
}
expect_eq "journal, orders: backend, outcome, records removed" "jsonl success 1500" \
    S 'echo $(for f in BACKEND OUTCOME RECORDS_REMOVED; do journalctl --no-pager -u papyra-compact.service -o export PAPYRA_TARGET=orders MESSAGE_ID=5fdeba466a02400189832fd0d9994704 | sed -n "s/^PAPYRA_$f=//p"; done)'
expect_eq "journal, events: backend, outcome" "redis success" \
    S 'echo $(for f in BACKEND OUTCOME; do journalctl --no-pager -u papyra-compact.service -o export PAPYRA_TARGET=events MESSAGE_ID=5fdeba466a02400189832fd0d9994704 | sed -n "s/^PAPYRA_$f=//p"; done)'
E papyra-compact status --json >"$WORK/status.json"
expect_eq "journal, events: records removed as status reports them" \
    "$(jq -r '.targets[] | select(.target=="events") | .removed' "$WORK/status.json")" jfield events PAPYRA_RECORDS_REMOVED
expect_eq "journal: the unit and transport of the entries" "papyra-compact.service journal" \
    S 'echo $(for f in _SYSTEMD_UNIT _TRANSPORT; do journalctl --no-pager -u papyra-compact.service -o export PAPYRA_TARGET=orders MESSAGE_ID=5fdeba466a02400189832fd0d9994704 | sed -n "s/^$f=//p"; done)'
expect "journalctl -x explains the run-finished entry (the catalog, indexed by systemd's trigger)" \
    S 'journalctl --no-pager -x -u papyra-compact.service PAPYRA_TARGET=orders MESSAGE_ID=5fdeba466a02400189832fd0d9994704 | grep -q "papyra-compact finished a run of target orders"'
expect_eq "no node_exporter, and yet no run failed to record its metrics" "0" \
    S 'journalctl --no-pager -u papyra-compact.service | grep -c "cannot record\|cannot write the metrics" || true'
prom=/proc/$LEADER/root/var/lib/prometheus/node-exporter/papyra_compact.prom
expect "textfile $prom written" test -s "$prom"
cp "$prom" "$WORK/papyra_compact.prom"
expect "textfile: both targets succeeded" grep -Eq '^papyra_compact_target_success\{.*target="orders".*\} 1$' "$WORK/papyra_compact.prom"
grep -Eq '^papyra_compact_target_success\{.*target="events".*\} 1$' "$WORK/papyra_compact.prom" || die "textfile: events not successful"
expect_eq "promtool check metrics: no problem" "" promtool check metrics <"$WORK/papyra_compact.prom"
expect "papyra-compact status (root): every target's last run succeeded (exit 0)" S 'papyra-compact status >/tmp/status'
expect "papyra-compact status lists both, successful" S 'grep -Eq "^orders .* success " /tmp/status && grep -Eq "^events .* success " /tmp/status'
status_text=$(prop papyra-compact.service StatusText)
E systemctl status --no-pager papyra-compact.service >"$WORK/status.txt" 2>&1 || true
expect "systemctl status papyra-compact shows the pass's STATUS= line ($status_text)" \
    grep -qF "Status: \"$status_text\"" "$WORK/status.txt"

say "papyra-compact status as an unprivileged user (nobody)"
unpriv() { E setpriv --reuid=nobody --regid=nogroup --clear-groups --reset-env "$@"; }
unpriv papyra-compact status --json >"$WORK/status-nobody.json" 2>"$WORK/status-nobody.err" ||
    die "status as nobody failed: $(cat "$WORK/status-nobody.err")"
got=$(jq -r '[.targets[] | .target+":"+.result] | sort | join(" ")' "$WORK/status-nobody.json")
got="$got $(jq '.problems | length' "$WORK/status-nobody.json") $(wc -c <"$WORK/status-nobody.err")"
[ "$got" = "events:success orders:success 0 0" ] || die "status as nobody: got '$got'"
ok "status as nobody: both targets successful, no problem, nothing on stderr"
expect_eq "status as nobody reads the units over D-Bus" "enabled active disabled inactive" \
    jq -r '[.units.timer.unit_file_state, .units.timer.active_state, .units.daemon.unit_file_state, .units.daemon.active_state] | join(" ")' "$WORK/status-nobody.json"
next=$(E systemctl show -P NextElapseUSecRealtime papyra-compact.timer)
nextjson=$(jq -r '.units.timer_next_elapse' "$WORK/status-nobody.json")
[ "$nextjson" != null ] && [ "$(date -u -d "$nextjson" +%s)" = "$(date -u -d "$next" +%s)" ] ||
    die "NEXT RUN: status says '$nextjson', systemctl says '$next'"
expect_eq "NEXT RUN of every target is the timer's next elapse ($next)" "$nextjson $nextjson" \
    jq -r '[.targets[].next_run] | join(" ")' "$WORK/status-nobody.json"
expect "the quarantine stays private: nobody cannot list it" S '! setpriv --reuid=nobody --regid=nogroup --clear-groups ls /var/lib/papyra-compact/quarantine/orders >/dev/null 2>&1'

say "papyra-compact explain as an unprivileged user (nobody)"
unpriv papyra-compact explain events >"$WORK/explain-events.txt" 2>"$WORK/explain.err" ||
    die "explain events as nobody failed: $(cat "$WORK/explain.err")"
cat "$WORK/explain-events.txt"
expect "explain events as nobody: the stream read now, by age, nothing on stderr" \
    sh -c 'grep -q "^read now, " "$1" && grep -q "^It holds 500 records" "$1" && grep -q "^  under 1h " "$1" && test ! -s "$2"' \
    sh "$WORK/explain-events.txt" "$WORK/explain.err"
unpriv papyra-compact explain orders --json >"$WORK/explain-orders.json" 2>"$WORK/explain.err" ||
    die "explain orders as nobody failed: $(cat "$WORK/explain.err")"
expect_eq "explain orders as nobody: the 0640 store is unreadable, so the last run's figures, as of that run" "last_run true 500 8" \
    jq -r '[.source, (.as_of != null and (.unreadable | test("permission denied"))), .would_keep.records, (.ages | length)] | join(" ")' "$WORK/explain-orders.json"

say "a failing pass: systemctl start fails, status too"
S 'cp /etc/papyra/compact.yaml /root/compact.yaml.good
   mkdir -p /var/lib/papyra/notafile && chown app:app /var/lib/papyra/notafile
   printf "  - name: broken\n    kind: jsonl\n    path: /var/lib/papyra/notafile\n" >>/etc/papyra/compact.yaml'
expect "systemctl start papyra-compact.service fails when the pass fails" S '! systemctl start papyra-compact.service'
expect_eq "the unit failed with the pass's exit status" "failed exit-code 1" \
    S 'echo $(systemctl show -P ActiveState papyra-compact.service) $(systemctl show -P Result papyra-compact.service) $(systemctl show -P ExecMainStatus papyra-compact.service)'
expect "status exits 1 and names the error, with the full mode string" \
    S 'rc=0; papyra-compact status >/tmp/status || rc=$?; test $rc = 1 && grep -q "^broken .*not a regular file.*(drwx" /tmp/status'
S 'cp /root/compact.yaml.good /etc/papyra/compact.yaml; rmdir /var/lib/papyra/notafile; systemctl reset-failed papyra-compact.service'

say "a store outside the sandbox, added by following check's advice"
S 'mkdir -p /srv/a && chown app:app /srv/a && chmod 0750 /srv/a
   install -o app -g app -m 0640 /opt/pkgs/store.jsonl /srv/a/a.jsonl
   printf "  - name: storea\n    kind: jsonl\n    path: /srv/a/a.jsonl\n    retention:\n      max_records: 500\n" >>/etc/papyra/compact.yaml'
expect "check prints the complete drop-in for /srv/a" \
    S 'papyra-compact check >/tmp/check; grep -q "ReadWritePaths=-/srv/a$" /tmp/check && grep -q "papyra-compact-daemon.service.d/papyra-paths.conf" /tmp/check'
expect "check --write-dropin writes it for both units and reloads systemd" S 'papyra-compact check --write-dropin >/tmp/wd &&
    grep -q "^ReadWritePaths=-/srv/a$" /etc/systemd/system/papyra-compact.service.d/papyra-paths.conf &&
    grep -q "^ReadWritePaths=-/srv/a$" /etc/systemd/system/papyra-compact-daemon.service.d/papyra-paths.conf &&
    systemctl show -P ReadWritePaths papyra-compact.service | grep -q /srv/a'
expect "check: no warning left" S '! papyra-compact check | grep -q warning'
pass
expect "the store outside the sandbox compacted" cmp "/proc/$LEADER/root/srv/a/a.jsonl" "$PKGS/expected.max_records-500.jsonl"

say "upgrade to release 2, timer enabled, conffile edited"
r2=$(cd "$PKGS/r2" && ls papyra-compact_*_"$ARCH".deb)
S "cd /opt/pkgs/r2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o Dpkg::Options::=--force-confold ./$r2" >"$WORK/apt-r2.log" 2>&1 ||
    { cat "$WORK/apt-r2.log"; die "apt install (upgrade)"; }
expect "new binary installed" S "papyra-compact version | grep -qF '+e2e.r2'"
expect "the conffile edit survived" S 'grep -q "name: orders" /etc/papyra/compact.yaml'
expect "the package's new default is beside it as compact.yaml.dpkg-dist" \
    S 'grep -q "^# e2e: the default configuration of release 2" /etc/papyra/compact.yaml.dpkg-dist'
expect_eq "timer still enabled" "enabled" E systemctl is-enabled papyra-compact.timer
expect_eq "timer still active" "active" E systemctl is-active papyra-compact.timer
pass

say "the admin switches to the daemon, as the old README said: started, not enabled"
E systemctl disable --now papyra-compact.timer 2>/dev/null
E systemctl start papyra-compact-daemon.service
wait_active papyra-compact-daemon.service
expect "status warns and exits 1: the daemon would not come back after a reboot" \
    S 'rc=0; papyra-compact status >/tmp/status || rc=$?; test $rc = 1 && grep -q "^WARNING: nothing compacts on schedule" /tmp/status'
say "systemctl enable papyra-compact-daemon (README: enable --now), then a reboot"
E systemctl enable papyra-compact-daemon.service 2>/dev/null
expect "status: no warning once enabled" S 'papyra-compact status >/tmp/status && ! grep -q WARNING /tmp/status'
shutdown
boot "$WORK/deb-root"
wait_active papyra-compact-daemon.service
expect_eq "after the reboot: daemon active, timer inactive" "active inactive" \
    S 'echo $(systemctl is-active papyra-compact-daemon.service) $(systemctl is-active papyra-compact.timer || true)'
expect "after the reboot: status exits 0, no warning" S 'papyra-compact status >/tmp/status && ! grep -q WARNING /tmp/status'
for i in $(seq 100); do [ -n "$(prop papyra-compact-daemon.service StatusText)" ] && break; sleep 0.1; done
expect "systemctl status papyra-compact-daemon shows a STATUS= line" \
    S 'systemctl status --no-pager papyra-compact-daemon.service | grep -q "Status: \""'

say "systemctl reload with a bad configuration"
S 'cp /etc/papyra/compact.yaml /root/compact.yaml.good && printf "      max_agee: 1d\n" >>/etc/papyra/compact.yaml'
expect "systemctl reload papyra-compact-daemon fails" S '! systemctl reload papyra-compact-daemon.service'
expect_eq "the daemon runs on" "active" E systemctl is-active papyra-compact-daemon.service
expect "its journal says why (ExecReload's papyra-compact reload)" \
    S 'journalctl --no-pager -u papyra-compact-daemon.service | grep -q "rejected the new configuration"'
expect "status exits 1 and shows the rejected reload" \
    S 'rc=0; papyra-compact status >/tmp/status || rc=$?; test $rc = 1 && grep -q "^WARNING: the last configuration reload .* was rejected.*max_agee" /tmp/status'
S 'cp /root/compact.yaml.good /etc/papyra/compact.yaml'
expect "systemctl reload of the fixed file succeeds" E systemctl reload papyra-compact-daemon.service
expect "status exits 0 again" S 'papyra-compact status >/tmp/status && ! grep -q WARNING /tmp/status'

say "a second store outside the sandbox while the daemon runs"
S 'mkdir -p /srv/b && chown app:app /srv/b && chmod 0750 /srv/b
   install -o app -g app -m 0640 /opt/pkgs/store.jsonl /srv/b/b.jsonl
   printf "  - name: storeb\n    kind: jsonl\n    path: /srv/b/b.jsonl\n    retention:\n      max_records: 500\n" >>/etc/papyra/compact.yaml'
E systemctl reload papyra-compact-daemon.service
for i in $(seq 100); do prop papyra-compact-daemon.service StatusText | grep -q "restart needed" && break; sleep 0.1; done
expect "STATUS= says restart needed" S 'systemctl show -P StatusText papyra-compact-daemon.service | grep -q "restart needed: /srv/b"'
expect "the journal says restart needed" S 'journalctl --no-pager -u papyra-compact-daemon.service | grep -q "restart needed: /srv/b"'
expect "status exits 1 and says restart needed" S 'rc=0; papyra-compact status >/tmp/status || rc=$?; test $rc = 1 && grep -q "^WARNING: restart needed: /srv/b" /tmp/status'
expect "check prints the complete drop-in: both stores" S 'papyra-compact check | grep -q "ReadWritePaths=-/srv/a -/srv/b$"'
E papyra-compact check --write-dropin >/dev/null
expect "the drop-in now has both stores (following the advice did not drop the first)" \
    S 'grep -q "^ReadWritePaths=-/srv/a -/srv/b$" /etc/systemd/system/papyra-compact-daemon.service.d/papyra-paths.conf'
E systemctl restart papyra-compact-daemon.service
for i in $(seq 300); do
    S 'cmp -s /srv/b/b.jsonl /opt/pkgs/expected.max_records-500.jsonl' && break
    sleep 0.1
done
expect "after the restart the second store is compacted" cmp "/proc/$LEADER/root/srv/b/b.jsonl" "$PKGS/expected.max_records-500.jsonl"
expect "and no restart is needed any more" S '! systemctl show -P StatusText papyra-compact-daemon.service | grep -q "restart needed"'
for i in $(seq 100); do S 'papyra-compact status >/tmp/status' && break; sleep 0.1; done
expect "status exits 0" S 'papyra-compact status >/tmp/status && ! grep -q WARNING /tmp/status'

pid=$(prop papyra-compact-daemon.service MainPID)
say "upgrade to release 3 with the daemon running (MainPID $pid)"
r3=$(cd "$PKGS/r3" && ls papyra-compact_*_"$ARCH".deb)
S "cd /opt/pkgs/r3 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o Dpkg::Options::=--force-confold ./$r3" >"$WORK/apt-r3.log" 2>&1 ||
    { cat "$WORK/apt-r3.log"; die "apt install (upgrade 2)"; }
wait_active papyra-compact-daemon.service
pid3=$(prop papyra-compact-daemon.service MainPID)
expect "daemon restarted on the new binary (MainPID $pid -> $pid3)" test "$pid3" != "$pid" -a "$pid3" != 0
# The running process's own executable (even were it deleted), not the
# file on disk: /proc/PID/exe.
expect "the running daemon is release 3 (/proc/$pid3/exe version)" S "/proc/$pid3/exe version | grep -qF '+e2e.r3'"
expect_eq "the running daemon's executable is the installed one" "/usr/bin/papyra-compact" E readlink "/proc/$pid3/exe"
expect_eq "timer stays disabled" "disabled" E systemctl is-enabled papyra-compact.timer
expect_eq "timer stays stopped" "inactive" E systemctl is-active papyra-compact.timer

say "node_exporter installed after papyra-compact: exports the metrics with no further step"
S "dpkg -i /opt/pkgs/$(cd "$PKGS" && ls prometheus-node-exporter_*.deb)" >"$WORK/ne.log" 2>&1 || { cat "$WORK/ne.log"; die "dpkg -i prometheus-node-exporter"; }
wait_active prometheus-node-exporter.service
scrape() { E bash -c 'exec 3<>/dev/tcp/127.0.0.1/9100 && printf "GET /metrics HTTP/1.0\r\n\r\n" >&3 && cat <&3' 2>/dev/null; }
for i in $(seq 100); do scrape | grep -q '^papyra_compact_target_success' && break; sleep 0.1; done
expect "node_exporter exports papyra_compact_target_success for orders and events" \
    B 'exec 3<>/dev/tcp/127.0.0.1/9100 && printf "GET /metrics HTTP/1.0\r\n\r\n" >&3 && cat <&3 >/tmp/metrics &&
       grep -Eq "^papyra_compact_target_success\{.*target=\"orders\".*\} 1$" /tmp/metrics &&
       grep -Eq "^papyra_compact_target_success\{.*target=\"events\".*\} 1$" /tmp/metrics &&
       grep -q "^node_textfile_scrape_error 0$" /tmp/metrics'

say "apt remove"
S 'DEBIAN_FRONTEND=noninteractive apt-get remove -y -q papyra-compact' >"$WORK/apt-remove.log" 2>&1 ||
    { cat "$WORK/apt-remove.log"; die "apt remove"; }
expect_eq "daemon stopped" "inactive" E systemctl is-active papyra-compact-daemon.service
expect_eq "timer stopped" "inactive" E systemctl is-active papyra-compact.timer
expect "binary, units, sysusers and tmpfiles entries, journal catalog gone" S '! test -e /usr/bin/papyra-compact &&
    for u in papyra-compact.timer papyra-compact.service papyra-compact-daemon.service; do
        ! test -e /usr/lib/systemd/system/$u || exit 1
        case "$(systemctl show -P LoadState $u)" in not-found | masked) ;; *) exit 1 ;; esac
    done && ! test -e /usr/lib/sysusers.d/papyra-compact.conf && ! test -e /usr/lib/tmpfiles.d/papyra-compact.conf &&
    ! test -e /usr/lib/systemd/catalog/papyra-compact.catalog && ! journalctl --list-catalog | grep -q papyra-compact'
expect "the textfile is gone with the package (no stale series)" S '! test -e /var/lib/prometheus/node-exporter/papyra_compact.prom'
for i in $(seq 100); do scrape | grep -q '^papyra_compact_' || break; sleep 0.1; done
expect "node_exporter exports no papyra_compact series any more" B '! { exec 3<>/dev/tcp/127.0.0.1/9100 && printf "GET /metrics HTTP/1.0\r\n\r\n" >&3 && cat <&3; } | grep -q "^papyra_compact_"'
expect "config kept" S 'grep -q "name: orders" /etc/papyra/compact.yaml'
expect "state and user kept" S 'test -d /var/lib/papyra-compact && getent passwd papyra-compact >/dev/null'
expect_eq "dpkg: config-files" "deinstall ok config-files" E dpkg-query -W -f='${Status}' papyra-compact

say "reinstall after remove"
S "cd /opt/pkgs/r3 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o Dpkg::Options::=--force-confold ./$r3" >"$WORK/apt-re.log" 2>&1 ||
    { cat "$WORK/apt-re.log"; die "apt install (reinstall)"; }
expect_eq "the timer the admin disabled stays disabled" "disabled" E systemctl is-enabled papyra-compact.timer
expect "config still the edited one" S 'grep -q "name: orders" /etc/papyra/compact.yaml'

say "apt purge (from installed)"
S 'DEBIAN_FRONTEND=noninteractive apt-get purge -y -q papyra-compact' >"$WORK/apt-purge.log" 2>&1 ||
    { cat "$WORK/apt-purge.log"; die "apt purge"; }
expect "config gone" S '! test -e /etc/papyra'
expect "state (but the quarantine), locks and textfile gone" S 'test "$(ls -A /var/lib/papyra-compact)" = quarantine &&
    ! test -e /run/papyra-compact && ! test -e /var/lib/prometheus/node-exporter/papyra_compact.prom'
expect_eq "the quarantine is kept, whole, owned by root" "20 root" \
    S 'echo $(cat /var/lib/papyra-compact/quarantine/orders/* | wc -l) $(stat -c %U /var/lib/papyra-compact/quarantine/orders)'
expect "purge said where the quarantine is kept and what it deleted" \
    grep -q "purge kept the quarantine, .* in /var/lib/papyra-compact/quarantine; deleted the rest" "$WORK/apt-purge.log"
expect "user and group gone" S '! getent passwd papyra-compact && ! getent group papyra-compact'
expect "no enablement link or deb-systemd-helper state left (the drop-ins check --write-dropin wrote for the admin stay)" \
    S 'test -z "$(find /etc/systemd/system /var/lib/systemd/deb-systemd-helper-enabled /var/lib/systemd/deb-systemd-helper-masked \
        -name "*papyra*" ! -name papyra-paths.conf ! -name "papyra-compact*.service.d" 2>/dev/null)"'
for s in /var/lib/papyra/orders.jsonl /srv/a/a.jsonl /srv/b/b.jsonl; do
    expect "the store $s is untouched by the purge: its content is still Papyra's max_records=500 result" \
        cmp "/proc/$LEADER/root$s" "$PKGS/expected.max_records-500.jsonl"
done
expect_eq "and keeps its owner and mode" "app app 640" E stat -c '%U %G %a' /var/lib/papyra/orders.jsonl
shutdown

# ================================================================ TestSystemd
say "TestSystemd (the units' READY, STATUS=, reload and watchdog) in a fresh container"
boot
PAPYRA_E2E_LEADER=$LEADER PAPYRA_TEST_DISALLOW_SKIP=1 ${GO:-go} test -tags e2esystemd -count=1 -timeout 5m -run '^TestSystemd$' ./cmd/papyra-compact/ >"$WORK/testsystemd.log" 2>&1 ||
    { cat "$WORK/testsystemd.log"; die "TestSystemd"; }
grep -q '^ok' "$WORK/testsystemd.log" || { cat "$WORK/testsystemd.log"; die "TestSystemd did not run"; }
ok "TestSystemd: $(grep '^ok' "$WORK/testsystemd.log")"
shutdown


# ================================================================ rpm
say "rpm: booting a fresh container"
boot
rpm1=$(basename "${rpms[0]}")
rpm2=$(cd "$PKGS/r2" && ls papyra-compact-*."$RPMARCH".rpm)
rpm3=$(cd "$PKGS/r3" && ls papyra-compact-*."$RPMARCH".rpm)
S "rpm -ivh --nodeps /opt/pkgs/r1/$rpm1" >"$WORK/rpm-i.log" 2>&1 || { cat "$WORK/rpm-i.log"; die "rpm -ivh"; }
ok "rpm -ivh --nodeps $rpm1"
expect_eq "user papyra-compact (sysusers)" "/var/lib/papyra-compact:/usr/sbin/nologin" \
    S 'getent passwd papyra-compact | cut -d: -f6,7'
expect_eq "state dir (tmpfiles)" "papyra-compact papyra-compact 755" E stat -c '%U %G %a' /var/lib/papyra-compact
expect_eq "timer enabled on first install" "enabled" E systemctl is-enabled papyra-compact.timer
expect_eq "timer started" "active" E systemctl is-active papyra-compact.timer
verify_units
lay_store
S 'cat /opt/pkgs/targets.yaml >>/etc/papyra/compact.yaml'
for i in $(seq 100); do E redis-cli ping >/dev/null 2>&1 && break; sleep 0.1; done
S 'redis-cli --pipe </opt/pkgs/seed.resp >/dev/null'
pass
expect "store compacted" cmp "/proc/$LEADER/root/var/lib/papyra/orders.jsonl" "$PKGS/expected.max_records-500.jsonl"
expect_eq "stream trimmed to 500" "500" E redis-cli XLEN papyra:e2e:events

S "rpm -Uvh --nodeps /opt/pkgs/r2/$rpm2" >"$WORK/rpm-u2.log" 2>&1 || { cat "$WORK/rpm-u2.log"; die "rpm -Uvh"; }
ok "rpm -Uvh --nodeps $rpm2"
expect "new binary installed" S "papyra-compact version | grep -qF '+e2e.r2'"
expect "the config edit survived (noreplace)" S 'grep -q "name: orders" /etc/papyra/compact.yaml'
expect "the package's new default is beside it as compact.yaml.rpmnew" \
    S 'grep -q "^# e2e: the default configuration of release 2" /etc/papyra/compact.yaml.rpmnew'
expect_eq "timer still enabled" "enabled" E systemctl is-enabled papyra-compact.timer
expect_eq "timer still active" "active" E systemctl is-active papyra-compact.timer

E systemctl disable --now papyra-compact.timer 2>/dev/null
E systemctl start papyra-compact-daemon.service
wait_active papyra-compact-daemon.service
pid=$(prop papyra-compact-daemon.service MainPID)
S "rpm -Uvh --nodeps /opt/pkgs/r3/$rpm3" >"$WORK/rpm-u3.log" 2>&1 || { cat "$WORK/rpm-u3.log"; die "rpm -Uvh (2)"; }
ok "rpm -Uvh --nodeps $rpm3 with the daemon running (MainPID $pid)"
wait_active papyra-compact-daemon.service
pid3=$(prop papyra-compact-daemon.service MainPID)
expect "daemon restarted on the new binary (MainPID $pid -> $pid3)" test "$pid3" != "$pid" -a "$pid3" != 0
expect_eq "timer stays disabled" "disabled" E systemctl is-enabled papyra-compact.timer

S 'rpm -e --nodeps papyra-compact' >"$WORK/rpm-e.log" 2>&1 || { cat "$WORK/rpm-e.log"; die "rpm -e"; }
ok "rpm -e"
expect_eq "daemon stopped" "inactive" E systemctl is-active papyra-compact-daemon.service
expect_eq "timer stopped" "inactive" E systemctl is-active papyra-compact.timer
expect "binary and every unit gone" S '! test -e /usr/bin/papyra-compact &&
    for u in papyra-compact.timer papyra-compact.service papyra-compact-daemon.service; do
        ! test -e /usr/lib/systemd/system/$u || exit 1
        test "$(systemctl show -P LoadState $u)" = not-found || exit 1
    done'
expect "the textfile is gone with the package" S '! test -e /var/lib/prometheus/node-exporter/papyra_compact.prom'
expect "edited config kept as compact.yaml.rpmsave" S 'grep -q "name: orders" /etc/papyra/compact.yaml.rpmsave'
expect "state and user kept (RPM has no purge)" S 'test -d /var/lib/papyra-compact && getent passwd papyra-compact >/dev/null'
shutdown

say "e2e: OK ($(($(date +%s) - T0)) s)"

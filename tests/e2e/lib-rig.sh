# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
# The rig's shared preamble for the VM tests that boot an installed disk several times (as in
# tests/e2e/test-reset.sh, whose copy of these helpers it is): phase times, system credentials
# for QEMU, the serial log without escape sequences, host-clock stamps per log line, the guest
# protocol's IMPRINT-CHECK values, and a second boot when PID 1 froze at start-up on a loaded
# host. Sourced; the caller sets WORK and STAMP_PID= and defines BOOTS=0.

T_ALL=$EPOCHREALTIME
TIMES=()
MEASURED=()
since() { awk -v a="$1" -v b="${2:-$EPOCHREALTIME}" 'BEGIN { printf "%.1f", b - a }'; }
phase_done() { TIMES+=("$1 $(since "$2")s"); }
report_times() {
        printf 'time: %s\n' "${TIMES[@]}" "total $(since "$T_ALL")s"
        [ ${#MEASURED[@]} = 0 ] || printf 'measured: %s\n' "${MEASURED[@]}"
}
failed() {
        echo "FAIL: $*"
        report_times
        exit 1
}

# An SMBIOS type 11 string carrying the system credential NAME with VALUE (base64: no QEMU comma
# escaping).
cred() { printf 'type=11,value=io.systemd.credential.binary:%s=%s' "$1" "$(printf '%s' "$2" | base64 -w0)"; }

# The serial log without ANSI escape sequences (CSI, OSC, charset), CRs and NULs, as boot-image.sh
# matches it.
plain_log() {
        sed -E "s#\x1b\][^\x07\x1b]*(\x07|\x1b\\\\)?##g; s#\x1b\[[0-?]*[ -/]*[@-~]##g; s#\x1b[()][A-Za-z0-9]##g; s#\x1b[DEHMc78>=]##g" "$1" \
                | tr -d '\r\000'
}

# run_stamped LOG STAMPS COMMAND…: runs COMMAND (a boot-image.sh run writing LOG); each line of LOG
# goes to STAMPS prefixed with the host's clock, as it appears.
run_stamped() {
        local log=$1 stamps=$2 pid rc=0
        shift 2
        : >"$log"
        "$@" &
        pid=$!
        tail -n +1 -F --pid="$pid" "$log" 2>/dev/null | while IFS= read -r line; do
                printf '%s %s\n' "$EPOCHREALTIME" "$line"
        done >"$stamps" &
        STAMP_PID=$!
        wait "$pid" || rc=$?
        wait "$STAMP_PID" 2>/dev/null || true
        STAMP_PID=
        return "$rc"
}
# stamp_of STAMPS REGEX first|last: the host time of the first or last line matching REGEX.
stamp_of() {
        local sel=1
        [ "$3" = last ] && sel='$'
        sed -E "s#\x1b\[[0-?]*[ -/]*[@-~]##g" "$1" | tr -d '\r\000' | grep -aE -- "^[0-9.]+ .*($2)" | sed -n "${sel}p" | cut -d' ' -f1 || true
}

# The guest protocol's values (tests/image/rootfs-usr/usr/lib/imprint-usr/lifecycle):
# "IMPRINT-CHECK KEY=VALUE …". check_val LOG KEY [first|last]
check_val() {
        local sel=1
        [ "${3:-first}" = last ] && sel='$'
        plain_log "$1" | grep -a -o 'IMPRINT-CHECK .*' | grep -avE '^IMPRINT-CHECK (sysupdate|reboot|cryptsetup-[a-z]+):' \
                | grep -a -o -E "(^IMPRINT-CHECK | )$2=[^ ]*" | sed -n "${sel}p" | sed -E "s/^.*$2=//" || true
}

# PID 1 of a guest that found no time to start under TCG on a loaded host (see test-reset.sh).
FROZE='Freezing execution|Failed to start up manager'
pid1_froze() { plain_log "$1" | grep -aqE "$FROZE"; }
# again NAME LOG COMMAND…: runs COMMAND; when it failed because PID 1 froze at start-up, keeps
# the log as LOG.froze and runs COMMAND once more.
again() {
        local name=$1 log=$2 rc=0
        shift 2
        "$@" || rc=$?
        if [ "$rc" != 0 ] && pid1_froze "$log"; then
                mv "$log" "$log.froze"
                echo "note: $name: PID 1 froze at start-up; booting again"
                MEASURED+=("$name: PID 1 froze at start-up once (log $log.froze); booted again")
                BOOTS=$((BOOTS + 1))
                rc=0
                "$@" || rc=$?
        fi
        return "$rc"
}

# keep_file FROM TO: this run's own link to a cached medium (a copy where a link cannot be made):
# the cache keeps only its newest entries, and other builds may run meanwhile.
keep_file() { ln -f "$1" "$2" 2>/dev/null || cp --sparse=always "$1" "$2"; }

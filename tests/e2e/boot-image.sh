#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# boot-image.sh IMAGE [options] — boots a disk image under QEMU (q35, OVMF, swtpm) and checks it.
#
# IMAGE is attached as -device virtio-blk-pci,serial=target (/dev/disk/by-id/virtio-target in
# the guest) and is written to unless --snapshot is given. The serial console goes to a log file
# whose path is printed; it is kept after the run. By default the run must show that:
#   - systemd-boot started the UKI: IMPRINT-CHECK loader-info=systemd-boot …, stub-info=
#     systemd-stub …, loader-entry-selected matches --expect-entry (imprint-test_*.efi);
#   - root came from gpt-auto: no root= on the command line, and the device mounted on / is
#     /dev/gpt-auto-root (made by udev for the partition found via LoaderDevicePartUUID);
#   - the system reached multi-user.target and "systemctl is-system-running" said running;
#   - IMPRINT-CHECK-DONE appeared and the machine powered itself off before the timeout;
#   - every executable in the image's /usr/lib/imprint-test/check.d/ exited 0 (their output
#     is printed as "IMPRINT-CHECK check.d/NAME: LINE"; assert on it with --expect).
# These lines come from imprint-check.service in the test image (tests/image/rootfs/).
#
# Options (each has an environment variable; options win; lists in variables are space-separated):
#   --timeout SECONDS   hard limit for the whole run (default 300)            IMPRINT_BOOT_TIMEOUT
#   --keep              keep the run directory: OVMF VARS copy, swtpm state, logs
#   --snapshot          never write to IMAGE (QEMU snapshot=on)              IMPRINT_BOOT_SNAPSHOT=1
#   --disk FILE[:SERIAL]  another virtio disk, e.g. the live medium or a data disk; repeatable;
#                       serial defaults to disk1, disk2, …                    IMPRINT_BOOT_DISKS
#   --cdrom FILE        an ISO on the q35 AHCI controller (serial cdrom)      IMPRINT_BOOT_CDROM
#   --boot-first SERIAL the device the firmware tries first: target (default), a --disk serial,
#                       or cdrom; the others follow: target, disks, cdrom      IMPRINT_BOOT_FIRST
#   --tpm-state DIR     swtpm state directory to use and keep (created if missing): boot again
#                       "with the same TPM" by passing the same DIR            IMPRINT_TPM_STATE
#   --vars FILE         OVMF variable store to use and keep (copied from OVMF_VARS_4M.fd if
#                       missing); pass the same FILE again with the same TPM  IMPRINT_OVMF_VARS
#   --no-tpm            no TPM device
#   --secure-boot       the Secure Boot build of OVMF (OVMF_CODE_4M.secboot.fd; QEMU: q35 with
#                       smm=on, the flash's secure property on, so that only SMM code writes the
#                       variables). With the default variable store (no PK: setup mode) nothing is
#                       enforced until keys are enrolled; with OVMF_VARS_4M.ms.fd (Microsoft's
#                       keys) only what those keys signed starts             IMPRINT_BOOT_SECURE_BOOT=1
#   --vars-template FILE  the variable store --vars (or the run's own copy) starts from, when it
#                       does not exist yet (default /usr/share/OVMF/OVMF_VARS_4M.fd)
#                                                                              IMPRINT_OVMF_VARS_TEMPLATE
#   --reboot            let the guest reset: QEMU runs without -no-reboot, so a reset (systemd-boot
#                       resets after enrolling Secure Boot keys) boots the machine again in the
#                       same run; the run still ends at the guest's power-off  IMPRINT_BOOT_REBOOT=1
#   --qemu-arg ARG      one more QEMU argument; repeatable                   IMPRINT_QEMU_ARGS
#   --log FILE          serial log path (default RUNDIR/serial.log)           IMPRINT_BOOT_LOG
#   --no-check          no IMPRINT-CHECK assertions: pass if the guest powers off (or reboots,
#                       with -no-reboot) before the timeout; --expect still applies
#   --expect REGEX      the ANSI-stripped serial log must have a line matching REGEX (grep -E);
#                       repeatable                                            IMPRINT_BOOT_EXPECT
#   --stop-after REGEX  end the run as soon as the ANSI-stripped serial log has a line matching
#                       REGEX (grep -E; repeatable: any of them): QEMU is told to quit (SIGTERM:
#                       it closes its disks; the guest gets no shutdown) and that counts as the
#                       guest's own power-off would. For a guest that stays up, e.g. a live
#                       medium waiting at its first screen, or to end early on a failure line
#                       (then an --expect fails)                              IMPRINT_BOOT_STOP_AFTER
#   --answer REGEX FILE type into the guest's serial console: each time a new line of the
#                       ANSI-stripped serial log matches REGEX (grep -E; the unfinished last line
#                       counts too, as a prompt has no newline yet), the first line of FILE
#                       (read then, without its newline) and a CR, as Enter on a terminal. Each
#                       matching line is answered once; the run prints "answered /REGEX/ (N)",
#                       never the text. The secret stays out of argv and the environment.
#                       systemd's prompt (initrd, v257), ANSI stripped, starts its line:
#                       "Please enter passphrase for disk LABEL (root): (press TAB for no echo)";
#                       anchor REGEX so that no other line (a wall message, a log line quoting
#                       it) gets an answer too. Repeatable; the variable holds REGEX FILE
#                       pairs, space-separated (write a space as [ ] or \s)
#                                                                              IMPRINT_BOOT_ANSWERS
#   --expect-entry GLOB LoaderEntrySelected must match GLOB (default imprint-test_*.efi)
#   --allow-degraded    accept system-state=degraded (a unit failed) as well as running
#   --menu-wait         let systemd-boot's menu count its timeout down. By default the rig presses
#                       Enter on the serial console once the menu shows "Boot in N s.": the entry
#                       systemd-boot chose (default, one-shot, boot counting) starts at once, as
#                       at the end of the countdown, without its seconds      IMPRINT_BOOT_MENU_WAIT=1
# Also: IMPRINT_QEMU_ACCEL=auto|tcg|kvm (auto: kvm only if a 2 s probe with -accel kvm keeps
# running; nested KVM on this project's CI machines fails at once), IMPRINT_QEMU_MEMORY (MiB,
# default 2048), IMPRINT_QEMU_SMP (default 2).
#
# The run directory (printed; under /var/tmp) also holds qemu.log (QEMU's stderr), swtpm.log,
# qmp.sock (a QMP socket, e.g. for send-key) and serial.in (a FIFO to the guest's ttyS0, e.g.
# printf 'text\r' 1<>RUNDIR/serial.in) while QEMU runs. Without --keep only the logs stay. Exit status: 0 all assertions passed, 1 a failure (the last 60 log lines are printed),
# 2 bad usage.
#
# Needs root only for /dev/kvm; TCG works as any user that can read the image.
set -euo pipefail

# Host packages this script runs (installed with apt when missing, as root).
host_packages=(
        qemu-system-x86     # qemu-system-x86_64
        ovmf                # OVMF_CODE_4M.fd, OVMF_VARS_4M.fd
        swtpm               # software TPM 2.0
        coreutils grep sed mawk
)

OVMF_CODE=/usr/share/OVMF/OVMF_CODE_4M.fd
OVMF_CODE_SECBOOT=/usr/share/OVMF/OVMF_CODE_4M.secboot.fd
OVMF_VARS_TEMPLATE=/usr/share/OVMF/OVMF_VARS_4M.fd

usage() {
        sed -n '3,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
        exit 2
}

# --- options ----------------------------------------------------------------------------------
IMAGE=
TIMEOUT=${IMPRINT_BOOT_TIMEOUT:-300}
KEEP=0
SNAPSHOT=${IMPRINT_BOOT_SNAPSHOT:-0}
read -r -a DISKS <<<"${IMPRINT_BOOT_DISKS:-}"
CDROM=${IMPRINT_BOOT_CDROM:-}
BOOT_FIRST=${IMPRINT_BOOT_FIRST:-target}
TPM_STATE=${IMPRINT_TPM_STATE:-}
VARS=${IMPRINT_OVMF_VARS:-}
USE_TPM=1
SECURE_BOOT=${IMPRINT_BOOT_SECURE_BOOT:-0}
VARS_TEMPLATE=${IMPRINT_OVMF_VARS_TEMPLATE:-$OVMF_VARS_TEMPLATE}
REBOOT=${IMPRINT_BOOT_REBOOT:-0}
read -r -a QEMU_EXTRA <<<"${IMPRINT_QEMU_ARGS:-}"
LOG=${IMPRINT_BOOT_LOG:-}
CHECK=1
read -r -a EXPECT <<<"${IMPRINT_BOOT_EXPECT:-}"
read -r -a STOP_AFTER <<<"${IMPRINT_BOOT_STOP_AFTER:-}"
read -r -a ANSWERS <<<"${IMPRINT_BOOT_ANSWERS:-}"      # REGEX FILE REGEX FILE …
EXPECT_ENTRY='imprint-test_*.efi'
ALLOW_DEGRADED=0
MENU_WAIT=${IMPRINT_BOOT_MENU_WAIT:-0}
ACCEL=${IMPRINT_QEMU_ACCEL:-auto}
MEMORY=${IMPRINT_QEMU_MEMORY:-2048}
SMP=${IMPRINT_QEMU_SMP:-2}

while [ $# -gt 0 ]; do
        case $1 in
        --timeout) TIMEOUT=${2:?}; shift ;;
        --keep) KEEP=1 ;;
        --snapshot) SNAPSHOT=1 ;;
        --disk) DISKS+=("${2:?}"); shift ;;
        --cdrom) CDROM=${2:?}; shift ;;
        --boot-first) BOOT_FIRST=${2:?}; shift ;;
        --tpm-state) TPM_STATE=${2:?}; shift ;;
        --vars) VARS=${2:?}; shift ;;
        --no-tpm) USE_TPM=0 ;;
        --secure-boot) SECURE_BOOT=1 ;;
        --vars-template) VARS_TEMPLATE=${2:?}; shift ;;
        --reboot) REBOOT=1 ;;
        --qemu-arg) QEMU_EXTRA+=("${2:?}"); shift ;;
        --log) LOG=${2:?}; shift ;;
        --no-check) CHECK=0 ;;
        --expect) EXPECT+=("${2:?}"); shift ;;
        --stop-after) STOP_AFTER+=("${2:?}"); shift ;;
        --answer) ANSWERS+=("${2:?}" "${3:?}"); shift 2 ;;
        --expect-entry) EXPECT_ENTRY=${2:?}; shift ;;
        --allow-degraded) ALLOW_DEGRADED=1 ;;
        --menu-wait) MENU_WAIT=1 ;;
        -h | --help) usage ;;
        -*) echo "unknown option $1" >&2; usage ;;
        *)
                [ -z "$IMAGE" ] || { echo "more than one IMAGE" >&2; usage; }
                IMAGE=$1
                ;;
        esac
        shift
done
[ -n "$IMAGE" ] || usage
[ -f "$IMAGE" ] || [ -b "$IMAGE" ] || { echo "no such image: $IMAGE" >&2; exit 2; }
case $TIMEOUT in '' | *[!0-9]*) echo "--timeout wants whole seconds" >&2; exit 2 ;; esac
[ -f "$VARS_TEMPLATE" ] || [ -f "${VARS:-/nonexistent}" ] || { echo "no such variable store template: $VARS_TEMPLATE" >&2; exit 2; }
[ $((${#ANSWERS[@]} % 2)) = 0 ] || { echo "IMPRINT_BOOT_ANSWERS wants REGEX FILE pairs" >&2; exit 2; }
ANSWER_RE=()
ANSWER_FILE=()
for ((i = 0; i < ${#ANSWERS[@]}; i += 2)); do
        re=${ANSWERS[i]} file=${ANSWERS[i + 1]}
        rc=0
        grep -qE -- "$re" /dev/null 2>/dev/null || rc=$?
        [ "$rc" != 2 ] || { echo "--answer: bad regex /$re/" >&2; exit 2; }
        if [ ! -r "$file" ] || [ -d "$file" ]; then echo "--answer: cannot read $file" >&2; exit 2; fi
        ANSWER_RE+=("$re")
        ANSWER_FILE+=("$file")
done

install_host_packages() {
        local p missing=()
        for p in "${host_packages[@]}"; do
                dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
        done
        [ ${#missing[@]} -eq 0 ] && return 0
        [ "$(id -u)" = 0 ] || { echo "missing host packages (run as root to install): ${missing[*]}" >&2; exit 1; }
        echo "installing host packages: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
install_host_packages
export PATH=/usr/sbin:/usr/bin:/sbin:/bin

# --- run directory, cleanup --------------------------------------------------------------------
RUN=$(mktemp -d /var/tmp/imprint-boot.XXXXXX)
[ -n "$LOG" ] || LOG=$RUN/serial.log
: >"$LOG"
QEMU_PID=
SWTPM_PID=
OWN_TPM_STATE=0
OWN_VARS=0

stop_pid() {    # stop_pid PID: TERM, then KILL after 5 s; only our own children
        local pid=$1
        [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 50); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
}

cleanup() {
        local rc=$?
        stop_pid "$QEMU_PID"
        # swtpm --terminate exits with its QEMU connection, but not if QEMU never connected.
        stop_pid "$SWTPM_PID"
        rm -f "$RUN/swtpm.sock" "$RUN/qmp.sock" "$RUN/serial.in" "$RUN/serial.out"
        if [ "$KEEP" = 0 ]; then
                [ "$OWN_TPM_STATE" = 1 ] && rm -rf "$RUN/tpm"
                [ "$OWN_VARS" = 1 ] && rm -f "$RUN/OVMF_VARS.fd"
        fi
        exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

now() { echo "$EPOCHREALTIME"; }
since() { awk -v a="$1" -v b="${2:-$EPOCHREALTIME}" 'BEGIN { printf "%.1f", b - a }'; }

# Serial output with ANSI escape sequences (CSI, OSC, charset and single-character ones), CRs
# and NULs removed. The whole file is re-read each time, so a sequence split across two writes
# of the guest is stripped once it is complete; only a truncated one at the very end of the file
# can remain, and the next read handles it.
ESC=$'\x1b'
BEL=$'\x07'
STRIP_ANSI="s#${ESC}\\][^${BEL}${ESC}]*(${BEL}|${ESC}\\\\)?##g; s#${ESC}\\[[0-?]*[ -/]*[@-~]##g"
STRIP_ANSI+="; s#${ESC}[()][A-Za-z0-9]##g; s#${ESC}[DEHMc78>=]##g"
strip_log() {
        sed -E "$STRIP_ANSI" "$LOG" | tr -d '\r\000' >"$RUN/serial.txt"
}

# --- accelerator ------------------------------------------------------------------------------
# KVM counts only if the firmware runs under it: on machines with /dev/kvm but broken nested
# virtualisation QEMU starts fine and stays up, but OVMF's first instructions end in "KVM internal
# error … emulation failure" and the guest is frozen (measured: QEMU keeps running, no serial
# output, the boot times out). So the probe runs OVMF itself and reads QEMU's stderr.
probe_kvm() {
        [ -r /dev/kvm ] && [ -w /dev/kvm ] || return 1
        local pid dir rc=0
        dir=$(mktemp -d)
        cp "$OVMF_VARS_TEMPLATE" "$dir/vars.fd"
        qemu-system-x86_64 -accel kvm -machine q35 -cpu host -m 128 -nodefaults -display none \
                -no-reboot -serial none -monitor none \
                -drive "if=pflash,format=raw,unit=0,file=$OVMF_CODE,readonly=on" \
                -drive "if=pflash,format=raw,unit=1,file=$dir/vars.fd" >"$dir/log" 2>&1 &
        pid=$!
        for _ in $(seq 30); do
                sleep 0.1
                kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; rc=1; break; }
        done
        [ "$rc" = 0 ] && stop_pid "$pid"
        grep -q 'KVM internal error\|emulation failure' "$dir/log" && rc=1
        rm -rf "$dir"
        return "$rc"
}
case $ACCEL in
auto) if probe_kvm 2>/dev/null; then ACCEL=kvm; else ACCEL=tcg; fi ;;   # quiet: bash reports the abort
kvm | tcg) ;;
*) echo "IMPRINT_QEMU_ACCEL must be auto, kvm or tcg" >&2; exit 2 ;;
esac
if [ "$ACCEL" = kvm ]; then CPU=host; else CPU=max; fi

# --- firmware variables and TPM ------------------------------------------------------------------
if [ -z "$VARS" ]; then
        VARS=$RUN/OVMF_VARS.fd
        OWN_VARS=1
fi
[ -f "$VARS" ] || cp "$VARS_TEMPLATE" "$VARS"

TPM_ARGS=()
if [ "$USE_TPM" = 1 ]; then
        if [ -z "$TPM_STATE" ]; then
                TPM_STATE=$RUN/tpm
                OWN_TPM_STATE=1
        fi
        mkdir -p "$TPM_STATE"
        swtpm socket --tpm2 --tpmstate dir="$TPM_STATE" --ctrl type=unixio,path="$RUN/swtpm.sock" \
                --log file="$RUN/swtpm.log",level=1 --terminate &
        SWTPM_PID=$!
        for _ in $(seq 100); do
                [ -S "$RUN/swtpm.sock" ] && break
                kill -0 "$SWTPM_PID" 2>/dev/null || { echo "FAIL: swtpm did not start (see $RUN/swtpm.log)"; exit 1; }
                sleep 0.05
        done
        [ -S "$RUN/swtpm.sock" ] || { echo "FAIL: swtpm made no socket"; exit 1; }
        # shellcheck disable=SC2054  # commas belong to QEMU's option syntax
        TPM_ARGS=(-chardev "socket,id=chrtpm,path=$RUN/swtpm.sock"
                -tpmdev emulator,id=tpm0,chardev=chrtpm -device tpm-tis,tpmdev=tpm0)
fi

# --- disks ----------------------------------------------------------------------------------------
format_of() { case $1 in *.qcow2) echo qcow2 ;; *) echo raw ;; esac; }
# Every boot device gets a bootindex: with a bootorder from QEMU, OVMF connects only the devices
# named in it, so a disk without one is not even tried. $BOOT_FIRST gets 1, the others follow in
# the order target, --disk…, cdrom.
NEXT_INDEX=2
BOOTINDEX=
set_bootindex() {
        if [ "$1" = "$BOOT_FIRST" ]; then
                BOOTINDEX=1
        else
                BOOTINDEX=$NEXT_INDEX
                NEXT_INDEX=$((NEXT_INDEX + 1))
        fi
}
snap=
[ "$SNAPSHOT" = 1 ] && snap=,snapshot=on
set_bootindex target
DISK_ARGS=(-drive "file=$IMAGE,if=none,id=target,format=$(format_of "$IMAGE"),cache=unsafe,discard=unmap$snap"
        -device "virtio-blk-pci,drive=target,serial=target,bootindex=$BOOTINDEX")
n=0
for d in "${DISKS[@]}"; do
        n=$((n + 1))
        file=${d%%:*}
        serial=disk$n
        [ "$file" = "$d" ] || serial=${d#*:}
        [ -e "$file" ] || { echo "no such disk: $file" >&2; exit 2; }
        set_bootindex "$serial"
        DISK_ARGS+=(-drive "file=$file,if=none,id=disk$n,format=$(format_of "$file"),cache=unsafe,discard=unmap"
                -device "virtio-blk-pci,drive=disk$n,serial=$serial,bootindex=$BOOTINDEX")
done
if [ -n "$CDROM" ]; then
        set_bootindex cdrom
        DISK_ARGS+=(-drive "file=$CDROM,if=none,id=cdrom,media=cdrom,readonly=on"
                -device "ide-cd,drive=cdrom,bus=ide.0,bootindex=$BOOTINDEX")
fi

# The serial port: a "pipe" chardev on RUN/serial, which QEMU opens as RUN/serial.in (input, a
# FIFO; QEMU opens it read-write, so writers never block and it never sees EOF) and
# RUN/serial.out (output: a symlink to the log, which QEMU then writes as the "file" chardev
# did).
mkfifo -m 600 "$RUN/serial.in"
ln -s "$(realpath "$LOG")" "$RUN/serial.out"

# Secure Boot: the secboot firmware keeps its variable store safe only with SMM (smm=on), and
# the flash must accept writes only from SMM (cfi.pflash01 secure=on), else OVMF refuses to run.
MACHINE=(-machine q35)
CODE=$OVMF_CODE
if [ "$SECURE_BOOT" = 1 ]; then
        MACHINE=(-machine q35,smm=on -global driver=cfi.pflash01,property=secure,value=on)
        CODE=$OVMF_CODE_SECBOOT
        [ -f "$CODE" ] || { echo "no Secure Boot firmware: $CODE (package ovmf)" >&2; exit 1; }
fi
NO_REBOOT=(-no-reboot)
[ "$REBOOT" = 0 ] || NO_REBOOT=()
QEMU=(qemu-system-x86_64
        -accel "$ACCEL" "${MACHINE[@]}" -cpu "$CPU" -m "$MEMORY" -smp "$SMP"
        -drive "if=pflash,format=raw,unit=0,file=$CODE,readonly=on"
        -drive "if=pflash,format=raw,unit=1,file=$VARS"
        "${TPM_ARGS[@]}"
        "${DISK_ARGS[@]}"
        -device virtio-rng-pci
        -nodefaults -display none
        -chardev "pipe,id=serial0,path=$RUN/serial" -serial chardev:serial0
        -qmp "unix:$RUN/qmp.sock,server=on,wait=off"
        "${NO_REBOOT[@]}"
        "${QEMU_EXTRA[@]}")

echo "run directory: $RUN"
echo "serial log:    $LOG"
echo "accelerator:   $ACCEL${TPM_STATE:+, TPM state $TPM_STATE}, VARS $VARS$([ "$SECURE_BOOT" = 0 ] || echo ", Secure Boot firmware")$([ "$REBOOT" = 0 ] || echo ", resets allowed")"
printf '%q ' "${QEMU[@]}" >"$RUN/qemu.cmdline"
echo >>"$RUN/qemu.cmdline"

# --- run, watching the serial log for the boot's milestones -----------------------------------
declare -A MARK=(
        [firmware]='BdsDxe: (loading|starting) Boot'
        [kernel]='Linux version [0-9]'
        [switch-root]='Switching root|Reached target.*Switch Root'
        [multi-user]='Reached target .*Multi-User System'
        [check-done]='IMPRINT-CHECK-DONE'
)
MARK_ORDER=(firmware kernel switch-root multi-user check-done)
declare -A SEEN=()
ANSWERED=()     # per --answer: how many matching lines were answered
for i in "${!ANSWER_RE[@]}"; do ANSWERED[i]=0; done

# answer_prompts: type the answers for matching lines that appeared since the last poll.
# Counting lines (not remembering text) keeps a prompt that later gets its newline, or its
# echo, from counting twice; the count only rises, so a line that stops matching for one read
# (an escape sequence cut in half at the end of the log) is not answered again.
answer_prompts() {
        local i n secret
        for i in "${!ANSWER_RE[@]}"; do
                n=$(grep -acE -- "${ANSWER_RE[i]}" "$RUN/serial.txt" || true)
                while [ "${n:-0}" -gt "${ANSWERED[i]}" ]; do
                        secret=
                        IFS= read -r secret <"${ANSWER_FILE[i]}" || true
                        # <>: a FIFO opened read-write never blocks, even if QEMU is gone.
                        printf '%s\r' "$secret" 1<>"$RUN/serial.in"
                        ANSWERED[i]=$((ANSWERED[i] + 1))
                        echo "  +$(since "$T_START")s answered /${ANSWER_RE[i]}/ (${ANSWERED[i]})"
                done
        done
}

T_START=$(now)
"${QEMU[@]}" >"$RUN/qemu.log" 2>&1 &
QEMU_PID=$!
DEADLINE=$(awk -v a="$T_START" -v t="$TIMEOUT" 'BEGIN { printf "%d", a + t }')
TIMED_OUT=0
STOPPED=
MENU_ENTER=
while kill -0 "$QEMU_PID" 2>/dev/null; do
        if [ ${#SEEN[@]} -lt ${#MARK[@]} ] || [ ${#STOP_AFTER[@]} -gt 0 ] || [ ${#ANSWER_RE[@]} -gt 0 ]; then
                strip_log
                for m in "${MARK_ORDER[@]}"; do
                        [ -n "${SEEN[$m]:-}" ] && continue
                        if grep -aqE "${MARK[$m]}" "$RUN/serial.txt"; then
                                SEEN[$m]=$(now)
                                echo "  +$(since "$T_START" "${SEEN[$m]}")s $m"
                        fi
                done
                [ ${#ANSWER_RE[@]} = 0 ] || answer_prompts
                # systemd-boot's countdown: Enter boots the entry it shows selected, now.
                if [ "$MENU_WAIT" = 0 ] && [ -z "$MENU_ENTER" ] && [ -z "${SEEN[kernel]:-}" ] &&
                   grep -aqE 'Boot in [0-9]+ s\.' "$RUN/serial.txt"; then
                        printf '\r' 1<>"$RUN/serial.in"
                        MENU_ENTER=$(now)
                        echo "  +$(since "$T_START" "$MENU_ENTER")s boot menu: Enter"
                fi
        fi
        for re in "${STOP_AFTER[@]}"; do
                [ -n "$re" ] && grep -aqE -- "$re" "$RUN/serial.txt" && STOPPED=$re && break
        done
        [ -z "$STOPPED" ] || break
        if [ "${EPOCHREALTIME%.*}" -ge "$DEADLINE" ]; then
                TIMED_OUT=1
                break
        fi
        sleep 0.5
done
if [ -n "$STOPPED" ]; then
        echo "  +$(since "$T_START")s stopping QEMU: the log matches /$STOPPED/"
        stop_pid "$QEMU_PID"
        QEMU_RC=stopped
elif [ "$TIMED_OUT" = 1 ]; then
        stop_pid "$QEMU_PID"
        QEMU_RC=timeout
else
        QEMU_RC=0
        wait "$QEMU_PID" || QEMU_RC=$?
fi
QEMU_PID=
T_END=$(now)
strip_log
for m in "${MARK_ORDER[@]}"; do         # milestones reached between the last poll and the exit
        [ -n "${SEEN[$m]:-}" ] || ! grep -aqE "${MARK[$m]}" "$RUN/serial.txt" || SEEN[$m]=$T_END
done

# --- report -------------------------------------------------------------------------------------
# check VALUE of "IMPRINT-CHECK KEY=VALUE" (the first one; empty when absent)
check_value() {
        grep -a -o "IMPRINT-CHECK $1=.*" "$RUN/serial.txt" | head -n 1 | cut -d= -f2- || true
}

# The console misses "Reached target multi-user.target" when a getty took it over first; then
# place the milestone with the guest's own clock (seconds since kernel start, from the check).
MU_NOTE=
if [ -z "${SEEN[multi-user]:-}" ] && [ -n "${SEEN[kernel]:-}" ]; then
        mu_at=$(check_value multi-user-at)
        if [ -n "$mu_at" ] && [ "$mu_at" != 0.0 ]; then
                SEEN[multi-user]=$(awk -v k="${SEEN[kernel]}" -v d="$mu_at" 'BEGIN { printf "%.6f", k + d }')
                MU_NOTE=" (multi-user placed by the guest clock: kernel + $mu_at s)"
        fi
fi
span() {        # span FROM TO: seconds between two milestones, or "-"
        local a=${SEEN[$1]:-} b=${SEEN[$2]:-}
        [ "$1" = start ] && a=$T_START
        [ "$2" = end ] && b=$T_END
        if [ -n "$a" ] && [ -n "$b" ]; then since "$a" "$b"; else echo -; fi
}
echo "timings (s): firmware+loader to first kernel line $(span start kernel)," \
        "kernel to switch-root $(span kernel switch-root)," \
        "to multi-user $(span kernel multi-user) (after kernel) / $(span start multi-user) (total)," \
        "to check done $(span start check-done), total $(span start end)$MU_NOTE"

FAILED=0
fail() { echo "FAIL: $*"; FAILED=1; }
ok() { echo "ok: $*"; }

if [ "$QEMU_RC" = stopped ]; then
        ok "stopped after $(span start end) s: the log matches /$STOPPED/"
elif [ "$QEMU_RC" = timeout ]; then
        fail "no power-off within $TIMEOUT s (QEMU killed)"
elif [ "$QEMU_RC" != 0 ]; then
        fail "QEMU exited with status $QEMU_RC: $(tail -n 3 "$RUN/qemu.log" | tr '\n' ' ')"
else
        ok "the guest powered off after $(span start end) s"
fi

if [ "$CHECK" = 1 ]; then
        grep -a -o 'IMPRINT-CHECK .*' "$RUN/serial.txt" | sed 's/^/  /' || true
fi
if [ "$CHECK" = 1 ] && ! grep -aq 'IMPRINT-CHECK begin' "$RUN/serial.txt"; then
        fail "no IMPRINT-CHECK output: imprint-check.service never ran"
elif [ "$CHECK" = 1 ]; then
        if grep -aq 'IMPRINT-CHECK-DONE' "$RUN/serial.txt"; then ok "IMPRINT-CHECK-DONE"; else fail "no IMPRINT-CHECK-DONE"; fi

        v=$(check_value loader-info)
        case $v in systemd-boot\ *) ok "loader: $v" ;; *) fail "LoaderInfo is '$v', not systemd-boot" ;; esac
        v=$(check_value stub-info)
        case $v in systemd-stub\ *) ok "stub: $v" ;; *) fail "StubInfo is '$v', not systemd-stub" ;; esac
        v=$(check_value loader-entry-selected)
        # shellcheck disable=SC2254  # EXPECT_ENTRY is a glob on purpose
        case ${v,,} in $EXPECT_ENTRY) ok "entry: $v" ;; *) fail "LoaderEntrySelected is '$v', expected $EXPECT_ENTRY" ;; esac

        v=$(check_value cmdline-has-root)
        if [ "$v" = no ]; then ok "no root= on the command line"; else fail "root= on the command line (or no cmdline line): '$v'"; fi
        src=$(check_value root-source)
        src_dev=$(check_value root-source-dev)
        auto=$(check_value gpt-auto-root)
        if [ -n "$src" ] && { [ "$src" = /dev/gpt-auto-root ] || { [ -n "$auto" ] && [ "$auto" != "(missing)" ] && [ "$auto" = "$src_dev" ]; }; }; then
                ok "root $src is /dev/gpt-auto-root ($auto), type $(check_value root-parttype)"
        else
                fail "root is '$src' ('$src_dev'), /dev/gpt-auto-root is '$auto'"
        fi

        v=$(check_value multi-user)
        if [ "$v" = active ]; then ok "multi-user.target active"; else fail "multi-user.target is '$v'"; fi
        v=$(check_value system-state)
        if [ "$v" = running ] || { [ "$ALLOW_DEGRADED" = 1 ] && [ "$v" = degraded ]; }; then
                ok "system state $v"
        else
                fail "system state is '$v'$(grep -a -o 'IMPRINT-CHECK failed-unit: .*' "$RUN/serial.txt" | sed 's/^IMPRINT-CHECK failed-unit: /; failed: /' | tr -d '\n')"
        fi
        # Checks added to the image's check.d/ fail the run by exiting non-zero.
        while IFS= read -r line; do
                fail "${line#IMPRINT-CHECK }"
        done < <(grep -a -o 'IMPRINT-CHECK check\.d/[^ :]* exit=[0-9]*' "$RUN/serial.txt" || true)
        grep -a -o 'IMPRINT-CHECK analyze: Startup finished.*' "$RUN/serial.txt" | sed 's/^IMPRINT-CHECK analyze: /guest: /' || true
fi

# Lines of the check, each from its "IMPRINT-CHECK" on: the kernel writes to the same serial port
# (printk bypasses the tty layer), so a message of its own may precede a check line on the line.
grep -a -o 'IMPRINT-CHECK.*' "$RUN/serial.txt" >"$RUN/check.txt" || true
for re in "${EXPECT[@]}"; do
        [ -n "$re" ] || continue
        if grep -aqE -- "$re" "$RUN/serial.txt"; then
                ok "log matches /$re/"
        elif [ "${re#^IMPRINT-CHECK}" != "$re" ] && grep -aqE -- "$re" "$RUN/check.txt"; then
                ok "log matches /$re/ (after other output on the same line)"
        else
                fail "no log line matches /$re/"
                # What the check did print for that key, if anything.
                key=$(sed -E 's/^\^IMPRINT-CHECK ([^=: ]+).*/\1/' <<<"$re")
                [ "$key" != "$re" ] && grep -a -F -- "$key" "$RUN/check.txt" | sed 's/^/  near: /' | head -n 5
        fi
done

if [ "$FAILED" = 1 ]; then
        echo "---- last 60 lines of $LOG (ANSI stripped) ----"
        tail -n 60 "$RUN/serial.txt"
        echo "---- serial log: $LOG; QEMU stderr: $RUN/qemu.log ----"
        exit 1
fi
echo "PASS (serial log: $LOG)"

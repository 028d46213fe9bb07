# SPDX-License-Identifier: LGPL-2.1-or-later
# Shared helpers for imprint's integration tests. Source it; it sets -eu and a cleanup trap.
set -eu -o pipefail

IMPRINT=${IMPRINT:-imprint}
export PATH="$PATH:/usr/sbin:/sbin"
export MTOOLS_SKIP_CHECK=1

WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/imprint-test.XXXXXX")
LOOPS=()
MOUNTS=()
SWAPS=()

cleanup() {
        local m l s
        for s in "${SWAPS[@]:-}"; do [ -n "$s" ] && swapoff "$s" 2>/dev/null || true; done
        for m in "${MOUNTS[@]:-}"; do [ -n "$m" ] && umount "$m" 2>/dev/null || true; done
        for l in "${LOOPS[@]:-}"; do [ -n "$l" ] && losetup -d "$l" 2>/dev/null || true; done
        rm -rf "$WORK"
}
trap cleanup EXIT

# checksum FILE: sha256 of a (sparse) file's content, like sha256sum but fast on sparse files:
# only 1 MiB chunks that hold data are read, and all-zero chunks hash like holes, so the digest
# depends on the bytes alone, not on how the filesystem maps them. Hashing 8 GiB of holes with
# sha256sum would take half a minute per call.
checksum() {
        /usr/bin/python3 - "$1" <<'PY'
import hashlib, os, sys
CHUNK = 1 << 20
h = hashlib.sha256()
fd = os.open(sys.argv[1], os.O_RDONLY)
size = os.fstat(fd).st_size
h.update(str(size).encode())
zero = bytes(CHUNK)
pos, last = 0, -1
while pos < size:
    try:
        data = os.lseek(fd, pos, os.SEEK_DATA)
    except OSError:
        break
    hole = os.lseek(fd, data, os.SEEK_HOLE)
    for i in range(max(data // CHUNK, last + 1), (hole + CHUNK - 1) // CHUNK):
        chunk = os.pread(fd, CHUNK, i * CHUNK)
        if chunk != zero[:len(chunk)]:
            h.update(i.to_bytes(8, "little") + chunk)
        last = i
    pos = hole
print(h.hexdigest())
PY
}

fail() {
        echo "FAIL: $*" >&2
        exit 1
}

pass() {
        echo "ok: $*"
}

need_root() {
        if [ "$(id -u)" != 0 ]; then
                echo "SKIP: $1 needs root (loop devices)" >&2
                exit 77
        fi
}

need_tool() {
        command -v "$1" >/dev/null || fail "$1 is not installed (the README's setup command installs it)"
}

# attach IMAGE [--no-partscan] → sets ATTACHED to the loop device (a function, not $(…), so that
# the cleanup trap learns about the device: a subshell's LOOPS+= would be lost)
attach() {
        if [ "${2:-}" = "--no-partscan" ]; then
                ATTACHED=$(losetup -f --show "$1")
        else
                ATTACHED=$(losetup -fP --show "$1")
                # Some kernels (this project's CI VMs among them) are built without partition
                # table parsers; partx adds the partitions with BLKPG instead.
                partx -a "$ATTACHED" 2>/dev/null || true
        fi
        LOOPS+=("$ATTACHED")
}

# expect_exit CODE CMD... → runs CMD, checks its exit code, keeps stderr in $WORK/stderr
expect_exit() {
        local want=$1 got=0
        shift
        "$@" >"$WORK/stdout" 2>"$WORK/stderr" || got=$?
        if [ "$got" != "$want" ]; then
                cat "$WORK/stdout" "$WORK/stderr" >&2
                fail "expected exit code $want, got $got: $*"
        fi
}

expect_stderr() {
        grep -qF -- "$1" "$WORK/stderr" || { cat "$WORK/stderr" >&2; fail "stderr does not say: $1"; }
}

# compare_with_sfdisk PLAN.json DEVICE-OR-IMAGE: stock sfdisk must read back exactly the plan.
compare_with_sfdisk() {
        local plan=$1 dev=$2
        sfdisk --json "$dev" >"$WORK/sfdisk.json"
        jq -e --slurpfile plan "$plan" '
                ($plan[0]) as $p
                | .partitiontable as $t
                | ($t.label == "gpt")
                and (($t.id | ascii_downcase) == $p.diskUuid)
                and ($t.sectorsize == $p.target.sectorSize)
                and ([$p.partitions[] | select(.action == "create")] | all(. as $pp
                        | [$t.partitions[] | select((.node | capture("(?<n>[0-9]+)$").n | tonumber) == $pp.partno)]
                        | length == 1 and (.[0] as $s
                           | ($s.start * $t.sectorsize == $pp.start)
                           and ($s.size * $t.sectorsize == $pp.size)
                           and (($s.type | ascii_downcase) == $pp.typeUuid)
                           and (($s.uuid | ascii_downcase) == $pp.uuid)
                           and ($s.name == $pp.label)
                           and ((($s.attrs // "") | [scan("GUID:([0-9,]+)")[0] | split(",")[] | tonumber]
                                  | map(pow(2; .)) | add // 0) == $pp.flags)
                        )))
        ' "$WORK/sfdisk.json" >/dev/null || {
                echo "--- plan"; cat "$plan"; echo "--- sfdisk"; cat "$WORK/sfdisk.json"
                fail "sfdisk --json $dev does not match the plan"
        } >&2
}

# compare_with_dissect PLAN.json IMAGE-OR-DEVICE: stock systemd-dissect must find every DPS partition.
compare_with_dissect() {
        local plan=$1 dev=$2
        systemd-dissect --json=short "$dev" >"$WORK/dissect.json" 2>"$WORK/dissect.err" || {
                cat "$WORK/dissect.err" >&2
                fail "systemd-dissect $dev failed"
        }
        jq -e --slurpfile plan "$plan" '
                ($plan[0]) as $p
                | .mounts as $m
                | .useBootableUefi == true
                and ($p.partitions | all(. as $pp
                        | [$m[] | select(.designator == $pp.role)]
                        | length == 1 and (.[0] as $d
                           | ($d.partition_uuid == $pp.uuid)
                           and ($d.partno == $pp.partno)
                           and ($d.fstype == $pp.fstype)
                           and (($d.partition_label // null) == ($pp.label | if . == "" then null else . end))
                           and ($d.growfs == ($pp.flagNames | index("growfs") != null))
                           and (if $pp.role == "root" then $d.architecture == $p.architecture else true end)
                        )))
        ' "$WORK/dissect.json" >/dev/null || {
                echo "--- plan"; cat "$plan"; echo "--- systemd-dissect"; cat "$WORK/dissect.json"
                fail "systemd-dissect $dev does not match the plan"
        } >&2
}

# ---- factory reset (issue 15, branch reset) --------------------------------------------------
# same_root_files IMAGE OFFSET TARGET [OFFSET]: the ext4 root an install copied from IMAGE (at
# OFFSET) into TARGET (a partition node, or a file with its OFFSET) holds the image's files, but
# for the factory-reset hook the install writes into it (recovery-entry.h). The copy itself is
# read back byte for byte by the install's verify step, before the hook is written.
same_root_files() {
        local a b
        a=$(mktemp -d "$WORK/root-image.XXXXXX")
        b=$(mktemp -d "$WORK/root-target.XXXXXX")
        debugfs -R "rdump / $a" "$1?offset=$2" >/dev/null 2>&1 || return 1
        debugfs -R "rdump / $b" "$3${4:+?offset=$4}" >/dev/null 2>&1 || return 1
        [ -n "$(ls "$a")" ] || return 1
        diff -r --no-dereference -x imprint-factory-reset.service -x factory-reset.target.wants "$a" "$b" >&2
}

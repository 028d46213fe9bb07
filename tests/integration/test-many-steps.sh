#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A plan with more steps than the executor once had room for (32): 27 extra 1 MiB swap partitions
# make an install of 35 steps, 32 of them before the boot loader. Before, the executor dropped
# every step past the 32nd — the boot loader and the final flush among them — and still said
# "… is installed" with exit 0 and an empty ESP. Checked here with stock tools: the install either completes (sfdisk shows every
# planned partition with its planned name, blkid finds each swap signature, the ESP holds
# systemd-boot and the UKI) or refuses before writing; today it completes.
. "$(dirname "$0")/lib.sh"
need_tool jq sfdisk blkid mdir python3

src=$WORK/src.raw
bash "$(dirname "$0")/make-fake-ddi.sh" "$src" 60
img=$WORK/disk.img
truncate -s 2G "$img"

"$IMPRINT" plan --source "$src" --target "$img" --root-size 512M --json --plan-file "$WORK/plan.json" >/dev/null
# jq would round the 64-bit attribute flags through a double; Python keeps them exact.
/usr/bin/python3 - "$WORK/plan.json" <<'PY'
import json, sys, uuid
path = sys.argv[1]
p = json.load(open(path))
parts = p["partitions"]
end = max(x["start"] + x["size"] for x in parts)
for k in range(27):
    parts.append({"partno": len(parts) + 1, "role": "swap", "action": "create", "start": end + k * 1048576,
                  "size": 1048576, "typeUuid": "0657fd6d-a4ab-43c4-84e5-0933c84b4f4f", "typeName": "swap",
                  "uuid": str(uuid.uuid4()), "label": "swap", "flags": 0, "flagNames": [], "fstype": "swap",
                  "fsLabel": "swap", "copyFrom": None, "encrypt": False, "luksUuid": None})
json.dump(p, open(path, "w"))
PY
[ "$(jq '.partitions | length' "$WORK/plan.json")" = 29 ] || fail "the plan file does not have 29 partitions"

sum=$(checksum "$img")
rc=0
"$IMPRINT" install --plan-file "$WORK/plan.json" --yes >"$WORK/out" 2>"$WORK/err" || rc=$?
if [ "$rc" != 0 ]; then
        # Refusing is acceptable, but only before anything was written.
        [ "$(checksum "$img")" = "$sum" ] || { cat "$WORK/out" "$WORK/err" >&2; fail "a refused install (exit $rc) changed the image"; }
        pass "the install of 35 steps is refused before anything is written"
        exit 0
fi

compare_with_sfdisk "$WORK/plan.json" "$img"
n=0
for partno in $(jq -r '.partitions[] | select(.role == "swap") | .partno' "$WORK/plan.json"); do
        start=$(sfdisk --json "$img" | jq --argjson n "$partno" '.partitiontable.partitions[] | select(.node | endswith("img" + ($n | tostring))) | .start * 512')
        [ "$(blkid -p -O "$start" -s TYPE -o value "$img" 2>/dev/null)" = swap ] || fail "partition $partno holds no swap signature"
        n=$((n + 1))
done
[ "$n" = 27 ] || fail "expected 27 swap partitions, found $n"

esp_off=$(jq '.partitions[] | select(.role == "esp") | .start' "$WORK/plan.json")
mdir -/ -b -i "$img@@$esp_off" ::/ >"$WORK/esp.list" || fail "mtools cannot read the ESP"
grep -qi '::/EFI/systemd/systemd-bootx64.efi' "$WORK/esp.list" || { cat "$WORK/esp.list" >&2; fail "the ESP has no systemd-boot"; }
grep -qi '::/EFI/Linux/.*\.efi' "$WORK/esp.list" || { cat "$WORK/esp.list" >&2; fail "the ESP has no UKI"; }
pass "an install of 35 steps completes: 27 swap partitions, systemd-boot and the UKI on the ESP"

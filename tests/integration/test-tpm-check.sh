#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# imprint tpm: the pre-flight check for TPM enrollment, against swtpm. A good TPM is usable; a TPM
# whose sha256 PCR bank is switched off, and a machine without a TPM, are not — and imprint says
# why and what an install does instead, never silently.
. "$(dirname "$0")/lib.sh"
need_root "swtpm"
need_tool swtpm
need_tool tpm2_pcrallocate
need_tool jq

state=$WORK/tpm
mkdir "$state"
port=$((20000 + RANDOM % 20000))
start_swtpm() {
        swtpm socket --tpm2 --tpmstate dir="$state" --server type=tcp,port=$port --ctrl type=tcp,port=$((port + 1)) \
                --flags not-need-init,startup-clear --daemon --pid file="$WORK/swtpm.pid"
        for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && return 0; sleep 0.1; done
        fail "swtpm did not start"
}
stop_swtpm() { kill "$(cat "$WORK/swtpm.pid")" 2>/dev/null || true; sleep 0.3; }
trap 'stop_swtpm; cleanup' EXIT

start_swtpm
"$IMPRINT" tpm --tcti "swtpm:port=$port" --json >"$WORK/good.json"
jq -e '.usable == true and .present and .sha256Bank and (.lockout | not) and .transientRoom and .problem == null' "$WORK/good.json" >/dev/null \
        || { cat "$WORK/good.json" >&2; fail "a fresh swtpm is not reported usable"; }
"$IMPRINT" tpm --tcti "swtpm:port=$port" | grep -q "TPM 2.0 usable" || fail "the text output does not say usable"
pass "a working TPM 2.0 is usable"

# Switch the sha256 bank off (takes effect at the next TPM reset, so restart swtpm).
TPM2TOOLS_TCTI="swtpm:port=$port" tpm2_pcrallocate sha1:all+sha256:none >/dev/null
stop_swtpm
start_swtpm
"$IMPRINT" tpm --tcti "swtpm:port=$port" --json >"$WORK/nosha.json"
jq -e '.usable == false and .present and (.sha256Bank | not) and (.problem | test("sha256"))' "$WORK/nosha.json" >/dev/null \
        || { cat "$WORK/nosha.json" >&2; fail "a TPM without the sha256 bank is not refused with a reason"; }
"$IMPRINT" tpm --tcti "swtpm:port=$port" | grep -q "passphrase and the recovery key instead" \
        || fail "the text output does not say what happens instead"
pass "a TPM without the sha256 PCR bank is refused, with the reason and the fallback"

# No TPM at all (this host has no /dev/tpmrm0).
if [ ! -e /dev/tpmrm0 ]; then
        "$IMPRINT" tpm --json >"$WORK/none.json"
        jq -e '.usable == false and (.present | not) and (.problem | test("/dev/tpmrm0"))' "$WORK/none.json" >/dev/null \
                || { cat "$WORK/none.json" >&2; fail "a missing TPM is not reported"; }
        pass "no TPM: says so, and names the device it looked for"
fi

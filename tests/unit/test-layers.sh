#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-layers.sh — the layers of imprint depend one way: front ends → session → engine → basic.
# Checked on what the compiler and the linker see, not on comments:
#   1. includes: no file of a lower layer includes a header of a higher one; front ends include
#      none of the engine's action headers (disks, images, the executor, the TPM, mkfs, …);
#   2. symbols: no object of a lower layer needs a symbol that a higher layer defines (nm), so
#      there is no cycle; and no front-end object calls an engine action (discovering disks,
#      opening images, planning, checking the TPM or passwords, running commands, executing) —
#      they go through the session.
# Front ends: src/imprint.c (the command line and unattended), src/plain.c (--plain),
# src/dialogue.c, src/i18n-frontend.c, src/varlink-installer.c (--varlink), ui/ (the full-screen
# installer). Session: src/session/. Engine: src/engine/. Basic: src/basic/.
set -euo pipefail

src=${SOURCE_ROOT:?}
build=${BUILD_ROOT:?}
fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }

frontend_files=("$src"/src/imprint.c "$src"/src/plain.c "$src"/src/plain.h "$src"/src/dialogue.c "$src"/src/dialogue.h
                "$src"/src/i18n-frontend.c "$src"/src/i18n-frontend.h "$src"/src/varlink-installer.c "$src"/src/varlink-installer.h
                "$src"/ui/*.c "$src"/ui/*.h)
frontend_headers="ui.h tui.h plain.h dialogue.h i18n-frontend.h varlink-installer.h cli.h"
session_headers="session.h varlink.h io-imprint-installer-varlink.h"
engine_headers=$(cd "$src/src/engine" && ls -- *.h)
# Engine headers whose functions act (on disks, images, the TPM, the system) rather than name
# types or parse input: a front end asks the session instead.
action_headers="disk.h disklock.h executor.h image.h partition.h mkfs.h luks.h tpm2.h quality.h osprobe.h boot.h efivars.h
                blockcopy.h logsave.h fsread.h account.h encrypt.h config.h recovery.h pe.h run.h"

includes() { grep -ho '^#include "[^"]*"' "$@" | sed 's/#include "\(.*\)"/\1/' | sort -u; }

# ---- 1. includes -----------------------------------------------------------------------------
for f in "$src"/src/session/*.[ch] "$src"/src/engine/*.[ch] "$src"/src/basic/*.[ch]; do
        for h in $(includes "$f"); do
                for up in $frontend_headers; do
                        [ "$h" != "$up" ] || fail "${f#"$src"/} (below the front ends) includes the front-end header $h"
                done
        done
done
for f in "$src"/src/engine/*.[ch] "$src"/src/basic/*.[ch]; do
        for h in $(includes "$f"); do
                for up in $session_headers; do
                        [ "$h" != "$up" ] || fail "${f#"$src"/} (below the session) includes the session header $h"
                done
        done
done
for f in "$src"/src/basic/*.[ch]; do
        for h in $(includes "$f"); do
                for e in $engine_headers; do
                        [ "$h" != "$e" ] || fail "${f#"$src"/} (basic) includes the engine header $h"
                done
        done
done
pass "no file of the session, the engine or basic includes a header of a layer above it"
for f in "${frontend_files[@]}"; do
        for h in $(includes "$f"); do
                for a in $action_headers; do
                        [ "$h" != "$a" ] || fail "the front end ${f#"$src"/} includes the engine's $h: it must ask the session (session.h)"
                done
        done
done
pass "front ends include session.h and no engine header that acts (${#frontend_files[@]} files)"

# ---- 2. symbols ------------------------------------------------------------------------------
objs() { find "$build/$1" -name '*.o' 2>/dev/null | sort; }
mapfile -t basic_o < <(objs libimprint-engine.a.p | grep '/src_basic_')
mapfile -t engine_o < <(objs libimprint-engine.a.p | grep '/src_engine_')
mapfile -t session_o < <(objs libimprint-session.a.p)
mapfile -t front_o < <( (objs libimprint-frontend.a.p; objs imprint.p) )
[ ${#basic_o[@]} -gt 5 ] && [ ${#engine_o[@]} -gt 10 ] && [ ${#session_o[@]} -ge 2 ] && [ ${#front_o[@]} -gt 10 ] ||
        fail "cannot find the object files of every layer under $build (basic ${#basic_o[@]}, engine ${#engine_o[@]}, session ${#session_o[@]}, front ends ${#front_o[@]})"

defined() { nm --defined-only "$@" 2>/dev/null | awk 'NF == 3 && $2 ~ /[TDBR]/ { print $3 }' | sort -u; }
undefined() { nm -u "$@" 2>/dev/null | awk '{ print $NF }' | sort -u; }

# upward LOWER_NAME UPPER_NAME: the symbols the lower layer needs that the upper one defines.
check_upward() {
        local lower=$1 upper=$2 hits
        hits=$(comm -12 "$WORK/undef-$lower" "$WORK/def-$upper")
        [ -z "$hits" ] || fail "the $lower calls up into the $upper: $(echo $hits)"
}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
undefined "${basic_o[@]}" >"$WORK/undef-basic"
undefined "${engine_o[@]}" >"$WORK/undef-engine"
undefined "${session_o[@]}" >"$WORK/undef-session"
defined "${engine_o[@]}" >"$WORK/def-engine"
defined "${session_o[@]}" >"$WORK/def-session"
defined "${front_o[@]}" >"$WORK/def-front ends"
check_upward basic engine
check_upward basic session
check_upward basic "front ends"
check_upward engine session
check_upward engine "front ends"
check_upward session "front ends"
pass "no object of basic, the engine or the session needs a symbol of a layer above it: no cycles"

# What only the session may call: the engine's actions.
actions='^(disk_list_discover|disk_discover|disk_check_not_in_use|disk_read_partitions|image_open|image_resolve_self|image_load_boot|image_find_checksum|image_to_plan_source|plan_build|plan_load|plan_save|encryption_decide|encryption_escrow_recovery_key|account_decide|account_password_check|password_quality_check|tpm2_check|executor_run|install_config_find|install_config_load_defaults|install_config_resolve_target|log_save_to_removable|log_save_to_partition|run_command|interrupt_install|mount|umount|umount2|settings_validate|user_name_is_valid)$'
for o in "${front_o[@]}"; do
        hits=$(undefined "$o" | grep -E "$actions" || true)
        [ -z "$hits" ] || fail "the front end ${o#"$build"/} calls the engine directly: $(echo $hits)"
done
pass "no front-end object calls an engine action: disks, images, plans, passwords, the TPM and installs go through the session"
